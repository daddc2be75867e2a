//! `facebias identify`: 1:N identification — load the searched dataset and any distractors
//! ([`crate::manifest::gallery`]), split into gallery and searches ([`crate::manifest::split`]),
//! embed, search every nested gallery size ([`crate::compare::identify`], on the CPU or, with
//! `--device`, the GPU: the same lists), analyse
//! ([`crate::metrics::identification::analysis`]) and write the report
//! ([`crate::report::identification`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Result};

use super::common;
use super::model::resolve_model;
use crate::cli::IdentifyArgs;
use crate::compare::backend::SearchBackend;
use crate::compare::identify::{self as search_stage, Inputs};
use crate::embed::extract;
use crate::manifest::gallery;
use crate::manifest::split::{self, SplitConfig};
use crate::metrics::groups::{self, Partition};
use crate::metrics::identification::analysis::{self, Options};
use crate::metrics::identification::implicated::entry_labels;
use crate::metrics::identification::overlap;
use crate::metrics::identification::table::Bootstrap;
use crate::report::identification::{self as report, Devices, Headline, Protocol};
use crate::{manifest, runtime};

/// `facebias identify`.
pub fn identify(args: &IdentifyArgs) -> Result<PathBuf> {
    let staging = common::stage(&args.out)?;
    let (record, headline) = write_into(args, staging.dir())?;
    let out = common::commit(staging, &record)?;
    println!("{}", headline.text);
    println!("identification report: {}", out.display());
    Ok(out)
}

/// Runs the 1:N protocol and writes its report files into `dir` (all but `run.json`, returned as
/// the record); used by `identify` and by the demo's 1:N section.
pub fn write_into(args: &IdentifyArgs, dir: &Path) -> Result<(serde_json::Value, Headline)> {
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
    let t0 = Instant::now();
    let rt = runtime::load(args.model.ort_lib.as_deref())?;
    let searched = manifest::load(&args.dataset, None, true)?;
    let partition =
        Partition::new(&searched.attributes, &searched.samples).map_err(|e| anyhow!(e))?;
    let hashes = gallery::file_hashes(&searched.samples).map_err(|e| anyhow!(e))?;
    let distractors =
        gallery::load(&args.distractors, &searched, &hashes).map_err(|e| anyhow!(e))?;
    let mut all = searched.clone();
    all.samples.extend(distractors.samples.iter().cloned());
    let n_searched = searched.samples.len();
    let subject_of = subject_ids(&all.samples, n_searched);
    let sp = split::split(
        &subject_of[..n_searched],
        &partition.combo_of,
        distractors.samples.len(),
        &SplitConfig {
            enrolled_fraction: args.enrolled_fraction,
            seed: args.seed,
            mix: gallery_mix(args, &searched, &distractors)?,
        },
    )
    .map_err(|e| anyhow!(e))?;
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
    // `--device` as in `run`: the embedding's execution provider, then the search device, opened (and
    // its kernels compiled) before the long embedding stage.
    let (embed_device, embed_note) =
        runtime::resolve_device(rt, args.exec.device).map_err(|e| anyhow!(e))?;
    cfg.device = embed_device;
    let (mut backend, search_note) =
        SearchBackend::select(args.exec.device, rayon::current_num_threads())?;
    let devices = Devices {
        execution_provider: cfg.device.provider(),
        embed_note,
        search_kernel: backend.kernel_name(),
        search_device: backend.describe(),
        search_note,
    };
    let cache = common::open_cache(rt, &model, &cfg, &args.exec)?;
    let t_embed = Instant::now();
    let ex = extract::extract(rt, &all.samples, &cfg, &cache).map_err(|e| anyhow!(e))?;
    let embed_s = t_embed.elapsed().as_secs_f64();
    let (emb, rows) = ex.matrix();
    let mut combo_of = partition.combo_of.clone();
    combo_of.resize(all.samples.len(), 0);
    let inputs = Inputs {
        split: &sp,
        subject_of: &subject_of,
        combo_of: &combo_of,
        emb: &emb,
        rows: &rows,
        dim: ex.dim,
    };
    let t_search = Instant::now();
    let keep = args.candidates + 1;
    let screen = screen_overlap(
        &mut backend,
        &inputs,
        &all,
        &distractors,
        keep,
        !args.keep_overlap,
    )?;
    let inputs = Inputs {
        split: &screen.split,
        ..inputs
    };
    let (entries, mates) = search_stage::enrolled_gallery(&inputs);
    let sizes = gallery::sizes(args.gallery_sizes.as_deref(), mates, entries.len())
        .map_err(|e| anyhow!(e))?;
    let searched_run = search_stage::run(&mut backend, &inputs, entries, mates, sizes, keep)
        .map_err(|e| anyhow!(e))?;
    let search_s = t_search.elapsed().as_secs_f64();
    let gs = groups::groupings(&partition);
    let values: Vec<Vec<String>> = searched_run
        .gallery
        .iter()
        .map(|&i| all.samples[i].attributes.clone())
        .collect();
    let labels: Vec<Vec<String>> = gs
        .iter()
        .map(|g| entry_labels(&values, &attribute_indices(&partition, &g.name)))
        .collect();
    let t_metrics = Instant::now();
    let opts = Options {
        l: args.candidates,
        targets,
        reference_group: args.reference_group.clone(),
        bootstrap: Bootstrap {
            replicates: args.bootstrap,
            seed: args.seed,
        },
    };
    let a = analysis::analyse(
        &searched_run.searches,
        &gs,
        &labels,
        partition.combos.len(),
        &searched_run.sizes,
        &opts,
    )
    .map_err(|e| anyhow!(e))?;
    for note in &a.left_out {
        eprintln!("note: {note} (left out)");
    }
    let metrics_s = t_metrics.elapsed().as_secs_f64();
    let proto = Protocol {
        args,
        manifest: &all,
        n_searched,
        split: &screen.split,
        overlap: &screen,
        distractors: &distractors,
        searched: &searched_run,
        extract: &ex,
        rows: &rows,
        emb: &emb,
        model: &model,
        ort_version: &rt.version,
        timings: [
            ("embed", embed_s),
            ("search", search_s),
            ("metrics", metrics_s),
            ("total", t0.elapsed().as_secs_f64()),
        ],
        devices: &devices,
    };
    report::write(dir, &proto, &a).map_err(|e| anyhow!(e))
}

