//! The `toka-host` binary: parses flags, runs the subcommand on a tokio
//! runtime, and exits with the documented code.

use clap::Parser;
use std::process::ExitCode;
use toka_host::cli::{Cli, Command};
use toka_host::exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => exit::SUCCESS,
                _ => exit::INVALID,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::INVALID);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => toka_host::cli::run::run(*args).await,
            Command::Tools(cmd) => toka_host::cli::tools::run(cmd).await,
        }
    });
    // A guest may leave a read of the host's stdin pending on a blocking
    // thread; do not wait for it.
    runtime.shutdown_background();
    ExitCode::from(code)
}
