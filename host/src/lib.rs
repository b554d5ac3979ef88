//! The `toka-host` command as a library: [`main`] is the whole CLI (the
//! binary only calls it), and [`server::in_process`] builds `serve`'s routes
//! without a socket, so a fuzz target can drive `/mcp` and `/v1` through
//! the same call path a client does.

use clap::Parser;
use std::process::ExitCode;
mod cli;
mod door;
mod mcp;
pub mod server;

use cli::{Cli, Command};
use toka_spec::exit;

/// `toka-host serve FLAGS…` without a socket: the engine, grants, limits,
/// tokens and run store those flags give, the manifests directory scanned
/// once, answering requests in memory ([`server::InProcess::request`]).
///
/// # Errors
///
/// A flag `serve` would refuse is printed to stderr as `serve` prints it;
/// the error is `serve`'s exit code for it.
pub async fn serve_in_process(flags: &[&str]) -> Result<server::InProcess, u8> {
    let argv = ["toka-host", "serve"]
        .into_iter()
        .chain(flags.iter().copied());
    let args = match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Command::Serve(args),
            ..
        }) => args,
        Ok(_) => return Err(exit::INVALID),
        Err(e) => {
            let _ = e.print();
            return Err(exit::INVALID);
        }
    };
    let (engine, options) = cli::serve::prepare(&args)?;
    server::in_process(engine, options).await.map_err(|e| {
        eprintln!("error: {e}");
        exit::INVALID
    })
}

/// Parses the command line, runs the subcommand on a tokio runtime, and
/// returns the documented exit code.
#[must_use]
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help asked for is success; help shown because a subcommand or
            // argument is missing (`toka-host` alone) is a usage error, with
            // the code of every other one.
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit::SUCCESS
                }
                _ => exit::INVALID,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // `serve` runs calls in parallel; a single `run` needs one thread.
    let mut builder = match &cli.command {
        Command::Serve(args) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if let Some(n) = args.workers {
                b.worker_threads(n.max(1));
            }
            b
        }
        // Agents run side by side; MCP clients may call tools concurrently.
        Command::Orchestrate(_) | Command::Mcp(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::INVALID);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => cli::run::run(*args).await,
            Command::Tools(cmd) => cli::tools::run(cmd).await,
            Command::Serve(args) => cli::serve::run(*args).await,
            Command::Orchestrate(args) => cli::orchestrate::run(*args).await,
            Command::Exec(args) => cli::exec::run(*args).await,
            Command::Mcp(args) => cli::mcp::run(*args).await,
            Command::Token(cmd) => cli::token::run(cmd),
            Command::Push(args) => cli::oci::push(*args).await,
            Command::Pull(args) => cli::oci::pull(*args).await,
            Command::Signing(cmd) => cli::oci::signing(cmd),
            Command::New(args) => cli::new::run(&args),
            c @ (Command::Completions { .. } | Command::Man) => cli::generated(&c),
        }
    });
    // A guest may leave a read of the host's stdin pending on a blocking
    // thread; do not wait for it.
    runtime.shutdown_background();
    ExitCode::from(code)
}
