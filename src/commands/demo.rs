//! `facebias demo`: `run` with MobileFaceNet + YuNet over the shared BFW sample, with a 1:N section:
//! `identify` over the same images with the LFW and UTKFace folders beside it as distractors, and a
//! comparison of MobileFaceNet, HSE FaceRes and MobileFace on the same images (`compare`).

use anyhow::{bail, Result};

use crate::cli::{AnalysisArgs, CompareArgs, DemoArgs, IdentifyArgs, ModelArgs, RunArgs};
use crate::report::console::RunOutcome;

/// `facebias demo`.
pub fn demo(args: &DemoArgs) -> Result<RunOutcome> {
    if !args.dataset.exists() {
        bail!("the demo dataset {} is missing; it ships in ../shared/datasets beside the project (or pass --dataset)", args.dataset.display());
    }
    let run_args = RunArgs {
        embeddings: None,
        skip_finished: false,
        dataset: args.dataset.clone(),
        out: args.out.clone(),
        target_fmr: None,
        attributes: None,
        shard: None,
        exclude_pairs: None,
        precision: crate::compare::gpu::Precision::Fp32,
        kernel: None,
        adapter: crate::manifest::adapters::Adapter::Auto,
        analysis: AnalysisArgs::default(),
        model: ModelArgs {
            models_dir: args.models_dir.clone(),
            ort_lib: args.ort_lib.clone(),
            ..ModelArgs::named("mobilefacenet")
        },
        exec: args.exec.clone(),
        audit: None,
        identify: Some(Box::new(identify_args(args))),
        compare: Some(Box::new(compare_args(args))),
    };
    super::run::run(&run_args)
}

/// The demo's 1:N run: its dataset searched against itself plus the `lfw` and `utkface` datasets
/// beside it (those present; the page says which).
fn identify_args(args: &DemoArgs) -> IdentifyArgs {
    let beside = |name: &str| args.dataset.parent().map(|p| p.join(name));
    IdentifyArgs {
        dataset: args.dataset.clone(),
        out: args.out.join(crate::report::identification::FOLDER),
        enrolled_fraction: 0.5,
        candidates: 50,
        target_fpir: None,
        seed: 8280,
        distractors: ["lfw", "utkface"]
            .iter()
            .filter_map(|n| beside(n))
            .filter(|p| p.join("manifest.csv").is_file())
            .collect(),
        gallery_sizes: None,
        gallery_mix: None,
        reference_group: None,
        bootstrap: 1000,
        keep_overlap: false,
        candidates_at_every_size: false,
        model: ModelArgs {
            models_dir: args.models_dir.clone(),
            ort_lib: args.ort_lib.clone(),
            ..ModelArgs::named("mobilefacenet")
        },
        exec: args.exec.clone(),
    }
}

/// The demo's comparison: the catalogue's three usable embedding models of different families.
fn compare_args(args: &DemoArgs) -> CompareArgs {
    CompareArgs {
        models: ["mobilefacenet", "faceres", "mobileface"]
            .map(String::from)
            .to_vec(),
        runs: Vec::new(),
        dataset: Some(args.dataset.clone()),
        out: args.out.join(crate::report::comparison::FOLDER),
        common_enrolled: false,
        target_fmr: None,
        max_sanity_fnmr: 0.5,
        sanity: None,
        models_dir: args.models_dir.clone(),
        ort_lib: args.ort_lib.clone(),
        analysis: AnalysisArgs::default(),
        exec: args.exec.clone(),
    }
}
