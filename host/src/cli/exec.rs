//! `toka-host exec`: dynamic code run inside a language interpreter that is
//! itself a WASI component (`python-exec.wasm`, `js-exec.wasm`, built by
//! scripts/build-plugins.sh), through the same path as `run`: same sandbox,
//! limits, grants, compile cache and exit codes.

use super::run::{self, RunArgs};
use super::{AuditArgs, DirArgs, SandboxArgs};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use toka_spec::exit;

/// Shown after `exec --help`.
pub const AFTER_HELP: &str = "\
Examples:
  toka-host exec --lang python \"print('Hello from Python')\"
  toka-host exec --lang js \"console.log(6 * 7)\"
  toka-host exec --lang python --file script.py --ro-dir ./data::/data --timeout 5s

The code's stdout and stderr are the command's; its exit code is 0, or 1 after an
uncaught exception, or the limit's code (124) when fuel, memory, time or output
runs out.";

/// The languages `exec` runs.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Lang {
    /// CPython 3 (componentize-py), with the standard-library modules listed
    /// in plugins/python/exec/app.py (no sockets).
    Python,
    /// JavaScript (SpiderMonkey via componentize-js).
    Js,
}

impl Lang {
    fn runtime(self) -> &'static str {
        match self {
            Lang::Python => "python-exec.wasm",
            Lang::Js => "js-exec.wasm",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }
}

/// `toka-host exec` flags.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The language of the code.
    #[arg(long, value_enum)]
    pub lang: Lang,

    /// The code to run.
    #[arg(
        value_name = "CODE",
        required_unless_present = "file",
        conflicts_with = "file"
    )]
    pub code: Option<String>,

    /// Run the code in FILE instead (read by the host: the code gets no file
    /// access unless granted).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Where the interpreter components are (python-exec.wasm, js-exec.wasm).
    #[arg(
        long,
        value_name = "DIR",
        env = "TOKA_RUNTIMES",
        default_value = "plugins/build"
    )]
    pub runtimes: PathBuf,

    /// Print one JSON object (stdout, stderr, exit code, usage) instead of
    /// the code's own output.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub sandbox: SandboxArgs,
}

/// Most bytes of code `--file` reads.
const MAX_CODE: u64 = 4 << 20;

/// Runs `toka-host exec`; returns the exit code.
pub async fn run(args: ExecArgs) -> u8 {
    let code = match (&args.code, &args.file) {
        (Some(c), _) => c.clone(),
        (None, Some(f)) => match read_code(f) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::INVALID;
            }
        },
        (None, None) => {
            eprintln!("error: give the code as an argument or with --file");
            return exit::INVALID;
        }
    };
    let runtime = args.runtimes.join(args.lang.runtime());
    if !runtime.is_file() {
        eprintln!(
            "error: the {} runtime is not built: {} does not exist; build it with `scripts/build-plugins.sh {}` or point --runtimes (TOKA_RUNTIMES) at the folder that has it",
            args.lang.name(),
            runtime.display(),
            if matches!(args.lang, Lang::Python) {
                "python"
            } else {
                "js"
            },
        );
        return exit::NOT_FOUND;
    }
    run::run(RunArgs {
        plugin: runtime.display().to_string(),
        args: vec!["-c".into(), code],
        dir: DirArgs {
            manifests: PathBuf::from("."),
        },
        input: None,
        params: Vec::new(),
        json: args.json,
        sandbox: args.sandbox,
        audit: AuditArgs::default(),
        display_name: Some(args.lang.name().to_string()),
    })
    .await
}

fn read_code(path: &std::path::Path) -> Result<String, String> {
    let bytes = toka_runtime::catalog::read_capped(path, MAX_CODE)
        .map_err(|e| {
            format!(
                "--file {}: {}",
                path.display(),
                toka_spec::manifest::io_reason(&e)
            )
        })?
        .ok_or_else(|| format!("--file {}: larger than 4MiB", path.display()))?;
    String::from_utf8(bytes).map_err(|_| format!("--file {}: not UTF-8 text", path.display()))
}
