//! The commands: one file per subcommand, each a short function that validates its arguments (failing
//! fast, before any long computation) and calls the stages in order — manifest → preprocess/embed →
//! compare → metrics → report. Steps several commands share live in [`common`] (worker count,
//! extraction config and cache, finishing and committing a report) and [`model`] (resolving `--model`
//! and its spec).
//!
//! A new command gets its own file here, its arguments in [`crate::cli`] and one arm in [`execute`].

pub mod audit;
pub mod bench;
pub mod bench_pipeline;
pub mod common;
pub mod compare;
pub mod datasets;
pub mod demo;
pub mod embed;
pub mod embed_merge;
pub mod identify;
pub mod inspect;
pub mod merge;
pub mod model;
pub mod report;
pub mod run;
pub mod slurm;

use anyhow::Result;

use crate::cli::Command;
use crate::report::console;

/// Runs one command and prints its result.
pub fn execute(command: &Command) -> Result<()> {
    match command {
        Command::Run(a) => run::run(a).map(|o| console::print_run_summary(&o)),
        Command::Merge(a) => merge::merge(a).map(|o| console::print_run_summary(&o)),
        Command::Report(a) => report::rerender(a).map(|o| console::print_run_summary(&o)),
        Command::Demo(a) => demo::demo(a).map(|o| {
            console::print_run_summary(&o);
            println!(
                "demo report written to {}: open {} in a browser (findings, tables and every chart in one page)",
                o.out.display(),
                o.out.join("index.html").display()
            );
        }),
        Command::Embed(a) => embed::embed(a).map(|_| ()),
        Command::EmbedMerge(a) => embed_merge::embed_merge(a).map(|_| ()),
        Command::Slurm(crate::cli::SlurmCommand::Plan(a)) => slurm::plan(a).map(|_| ()),
        Command::Slurm(crate::cli::SlurmCommand::Status(a)) => slurm::status(a),
        Command::Identify(a) => identify::identify(a).map(|_| ()),
        Command::Compare(a) => compare::compare(a).map(|_| ()),
        Command::Inspect(a) => inspect::inspect(a),
        Command::Datasets(a) => datasets::datasets(a),
        Command::Audit(a) => audit::audit(a).map(|o| console::print_run_summary(&o)),
        Command::Bench(a) => bench::bench_kernel(a).map(|b| {
            if a.json {
                println!("{}", serde_json::to_string(&b).unwrap_or_default());
            } else {
                console::print_kernel_bench(&b);
            }
        }),
        Command::BenchPipeline(a) => bench_pipeline::bench_pipeline(a).map(|b| {
            if a.json {
                println!("{}", serde_json::to_string(&b).unwrap_or_default());
            } else {
                console::print_pipeline_bench(&b);
            }
        }),
    }
}