/// The `--gallery-mix` of this run, with each distractor's label of its attribute.
fn gallery_mix(
    args: &IdentifyArgs,
    searched: &manifest::Manifest,
    d: &gallery::Distractors,
) -> Result<Option<split::Mix>> {
    let Some(text) = &args.gallery_mix else {
        return Ok(None);
    };
    if d.samples.is_empty() {
        bail!("--gallery-mix re-weights the distractors, and there are none: add --distractors");
    }
    let (attribute, shares) =
        split::Mix::parse(text, &searched.attributes).map_err(|e| anyhow!(e))?;
    let a = searched
        .attributes
        .iter()
        .position(|x| *x == attribute)
        .expect("parsed");
    Ok(Some(split::Mix {
        attribute,
        shares,
        labels: d.samples.iter().map(|s| s.attributes[a].clone()).collect(),
    }))
}

/// The identity-overlap screen ([`overlap`]): suspected same-person pairs, T_o, and the split with
/// the dropped distractor identities' images made `unused`.
pub struct Screen {
    /// The suspected pairs.
    pub pairs: Vec<overlap::Pair>,
    /// The screening threshold (`None` without non-mated searches: nothing screened).
    pub t_o: Option<f32>,
    /// Gallery entries dropped.
    pub dropped_entries: usize,
    /// The split after dropping.
    pub split: split::Split,
}

/// Searches the gallery of mates and the whole gallery once, flags suspected same-person pairs, and
/// (when `drop`) removes the flagged distractor identities from the gallery.
fn screen_overlap(
    backend: &mut SearchBackend,
    inputs: &Inputs,
    all: &manifest::Manifest,
    distractors: &gallery::Distractors,
    keep: usize,
    drop: bool,
) -> Result<Screen> {
    let n_searched = all.samples.len() - distractors.samples.len();
    let (entries, mates) = search_stage::enrolled_gallery(inputs);
    let mut split = inputs.split.clone();
    if mates == 0 {
        return Ok(Screen {
            pairs: Vec::new(),
            t_o: None,
            dropped_entries: 0,
            split,
        });
    }
    let mut sizes = vec![mates, entries.len()];
    sizes.dedup();
    let first =
        search_stage::run(backend, inputs, entries, mates, sizes, keep).map_err(|e| anyhow!(e))?;
    let Some(t_o) = overlap::screening_threshold(&first.searches, 0) else {
        return Ok(Screen {
            pairs: Vec::new(),
            t_o: None,
            dropped_entries: 0,
            split,
        });
    };
    let searched_name = gallery::short_name(&all.file);
    let dataset_of = |i: usize| -> &str {
        if i < n_searched {
            &searched_name
        } else {
            &distractors.sources[distractors.source_of[i - n_searched]].name
        }
    };
    let searcher: Vec<&str> = first
        .searchers
        .iter()
        .map(|&i| all.samples[i].subject.as_str())
        .collect();
    let own: Vec<(&str, &str)> = searcher
        .iter()
        .map(|s| (searched_name.as_str(), *s))
        .collect();
    let entry: Vec<(&str, &str)> = first
        .gallery
        .iter()
        .map(|&i| (dataset_of(i), all.samples[i].subject.as_str()))
        .collect();
    let ids = overlap::Identities {
        searcher: &searcher,
        entry: &entry,
        own: &own,
        searched: &searched_name,
        drop_distractors: drop,
    };
    let pairs = overlap::detect(&first.searches, &ids, first.sizes.len() - 1, t_o);
    let gone: std::collections::HashSet<(&str, &str)> = pairs
        .iter()
        .filter(|p| p.action == "dropped")
        .map(|p| (p.other_dataset.as_str(), p.other_subject.as_str()))
        .collect();
    let mut dropped_entries = 0;
    for i in n_searched..all.samples.len() {
        if gone.contains(&(dataset_of(i), all.samples[i].subject.as_str())) {
            dropped_entries += usize::from(inputs.rows[i].is_some());
            split.roles[i] = split::Role::Unused;
            split.gallery_rank[i] = None;
        }
    }
    Ok(Screen {
        pairs,
        t_o: Some(t_o),
        dropped_entries,
        split,
    })
}

/// Dense subject ids in first-appearance order; samples from `first_distractor` on are distractors,
/// whose ids never equal a searched subject's (a distractor named like a searched subject is
/// still another dataset's label, not a mate).
fn subject_ids(samples: &[manifest::Sample], first_distractor: usize) -> Vec<u32> {
    let mut ids: std::collections::HashMap<(bool, &str), u32> = Default::default();
    samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let next = ids.len() as u32;
            *ids.entry((i >= first_distractor, s.subject.as_str()))
                .or_insert(next)
        })
        .collect()
}

/// The attribute columns a grouping name (`race`, `sex×race`) is made of.
fn attribute_indices(p: &Partition, name: &str) -> Vec<usize> {
    name.split('×')
        .filter_map(|a| p.attributes.iter().position(|x| x == a))
        .collect()
}
