//! `facebias demo`: `run` with MobileFaceNet + YuNet over the shared BFW sample.

use anyhow::{bail, Result};

use crate::cli::{AnalysisArgs, DemoArgs, ModelArgs, RunArgs};
use crate::report::console::RunOutcome;

/// `facebias demo`.
pub fn demo(args: &DemoArgs) -> Result<RunOutcome> {
    if !args.dataset.exists() {
        bail!("the demo dataset {} is missing; it ships in ../shared/datasets beside the project (or pass --dataset)", args.dataset.display());
    }
    let run_args = RunArgs {
        dataset: args.dataset.clone(),
        out: args.out.clone(),
        target_fmr: None,
        attributes: None,
        shard: None,
        exclude_pairs: None,
        precision: crate::compare::gpu::Precision::Fp32,
        adapter: crate::manifest::adapters::Adapter::Auto,
        analysis: AnalysisArgs::default(),
        model: ModelArgs {
            models_dir: args.models_dir.clone(),
            ort_lib: args.ort_lib.clone(),
            ..ModelArgs::named("mobilefacenet")
        },
        exec: args.exec.clone(),
        audit: None,
    };
    super::run::run(&run_args)
}
