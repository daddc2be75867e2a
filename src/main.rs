//! facebias command-line entry point: parse, run, print the error chain, exit code.

use std::process::ExitCode;

use clap::Parser;
use facebias::cli::Cli;

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of stdout goes away (`facebias … | head`).
    #[cfg(unix)]
    // SAFETY: restoring the default action of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match facebias::commands::execute(&cli.command) {
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
