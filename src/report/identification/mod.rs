//! The 1:N report: tidy CSVs (`identification.csv`, `identification_summary.csv`, `cmc.csv`,
//! `gallery_size.csv`, `implicated.csv`, `candidates.csv`, `samples.csv` with `dataset`, `role` and
//! `gallery_rank`), `embeddings.npy`, charts, `summary.md`, `index.html`, and the run record.

mod findings;
mod page;

use std::path::Path;

use crate::cli::IdentifyArgs;
use crate::commands::model::ResolvedModel;
use crate::compare::identify::Searched;
use crate::embed::extract::ExtractOutput;
use crate::manifest::gallery::Distractors;
use crate::manifest::split::Split;
use crate::manifest::Manifest;
use crate::metrics::identification::analysis::Analysis;

pub use findings::Headline;

/// The folder of a 1:N sub-report inside a 1:1 report (the demo's).
pub const FOLDER: &str = "identification";

/// The 1:1 page's 1:N section (HTML) from the run record's `identification` block; the chart of the
/// finest grouping's FPIR against gallery size is inlined when `dir/identification` has it.
pub fn section_html(record: &serde_json::Value, dir: &Path) -> Option<(String, usize)> {
    let block = record.get("identification")?;
    let esc = super::page::esc;
    let mut h = format!(
        "<h2>1:N identification</h2><p>The same model searching the dataset's images against a gallery of its enrolled subjects{}. Full report: <a href=\"{FOLDER}/index.html\">{FOLDER}/index.html</a> (its CSV files beside it).</p><ul>",
        block["distractors"].as_array().filter(|d| !d.is_empty()).map(|d| format!(" plus distractors from {}", d.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", "))).unwrap_or_default()
    );
    for f in block["findings"].as_array().into_iter().flatten() {
        h += &format!("<li>{}</li>", esc(f.as_str().unwrap_or("")));
    }
    h += "</ul>";
    let mut images = 0;
    let sub = dir.join(FOLDER);
    let mut pngs: Vec<_> = std::fs::read_dir(&sub)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("fpir_vs_n_") && n.ends_with(".png"))
        .collect();
    pngs.sort_by_key(|n| (n.matches('×').count(), n.clone()));
    if let Some(name) = pngs.last() {
        if let Ok(bytes) = std::fs::read(sub.join(name)) {
            images += 1;
            h += &format!("<figure><img alt=\"FPIR against gallery size\" src=\"data:image/png;base64,{}\"><figcaption>FPIR against gallery size at one fixed threshold, per group, with the prediction from each group's 1:1 false-match rate ({FOLDER}/{name}).</figcaption></figure>\n", super::page::base64(&bytes));
        }
    }
    Some((h, images))
}

/// The 1:1 summary.md's 1:N section.
pub fn section_md(record: &serde_json::Value) -> Option<String> {
    let block = record.get("identification")?;
    let mut md = format!(
        "## 1:N identification

Full report: `{FOLDER}/index.html` and `{FOLDER}/summary.md`.

"
    );
    for f in block["findings"].as_array().into_iter().flatten() {
        md += &format!(
            "- {}
",
            f.as_str().unwrap_or("")
        );
    }
    Some(
        md + "
",
    )
}

/// The conventions every 1:N report states (README, run.json, pages).
pub const CONVENTIONS: &str = "a score equal to T matches; a non-mate tying with the mate's score ranks ahead of it (ties count against the mate); a search without a face is a miss (mated) and a correct rejection (non-mated), never a false positive; a gallery image without a face is not enrolled (its mate's searches then miss); candidate lists are ordered by score, equal scores by the lower samples.csv row";

