//! facebias command-line entry point: parse, run, print the error chain, exit code.

use std::process::ExitCode;

use clap::Parser;
use facebias::cli::{Cli, Command};
use facebias::pipeline;

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of stdout goes away (`facebias … | head`).
    #[cfg(unix)]
    // SAFETY: restoring the default action of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(a) => pipeline::run(a).map(|o| pipeline::print_run_summary(&o)),
        Command::Merge(a) => pipeline::merge(a).map(|o| pipeline::print_run_summary(&o)),
        Command::Report(a) => pipeline::rerender(a).map(|o| pipeline::print_run_summary(&o)),
        Command::Demo(a) => pipeline::demo(a).map(|o| {
            pipeline::print_run_summary(&o);
            println!(
                "demo report written to {} (open the det_*.png and heatmap_*.png charts there)",
                o.out.display()
            );
        }),
        Command::Embed(a) => pipeline::embed(a).map(|_| ()),
        Command::Inspect(a) => pipeline::inspect(a),
        Command::Datasets(a) => pipeline::datasets(a),
        Command::Audit(a) => pipeline::audit(a).map(|o| pipeline::print_run_summary(&o)),
        Command::Bench(a) => pipeline::bench_kernel(a).map(|b| {
            if a.json {
                println!("{}", serde_json::to_string(&b).unwrap_or_default());
            } else {
                pipeline::print_kernel_bench(&b);
            }
        }),
        Command::BenchPipeline(a) => pipeline::bench(a).map(|b| {
            if a.json {
                println!("{}", serde_json::to_string(&b).unwrap_or_default());
            } else {
                pipeline::print_bench(&b);
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
