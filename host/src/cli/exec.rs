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
// No manifest asks for capabilities here: the code gets exactly what --dir,
// --ro-dir, --env and --allow-net give, so --grant has nothing to grant.
#[command(mut_arg("grant", |a| a.hide(true)))]
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

    /// Where the interpreter components are (python-exec.wasm, js-exec.wasm)
    /// [default: the first of DIR_OF_BINARY/runtimes,
    /// DIR_OF_BINARY/../share/toka/runtimes, $XDG_DATA_HOME/toka/runtimes
    /// (~/.local/share/toka/runtimes), ./plugins/build that has it].
    #[arg(long, value_name = "DIR", env = "TOKA_RUNTIMES")]
    pub runtimes: Option<PathBuf>,

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
    let candidates = match &args.runtimes {
        Some(dir) => vec![dir.clone()],
        None => runtime_dirs(),
    };
    let file = args.lang.runtime();
    let Some(runtime) = candidates
        .iter()
        .map(|d| d.join(file))
        .find(|p| p.is_file())
    else {
        let looked: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
        eprintln!(
            "error: the {} runtime is not built: no {file} in {}; build it with `scripts/build-plugins.sh {}` or point --runtimes (TOKA_RUNTIMES) at the folder that has it",
            args.lang.name(),
            looked.join(", "),
            if matches!(args.lang, Lang::Python) {
                "python"
            } else {
                "js"
            },
        );
        return exit::NOT_FOUND;
    };
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

/// Where an installed binary finds its interpreters: beside it, in the
/// install prefix's share directory, in the user's data directory, then in
/// a checkout's build directory.
fn runtime_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(bin) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(std::path::Path::to_path_buf))
    {
        dirs.push(bin.join("runtimes"));
        dirs.push(bin.join("../share/toka/runtimes"));
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    if let Some(d) = data {
        dirs.push(d.join("toka/runtimes"));
    }
    dirs.push(PathBuf::from("plugins/build"));
    dirs
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