/// Everything the report records about how the searches were made.
pub struct Protocol<'a> {
    /// The command's arguments.
    pub args: &'a IdentifyArgs,
    /// Searched samples followed by the distractors.
    pub manifest: &'a Manifest,
    /// How many of `manifest.samples` are searched (the rest are distractors).
    pub n_searched: usize,
    /// Roles and gallery ranks (after the overlap screen).
    pub split: &'a Split,
    /// The identity-overlap screen.
    pub overlap: &'a crate::commands::identify::Screen,
    /// The distractor datasets.
    pub distractors: &'a Distractors,
    /// The gallery and the searches.
    pub searched: &'a Searched,
    /// Extraction results (per sample).
    pub extract: &'a ExtractOutput,
    /// Embedding row of each sample.
    pub rows: &'a [Option<usize>],
    /// The embeddings.
    pub emb: &'a [f32],
    /// The model.
    pub model: &'a ResolvedModel,
    /// ONNX Runtime's version.
    pub ort_version: &'a str,
    /// Stage timings (seconds).
    pub timings: [(&'static str, f64); 4],
    /// Where the embedding and the search ran.
    pub devices: &'a Devices,
}

/// Where the embedding and the search ran (`--device`), for run.json's `runtime` and `search`.
#[derive(Debug, Clone)]
pub struct Devices {
    /// ONNX Runtime's execution provider for the embedding.
    pub execution_provider: String,
    /// Why `--device auto` embedded on the CPU (empty otherwise).
    pub embed_note: String,
    /// The search kernel's name.
    pub search_kernel: &'static str,
    /// The search device in words.
    pub search_device: String,
    /// Why `--device auto` searched on the CPU (empty otherwise).
    pub search_note: String,
}

/// Writes the report files into `dir` and returns the run record (not yet written) and the
/// headline printed at the end.
pub fn write(
    dir: &Path,
    p: &Protocol,
    a: &Analysis,
) -> Result<(serde_json::Value, Headline), String> {
    let put = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    put("samples.csv", &samples_csv(p)?)?;
    let enrolled = p.rows.iter().flatten().count();
    put(
        "embeddings.npy",
        &super::npy_f32(p.emb, enrolled, p.extract.dim),
    )?;
    put("candidates.csv", &candidates_csv(p, a)?)?;
    put("identification.csv", &super::rows_csv(&a.rows)?)?;
    put(
        "identification_summary.csv",
        &super::rows_csv(&a.summaries)?,
    )?;
    put("cmc.csv", &super::rows_csv(&a.cmc)?)?;
    put("gallery_size.csv", &super::rows_csv(&a.growth)?)?;
    put("implicated.csv", &super::rows_csv(&a.implicated)?)?;
    put("overlap.csv", &super::rows_csv(&p.overlap.pairs)?)?;
    let record = record(p, a);
    let ctx = super::page::Context::from_record(&record);
    let charts = super::charts::identification::render(dir, a)?;
    let headline = findings::headline(a, p);
    let md = findings::summary_md(a, &ctx, &headline);
    put("summary.md", md.as_bytes())?;
    put(
        "index.html",
        page::index_html(a, &ctx, &headline, &charts, dir)?.as_bytes(),
    )?;
    Ok((record, headline))
}

/// `samples.csv`: the manifest's columns, extraction results, then `dataset`, `role`, `gallery_rank`.
fn samples_csv(p: &Protocol) -> Result<Vec<u8>, String> {
    let rank_of: std::collections::HashMap<usize, usize> = p
        .searched
        .gallery
        .iter()
        .enumerate()
        .map(|(e, &i)| (i, e))
        .collect();
    let searched_name = crate::manifest::gallery::short_name(&p.manifest.file);
    let extra: Vec<Vec<String>> = (0..p.manifest.samples.len())
        .map(|i| {
            let dataset = if i < p.n_searched {
                searched_name.clone()
            } else {
                let d = p.distractors.source_of[i - p.n_searched];
                p.distractors.sources[d].name.clone()
            };
            vec![
                dataset,
                p.split.roles[i].as_str().to_string(),
                rank_of.get(&i).map(|r| r.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    super::samples_csv_with(
        p.manifest,
        &p.extract.results,
        p.rows,
        &["dataset", "role", "gallery_rank"],
        &extra,
    )
}

/// `candidates.csv`: `search_row,gallery_size,rank,gallery_row,score` (rows of `samples.csv`), the
/// top L of every search at the largest gallery (every size with `--candidates-at-every-size`).
fn candidates_csv(p: &Protocol, a: &Analysis) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| e.to_string();
    w.write_record(["search_row", "gallery_size", "rank", "gallery_row", "score"])
        .map_err(err)?;
    let last = a.sizes.len() - 1;
    let first = if p.args.candidates_at_every_size {
        0
    } else {
        last
    };
    for (&i, s) in p.searched.searchers.iter().zip(&p.searched.searches) {
        for (si, list) in s.candidates.iter().enumerate().skip(first) {
            for (r, c) in list.iter().take(a.l).enumerate() {
                w.write_record([
                    i.to_string(),
                    a.sizes[si].to_string(),
                    (r + 1).to_string(),
                    p.searched.gallery[c.entry as usize].to_string(),
                    format!("{}", c.score),
                ])
                .map_err(err)?;
            }
        }
    }
    w.into_inner().map_err(|e| e.to_string())
}

/// The distractors' shares of each label of the `--gallery-mix` attribute at every gallery size.
pub fn composition(p: &Protocol, a: &Analysis, mix: &str) -> Vec<serde_json::Value> {
    let attr = mix.split(':').next().unwrap_or("");
    let Some(k) = p.manifest.attributes.iter().position(|x| x == attr) else {
        return Vec::new();
    };
    a.sizes
        .iter()
        .map(|&n| {
            let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
            let entries = &p.searched.gallery[p.searched.mates.min(n)..n];
            for &i in entries {
                let v = p.manifest.samples[i].attributes[k].as_str();
                *counts
                    .entry(if v.is_empty() { "unlabelled" } else { v })
                    .or_default() += 1;
            }
            let shares: serde_json::Map<String, serde_json::Value> = counts
                .iter()
                .map(|(l, c)| {
                    (
                        l.to_string(),
                        serde_json::json!(*c as f64 / entries.len().max(1) as f64),
                    )
                })
                .collect();
            serde_json::json!({"gallery_size": n, "distractors": entries.len(), "shares": shares})
        })
        .collect()
}

/// The run record: inputs, protocol, thresholds, counts, timings.
fn record(p: &Protocol, a: &Analysis) -> serde_json::Value {
    let searches = &p.searched.searches;
    let count = |f: &dyn Fn(&crate::metrics::identification::Search) -> bool| {
        searches.iter().filter(|x| f(x)).count()
    };
    let no_face = |role: crate::manifest::split::Role| {
        (0..p.manifest.samples.len())
            .filter(|&i| p.split.roles[i] == role && p.rows[i].is_none())
            .count()
    };
    serde_json::json!({
        "schema_version": super::record::SCHEMA_VERSION,
        "command": "identify",
        "model": {"path": p.model.path.display().to_string(), "sha256": p.model.sha256, "spec": p.model.spec},
        "detector": {"path": p.model.detector.display().to_string(), "sha256": p.model.detector_sha256},
        "dataset": {
            "name": crate::manifest::gallery::short_name(&p.manifest.file),
            "manifest": p.manifest.file.display().to_string(),
            "manifest_sha256": p.manifest.sha256,
        },
        "distractors": {
            "datasets": p.distractors.sources,
            "dropped_duplicates": p.distractors.dropped.len(),
            "dropped": p.distractors.dropped,
        },
        "runtime": {
            "onnxruntime_version": p.ort_version,
            "execution_provider": p.devices.execution_provider,
            "device_note": p.devices.embed_note,
        },
        "search": {
            "kernel": p.devices.search_kernel,
            "device": p.devices.search_device,
            "device_note": p.devices.search_note,
        },
        "overlap": {
            "rule": format!("a (searched subject, gallery identity) pair is a suspected same person when at least {} images of the subject have a candidate of that identity scoring >= T_o, the threshold for FPIR max(0.001, 1/n) of the n non-mated searches against the enrolled mates alone", crate::metrics::identification::overlap::MIN_SEARCHES),
            "t_o": p.overlap.t_o,
            "pairs": p.overlap.pairs.len(),
            "distractor_identities_dropped": p.overlap.pairs.iter().filter(|x| x.action == "dropped").map(|x| (x.other_dataset.clone(), x.other_subject.clone())).collect::<std::collections::BTreeSet<_>>().len(),
            "gallery_entries_dropped": p.overlap.dropped_entries,
            "pairs_inside_searched_dataset": p.overlap.pairs.iter().filter(|x| x.action == "kept" && x.other_dataset == crate::manifest::gallery::short_name(&p.manifest.file)).count(),
            "kept_by_flag": p.args.keep_overlap,
        },
        "protocol": {
            "enrolled_fraction": p.args.enrolled_fraction,
            "seed": p.args.seed,
            "enrol": "first image (manifest order) of each enrolled subject",
            "subjects_enrolled": p.split.subjects[0],
            "subjects_not_enrolled": p.split.subjects[1],
            "gallery_entries": p.searched.gallery.len(),
            "enrolled_mates": p.searched.mates,
            "distractor_entries": p.searched.gallery.len() - p.searched.mates,
            "gallery_images_without_face": no_face(crate::manifest::split::Role::Gallery),
            "distractor_images_without_face": no_face(crate::manifest::split::Role::Distractor),
            "gallery_sizes": a.sizes,
            "candidates": a.l,
            "mated_searches": count(&|x| x.mated),
            "nonmated_searches": count(&|x| !x.mated),
            "failed_mated_searches": count(&|x| x.mated && x.failed),
            "failed_nonmated_searches": count(&|x| !x.mated && x.failed),
            "conventions": CONVENTIONS,
            "calibration": a.calibration,
            "reference_group": p.args.reference_group,
            "thresholds": a.thresholds.iter().map(|t| serde_json::json!({
                "target_fpir": t.target, "threshold": t.t, "false_positives": t.false_positives, "calibration_searches": t.searches,
            })).collect::<Vec<_>>(),
            "targets_left_out": a.left_out,
        },
        "gallery_mix": p.args.gallery_mix.as_ref().map(|m| serde_json::json!({
            "requested": m,
            "distractor_shares_by_size": composition(p, a, m),
        })),
        "bootstrap": {
            "replicates": p.args.bootstrap,
            "seed": p.args.seed,
            "interval": if p.args.bootstrap > 0 { "2.5–97.5 percentile of a searching-subject bootstrap (within each finest group)" } else { "none" },
        },
        "execution": {
            "timings_s": p.timings.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            "cache_hits": p.extract.cache_hits,
        },
    })
}
