//! `facebias identify`: 1:N identification on one dataset — embed, split into gallery and searches
//! ([`crate::manifest::split`]), exact top-L search ([`crate::compare::search`]), FNIR/FPIR per group
//! at global thresholds ([`crate::metrics::identification`]); writes `samples.csv` (with `role` and
//! `gallery_rank`), `embeddings.npy`, `candidates.csv`, `identification.csv`, `summary.md`, `run.json`.
//!
//! This first version searches the full gallery only (one gallery size), without distractors,
//! intervals or charts.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};

use super::common::{self, put};
use super::model::resolve_model;
use crate::cli::IdentifyArgs;
use crate::compare::search;
use crate::embed::extract;
use crate::manifest::split::{self, Role, SplitConfig};
use crate::metrics::groups::{self, Partition};
use crate::metrics::identification::{self as ident, FpirThreshold, Search};
use crate::report::{self, record};
use crate::{manifest, runtime};

/// `facebias identify`.
pub fn identify(args: &IdentifyArgs) -> Result<PathBuf> {
    let targets = args
        .target_fpir
        .clone()
        .unwrap_or_else(|| vec![0.1, 0.01, 0.001]);
    if let Some(t) = targets.iter().find(|t| !(**t > 0.0 && **t < 1.0)) {
        bail!("--target-fpir {t} is not a rate in (0, 1)");
    }
    if args.candidates == 0 {
        bail!("--candidates must be at least 1 (NIST's list length is 50)");
    }
    let rt = runtime::load(args.model.ort_lib.as_deref())?;
    let staging = common::stage(&args.out)?;
    let manifest = manifest::load(&args.dataset, None, true)?;
    let partition =
        Partition::new(&manifest.attributes, &manifest.samples).map_err(|e| anyhow!(e))?;
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let subject_of: Vec<u32> = manifest
        .samples
        .iter()
        .map(|s| {
            let next = ids.len() as u32;
            *ids.entry(s.subject.as_str()).or_insert(next)
        })
        .collect();
    let cfg_split = SplitConfig {
        enrolled_fraction: args.enrolled_fraction,
        seed: args.seed,
    };
    let sp =
        split::split(&subject_of, &partition.combo_of, 0, &cfg_split).map_err(|e| anyhow!(e))?;
    let model = resolve_model(&args.model)?;
    let mut cfg = common::extract_config(
        &model,
        &args.model,
        common::threads(args.exec.threads),
        args.exec.batch_size,
        false,
        !args.exec.quiet,
    );
    cfg.max_pixels = args.exec.max_image_pixels;
    let cache = common::open_cache(rt, &model, &cfg, &args.exec)?;
    let ex = extract::extract(rt, &manifest.samples, &cfg, &cache).map_err(|e| anyhow!(e))?;
    let (emb, rows) = ex.matrix();
    let dim = ex.dim;
    let (gallery_samples, searchers, searches) = run_searches(
        &sp,
        &subject_of,
        &partition.combo_of,
        &emb,
        &rows,
        dim,
        args.candidates,
    )?;
    let n = gallery_samples.len();
    let thresholds = thresholds_for(&searches, &targets);
    let gs = groups::groupings(&partition);
    let table = ident::table(
        &searches,
        &gs,
        partition.combos.len(),
        0,
        n,
        args.candidates,
        &thresholds,
    );
    let rank_of: HashMap<usize, usize> = gallery_samples
        .iter()
        .enumerate()
        .map(|(r, &i)| (i, r))
        .collect();
    let extra: Vec<Vec<String>> = (0..manifest.samples.len())
        .map(|i| {
            vec![
                sp.roles[i].as_str().to_string(),
                rank_of.get(&i).map(|r| r.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    let samples_csv = report::samples_csv_with(
        &manifest,
        &ex.results,
        &rows,
        &["role", "gallery_rank"],
        &extra,
    )
    .map_err(|e| anyhow!(e))?;
    put(&staging, "samples.csv", &samples_csv)?;
    let enrolled = rows.iter().flatten().count();
    put(
        &staging,
        "embeddings.npy",
        &report::npy_f32(&emb, enrolled, dim),
    )?;
    put(
        &staging,
        "candidates.csv",
        &candidates_csv(&searchers, &searches, &gallery_samples, n)?,
    )?;
    put(
        &staging,
        "identification.csv",
        &report::rows_csv(&table).map_err(|e| anyhow!(e))?,
    )?;
    let summary = summary_md(&manifest.file, &table, &thresholds, n, args.candidates);
    put(&staging, "summary.md", summary.as_bytes())?;
    let record = serde_json::json!({
        "schema_version": record::SCHEMA_VERSION,
        "command": "identify",
        "model": {"path": model.path.display().to_string(), "sha256": model.sha256, "spec": model.spec},
        "detector": {"path": model.detector.display().to_string(), "sha256": model.detector_sha256},
        "dataset": {"manifest": manifest.file.display().to_string(), "manifest_sha256": manifest.sha256},
        "onnxruntime_version": rt.version,
        "protocol": protocol_record(args, &sp, &searches, &thresholds, n),
    });
    let out = common::commit(staging, &record)?;
    println!("{summary}");
    println!("identification report: {}", out.display());
    Ok(out)
}

/// The gallery (enrolled gallery images with a face, in gallery_rank order), the searching samples,
/// and each search's result: `(gallery samples, searcher samples, searches)`.
fn run_searches(
    sp: &split::Split,
    subject_of: &[u32],
    combo_of: &[u16],
    emb: &[f32],
    rows: &[Option<usize>],
    dim: usize,
    candidates: usize,
) -> Result<(Vec<usize>, Vec<usize>, Vec<Search>)> {
    // The gallery: enrolled gallery images with a face, in gallery_rank order.
    let mut gallery_samples: Vec<usize> = (0..rows.len())
        .filter(|&i| sp.roles[i] == Role::Gallery && rows[i].is_some())
        .collect();
    gallery_samples.sort_by_key(|&i| sp.gallery_rank[i]);
    if gallery_samples.is_empty() {
        bail!("no gallery image has a face: nothing to search against");
    }
    let row_of = |i: usize| rows[i].expect("an enrolled sample has a row");
    let gallery: Vec<f32> = gallery_samples
        .iter()
        .flat_map(|&i| emb[row_of(i) * dim..(row_of(i) + 1) * dim].iter().copied())
        .collect();
    let entry_of_subject: HashMap<u32, u32> = gallery_samples
        .iter()
        .enumerate()
        .map(|(e, &i)| (subject_of[i], e as u32))
        .collect();
    let searchers: Vec<usize> = (0..rows.len())
        .filter(|&i| matches!(sp.roles[i], Role::MatedSearch | Role::NonmatedSearch))
        .collect();
    let probing: Vec<usize> = searchers
        .iter()
        .copied()
        .filter(|&i| rows[i].is_some())
        .collect();
    let probes: Vec<f32> = probing
        .iter()
        .flat_map(|&i| emb[row_of(i) * dim..(row_of(i) + 1) * dim].iter().copied())
        .collect();
    let n = gallery_samples.len();
    let tie_rows: Vec<u32> = gallery_samples.iter().map(|&i| i as u32).collect();
    let found = search::search(&probes, &gallery, &tie_rows, dim, &[n], candidates)
        .map_err(|e| anyhow!(e))?;
    let mut lists = probing.iter().zip(found).collect::<HashMap<_, _>>();
    let searches: Vec<Search> = searchers
        .iter()
        .map(|&i| Search {
            mated: sp.roles[i] == Role::MatedSearch,
            combo: combo_of[i],
            mate: entry_of_subject.get(&subject_of[i]).copied(),
            failed: rows[i].is_none(),
            candidates: lists.remove(&i).unwrap_or_else(|| vec![Vec::new()]),
        })
        .collect();
    Ok((gallery_samples, searchers, searches))
}

/// One global threshold per supported target FPIR; the others are left out with a note.
fn thresholds_for(searches: &[Search], targets: &[f64]) -> Vec<FpirThreshold> {
    let thresholds: Vec<FpirThreshold> = targets
        .iter()
        .filter_map(|&t| ident::threshold_for(searches, 0, t))
        .collect();
    let nonmated = searches.iter().filter(|s| !s.mated).count();
    for t in targets
        .iter()
        .filter(|t| !thresholds.iter().any(|x| x.target == **t))
    {
        eprintln!(
            "note: FPIR {t} is left out: {nonmated} non-mated searches cannot resolve it (it needs at least {:.0})",
            (1.0 / t).ceil()
        );
    }
    thresholds
}

/// run.json's `protocol`: the split, the gallery, the searches, the conventions and thresholds.
fn protocol_record(
    args: &IdentifyArgs,
    sp: &split::Split,
    searches: &[Search],
    thresholds: &[FpirThreshold],
    n: usize,
) -> serde_json::Value {
    serde_json::json!({
        "enrolled_fraction": args.enrolled_fraction,
        "seed": args.seed,
        "enrol": "first image of each enrolled subject",
        "subjects_enrolled": sp.subjects[0],
        "subjects_not_enrolled": sp.subjects[1],
        "gallery_entries": n,
        "gallery_sizes": [n],
        "candidates": args.candidates,
        "mated_searches": searches.iter().filter(|s| s.mated).count(),
        "nonmated_searches": searches.iter().filter(|s| !s.mated).count(),
        "failed_searches": searches.iter().filter(|s| s.failed).count(),
        "conventions": "a score equal to T matches; equal scores rank the lower samples.csv row first; a search without a face is a miss (mated) and a correct rejection (non-mated); a gallery image without a face is not enrolled",
        "thresholds": thresholds.iter().map(|t| serde_json::json!({
            "target_fpir": t.target, "threshold": t.t, "false_positives": t.false_positives, "nonmated_searches": t.searches,
        })).collect::<Vec<_>>(),
    })
}

/// `candidates.csv`: `search_row,gallery_size,rank,gallery_row,score` (rows of `samples.csv`).
fn candidates_csv(
    searchers: &[usize],
    searches: &[Search],
    gallery_samples: &[usize],
    n: usize,
) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["search_row", "gallery_size", "rank", "gallery_row", "score"])?;
    for (&i, s) in searchers.iter().zip(searches) {
        for (r, c) in s.candidates[0].iter().enumerate() {
            w.write_record([
                i.to_string(),
                n.to_string(),
                (r + 1).to_string(),
                gallery_samples[c.entry as usize].to_string(),
                format!("{}", c.score),
            ])?;
        }
    }
    w.into_inner().map_err(|e| anyhow!("{e}"))
}

/// The plain-words summary: thresholds, then per group FNIR (rank 1) and FPIR at each threshold.
fn summary_md(
    manifest: &std::path::Path,
    table: &[ident::Row],
    thresholds: &[FpirThreshold],
    n: usize,
    l: usize,
) -> String {
    let mut md = format!(
        "# 1:N identification on {}\n\nGallery of {n} enrolled subjects (one image each); candidate lists of {l}. A search's FPIR error: its top candidate scores ≥ T though its subject is not enrolled; FNIR error: its mate is not at rank 1 with score ≥ T.\n\n",
        manifest.display()
    );
    for t in thresholds {
        md += &format!(
            "## Threshold for FPIR {} (T = {:.5}: {} of {} non-mated searches return a candidate)\n\n| grouping | group | FPIR | FNIR rank 1 |\n|---|---|---|---|\n",
            t.target, t.t, t.false_positives, t.searches
        );
        let at = |metric: &str, r: &ident::Row| {
            r.metric == metric && r.rank == 1 && r.target_fpir == Some(t.target)
        };
        for r in table.iter().filter(|r| at("fpir", r)) {
            let f = table
                .iter()
                .find(|x| at("fnir", x) && x.attribute == r.attribute && x.group == r.group);
            let cell = |x: &ident::Row| match x.rate {
                Some(v) => format!("{v:.4} ({}/{})", x.errors, x.searches),
                None => "no searches".into(),
            };
            md += &format!(
                "| {} | {} | {} | {} |\n",
                r.attribute,
                r.group,
                cell(r),
                f.map(cell).unwrap_or_default()
            );
        }
        md += "\n";
    }
    md
}
