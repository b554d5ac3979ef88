//! `toka-host tools …`: operator commands about the tools of a manifests
//! directory: list, show, validate, call through the registry, and vet
//! (print and pin the digest of what a manifest runs).

use super::run::RunArgs;
use super::{DirArgs, EngineArgs};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::{Path, PathBuf};
use toka_runtime::catalog;
use toka_runtime::engine::{EntryKind, Miss, TokaEngine};
use toka_spec::directory::{Directory, EntryError};
use toka_spec::exit;
use toka_spec::manifest::{self, ToolSpec};
use toka_spec::outcome::ErrorKind;

/// `toka-host tools` subcommands.
#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// List every tool of the manifests directory: name, version, kind,
    /// capabilities, and whether it loaded (a broken manifest is listed with
    /// its error, and the others still load).
    List(ListArgs),

    /// Show one tool as resolved: its manifest with absolute paths, its
    /// input schema, and whether its compiled code is in the cache.
    Show(ShowArgs),

    /// Validate a manifests directory (default) or one manifest; exits 125
    /// if any manifest is invalid, so it can gate CI.
    Validate(ValidateArgs),

    /// Compile the code of every tool of a manifests directory (default), of
    /// one tool by name or of one manifest into the compile cache, so the
    /// first call does not wait for it (Python and JavaScript tools take
    /// seconds). Exits 125 if any fails. `serve` compiles its tools before
    /// it listens; this is for images and machines that `run` them.
    Compile(CompileArgs),

    /// Call a tool of the manifests directory: PLUGIN is its name (`run`
    /// also takes manifests, .wasm files and oci:// references). Takes the
    /// same flags as `toka-host run`.
    Call(Box<RunArgs>),

    /// Print the SHA-256 of the file a manifest runs, and whether it matches
    /// the manifest's pin; with --write, record it in the manifest.
    ///
    /// Vet the file first: the pin says "this exact content was reviewed".
    Vet(VetArgs),
}

/// `toka-host tools list` flags.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub dir: DirArgs,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `toka-host tools show` flags.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The tool's name.
    pub name: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub dir: DirArgs,
    /// Where compiled plugins are cached [default: $XDG_CACHE_HOME/toka or
    /// ~/.cache/toka].
    #[arg(long = "cache-dir", value_name = "DIR", env = "TOKA_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// `toka-host tools validate` flags.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A manifests directory or one manifest [default: --manifests].
    pub path: Option<PathBuf>,

    /// Print one JSON object per manifest (file, name, version, ok, error)
    /// as a JSON array.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub load: LoadArgs,
}

/// What `validate` and `compile` load with: the manifests directory, the
/// engine and cache, and how `oci://` code is pulled.
#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub dir: DirArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub engine: EngineArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub registry: super::oci::RegistryArgs,
}

impl LoadArgs {
    /// The engine these flags describe, with a compile spinner on a
    /// terminal unless `json` output is asked for.
    fn engine(&self, json: bool) -> Result<TokaEngine, (u8, String)> {
        let pulls = self
            .registry
            .settings()
            .map_err(|e| (exit::INVALID, e.to_string()))?;
        let engine = TokaEngine::new(&self.engine.options(&super::LimitArgs::default()))
            .map_err(|e| (exit::INVALID, e.to_string()))?
            .with_registry(pulls);
        Ok(match super::progress::CompileSpinner::for_stderr() {
            Some(watch) if !json => engine.with_compile_watch(watch),
            _ => engine,
        })
    }
}

/// `toka-host tools compile` flags.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// A tool's name, a manifest, or a manifests directory [default:
    /// --manifests].
    pub target: Option<String>,

    /// Print a JSON array, one object per manifest (file, name, ok, cache,
    /// seconds, error).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub load: LoadArgs,
}

/// `toka-host tools vet` flags.
#[derive(Debug, Args)]
pub struct VetArgs {
    /// The manifest (.yaml).
    pub manifest: PathBuf,

    /// Write the digest into `spec.executable.sha256` (comments and layout
    /// of the file are kept).
    #[arg(long)]
    pub write: bool,
}

/// Runs a `tools` subcommand; returns the exit code.
pub async fn run(cmd: ToolsCommand) -> u8 {
    let result = match cmd {
        ToolsCommand::List(args) => list(&args),
        ToolsCommand::Show(args) => show(&args),
        ToolsCommand::Validate(args) => {
            // Loading compiles, which is blocking work.
            tokio::task::spawn_blocking(move || validate(&args))
                .await
                .unwrap_or_else(|e| Err((exit::INVALID, format!("validation failed: {e}"))))
        }
        ToolsCommand::Compile(args) => tokio::task::spawn_blocking(move || compile(&args))
            .await
            .unwrap_or_else(|e| Err((exit::INVALID, format!("compiling failed: {e}")))),
        ToolsCommand::Call(args) => return call(*args).await,
        ToolsCommand::Vet(args) => vet(&args).map_err(|e| (exit::INVALID, e)),
    };
    match result {
        Ok(code) => code,
        Err((code, message)) => {
            eprintln!("error: {message}");
            code
        }
    }
}

type Outcome = Result<u8, (u8, String)>;

fn registry(dir: &Path) -> Result<Directory, (u8, String)> {
    Directory::scan(dir).map_err(|e| (exit::INVALID, e.to_string()))
}

/// The state of a manifest's tool: the manifest parsed, and a pinned
/// executable still has the pinned bytes.
fn state(entry: &toka_spec::directory::Entry) -> Result<&ToolSpec, String> {
    let spec = entry.state.as_ref().map_err(|e| e.to_string())?;
    if spec.executable.sha256.is_some() {
        catalog::read_executable(spec).map_err(|e| e.to_string())?;
    }
    Ok(spec)
}

fn capabilities(spec: &ToolSpec) -> String {
    let c = &spec.capabilities;
    let mut words: Vec<String> = c.required.iter().map(|c| c.to_string()).collect();
    words.extend(c.optional.iter().map(|c| format!("{c}?")));
    if words.is_empty() {
        "-".into()
    } else {
        words.join(",")
    }
}

fn list(args: &ListArgs) -> Outcome {
    let reg = registry(&args.dir.manifests)?;
    if args.json {
        let rows: Vec<_> = reg
            .entries()
            .iter()
            .map(|e| match state(e) {
                Ok(s) => json!({
                    "name": s.name, "version": s.version, "kind": s.executable.kind,
                    "capabilities": s.capabilities, "description": s.description,
                    "manifest": e.file, "status": "ok",
                }),
                Err(err) => {
                    json!({ "manifest": e.file, "status": "error", "error": err })
                }
            })
            .collect();
        super::print_line(&serde_json::Value::Array(rows).to_string());
        return Ok(exit::SUCCESS);
    }
    let mut rows = vec![[
        "NAME".to_string(),
        "VERSION".into(),
        "KIND".into(),
        "CAPABILITIES".into(),
        "STATUS".into(),
    ]];
    for e in reg.entries() {
        rows.push(match state(e) {
            Ok(s) => [
                s.name.to_string(),
                s.version.to_string(),
                s.executable.kind.to_string(),
                capabilities(s),
                "ok".into(),
            ],
            Err(err) => {
                let file = e
                    .file
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                [
                    format!("({file})"),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    format!("error: {err}"),
                ]
            }
        });
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        super::print_line(&format!(
            "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        ));
    }
    Ok(exit::SUCCESS)
}

fn show(args: &ShowArgs) -> Outcome {
    let reg = registry(&args.dir.manifests)?;
    let spec = match reg.find(&args.name) {
        None => return Err((exit::NOT_FOUND, not_found(&reg, &args.name))),
        Some(e) => e
            .state
            .as_ref()
            .map_err(|err| (exit::INVALID, err.to_string()))?,
    };
    let cache = if spec.executable.kind.is_wasm() {
        cache_state(
            spec,
            &EngineArgs {
                cache_dir: args.cache_dir.clone(),
                no_cache: false,
            },
        )
    } else {
        json!("not compiled: runs as a process through the subprocess shim")
    };
    let v = json!({
        "tool": spec,
        "input_schema": spec.parameters,
        "cache": cache,
    });
    super::print_line(&serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string()));
    Ok(exit::SUCCESS)
}

fn not_found(reg: &Directory, name: &str) -> String {
    let names: Vec<String> = reg.tools().map(|t| t.name.to_string()).collect();
    format!(
        "no tool named `{name}` in {}; available: {}",
        reg.dir().display(),
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    )
}

/// Whether the cache holds authenticated compiled code for the tool's wasm.
fn cache_state(spec: &ToolSpec, engine: &EngineArgs) -> serde_json::Value {
    let options = engine.options(&super::LimitArgs::default());
    let engine = match TokaEngine::new(&options) {
        Ok(e) => e,
        Err(e) => return json!(format!("unknown: {e}")),
    };
    let cache = match engine.cache() {
        Ok(c) => c,
        Err(why) => return json!(format!("off: {why}")),
    };
    let Ok((bytes, digest)) = catalog::read_wasm(&spec.executable.path) else {
        return json!("unknown: the file cannot be read");
    };
    let kind = if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
        EntryKind::Module
    } else {
        EntryKind::Component
    };
    match cache.get(kind, digest.as_str()) {
        // The words of `run --json`'s `usage.cache`.
        Ok(_) => json!({ "state": "hit", "digest": digest, "dir": cache.dir() }),
        Err(Miss::Absent) => {
            json!({ "state": "miss", "reason": "not compiled yet", "digest": digest })
        }
        Err(Miss::Rejected(why)) => {
            json!({ "state": "rejected", "reason": why, "digest": digest })
        }
    }
}

/// A valid manifest's name and version, or why it is not valid.
type Validated = Result<(String, String), String>;

/// Validates as `serve` loads: the manifest, the pinned bytes, and the code
/// compiled (through the cache) and linked, so a file that is not wasm, a
/// component of the wrong world or a command where a tool is expected fails
/// here rather than at the first call.
fn validate(args: &ValidateArgs) -> Outcome {
    let path = args
        .path
        .clone()
        .unwrap_or_else(|| args.load.dir.manifests.clone());
    let engine = args.load.engine(args.json)?;
    let check = |spec: &ToolSpec| -> Result<(), String> {
        catalog::load_callable(&engine, spec.clone())
            .map(drop)
            .map_err(|e| e.to_string())
    };
    let results: Vec<(PathBuf, Validated)> = if path.is_file() {
        let r = manifest::load(&path)
            .map_err(|e| e.to_string())
            .and_then(|spec| {
                check(&spec)?;
                Ok((spec.name.to_string(), spec.version.to_string()))
            });
        vec![(path.clone(), r)]
    } else {
        let reg = registry(&path)?;
        reg.entries()
            .iter()
            .map(|e| {
                let r = e
                    .state
                    .as_ref()
                    .map_err(|e| e.to_string())
                    .and_then(|spec| {
                        check(spec)?;
                        Ok((spec.name.to_string(), spec.version.to_string()))
                    });
                (e.file.clone(), r)
            })
            .collect()
    };
    let bad = results.iter().filter(|(_, r)| r.is_err()).count();
    if args.json {
        let rows: Vec<_> = results
            .iter()
            .map(|(file, r)| match r {
                Ok((name, version)) => {
                    json!({ "file": file, "name": name, "version": version, "ok": true })
                }
                Err(e) => json!({ "file": file, "ok": false, "error": e }),
            })
            .collect();
        super::print_line(&serde_json::Value::Array(rows).to_string());
        return Ok(if bad == 0 {
            exit::SUCCESS
        } else {
            exit::INVALID
        });
    }
    for (file, r) in &results {
        match r {
            Ok((name, version)) => {
                super::print_line(&format!("ok     {name} {version} ({})", file.display()));
            }
            Err(e) => super::print_line(&format!("error  {e}")),
        }
    }
    match (bad, path.is_file()) {
        (0, true) => Ok(exit::SUCCESS),
        (0, false) => {
            super::print_line(&format!("{} manifests valid", results.len()));
            Ok(exit::SUCCESS)
        }
        (_, true) => Err((exit::INVALID, format!("{} is invalid", path.display()))),
        (_, false) => Err((
            exit::INVALID,
            format!("{bad} of {} manifests are invalid", results.len()),
        )),
    }
}

/// What compiling one manifest's code came to.
struct Compiled {
    file: PathBuf,
    name: Option<String>,
    /// `hit`, `miss`, `rejected` (recompiled), or `none` for a subprocess
    /// tool.
    result: Result<(&'static str, std::time::Duration), String>,
}

/// Loads each manifest's code as `run` does (pulling `oci://` code, checking
/// pins), which compiles it into the cache unless a trusted entry is there.
fn compile(args: &CompileArgs) -> Outcome {
    use toka_runtime::engine::CacheStatus;
    let engine = args.load.engine(args.json)?;
    if let Err(why) = engine.cache() {
        return Err((
            exit::INVALID,
            format!("the compile cache is off ({why}), so there is nowhere to compile to"),
        ));
    }
    let one = |file: PathBuf, spec: Result<ToolSpec, String>| -> Compiled {
        let name = spec.as_ref().ok().map(|s| s.name.to_string());
        let result = spec.and_then(|spec| {
            let tool = catalog::load(&engine, spec).map_err(|e| e.to_string())?;
            match tool.compile_info() {
                None => Ok(("none", std::time::Duration::ZERO)),
                Some((CacheStatus::Off(why), _)) => {
                    Err(format!("compiled, but not stored in the cache: {why}"))
                }
                Some((status, took)) => Ok((
                    match status {
                        CacheStatus::Hit => "hit",
                        CacheStatus::Rejected(_) => "rejected",
                        _ => "miss",
                    },
                    took,
                )),
            }
        });
        Compiled { file, name, result }
    };
    let target = args
        .target
        .clone()
        .map_or_else(|| args.load.dir.manifests.clone(), PathBuf::from);
    let results: Vec<Compiled> = if target.is_dir() {
        let reg = registry(&target)?;
        reg.entries()
            .iter()
            .map(|e| {
                one(
                    e.file.clone(),
                    e.state.as_ref().cloned().map_err(|e| e.to_string()),
                )
            })
            .collect()
    } else if target.is_file() {
        vec![one(
            target.clone(),
            manifest::load(&target).map_err(|e| e.to_string()),
        )]
    } else {
        let name = target.display().to_string();
        let reg = registry(&args.load.dir.manifests)?;
        let entry = reg
            .find(&name)
            .ok_or_else(|| (exit::NOT_FOUND, not_found(&reg, &name)))?;
        vec![one(
            entry.file.clone(),
            entry.state.as_ref().cloned().map_err(|e| e.to_string()),
        )]
    };
    let bad = results.iter().filter(|c| c.result.is_err()).count();
    if args.json {
        let rows: Vec<_> = results
            .iter()
            .map(|c| match &c.result {
                Ok((cache, took)) => json!({
                    "file": c.file, "name": c.name, "ok": true, "cache": cache,
                    "seconds": took.as_secs_f64(),
                }),
                Err(e) => json!({ "file": c.file, "name": c.name, "ok": false, "error": e }),
            })
            .collect();
        super::print_line(&serde_json::Value::Array(rows).to_string());
        return Ok(if bad == 0 {
            exit::SUCCESS
        } else {
            exit::INVALID
        });
    }
    for c in &results {
        let name = c.name.as_deref().unwrap_or("-");
        super::print_line(&match &c.result {
            Ok(("hit", _)) => format!("cached    {name} (already compiled)"),
            Ok(("none", _)) => format!("skipped   {name} (a subprocess tool: nothing to compile)"),
            Ok((_, took)) => format!("compiled  {name} in {:.2} s", took.as_secs_f64()),
            Err(e) => match &c.name {
                Some(name) => format!("error     {name}: {e}"),
                None => format!("error     {e}"),
            },
        });
    }
    match bad {
        0 => Ok(exit::SUCCESS),
        _ => Err((
            exit::INVALID,
            format!("{bad} of {} manifests could not be compiled", results.len()),
        )),
    }
}

async fn call(mut args: RunArgs) -> u8 {
    let reg = match registry(&args.dir.manifests) {
        Ok(r) => r,
        Err((code, message)) => {
            eprintln!("error: {message}");
            return code;
        }
    };
    match reg.find(&args.plugin) {
        None => {
            eprintln!("error: {}", not_found(&reg, &args.plugin));
            exit::NOT_FOUND
        }
        Some(e) => match &e.state {
            Err(EntryError::Invalid(err)) => {
                eprintln!("error: {err}");
                exit::INVALID
            }
            Err(err) => {
                eprintln!("error: {err}");
                exit::INVALID
            }
            Ok(_) => {
                args.plugin = e.file.display().to_string();
                super::run::run(args).await
            }
        },
    }
}

/// Exits 0 when the file matches its pin (or has none, or was just
/// pinned), and with the hash-mismatch code when it differs, so that `tools
/// vet` can gate CI.
fn vet(args: &VetArgs) -> Result<u8, String> {
    let file = &args.manifest;
    let spec = manifest::load_for_vetting(file).map_err(|e| e.to_string())?;
    let path = &spec.executable.path;
    let (_, digest) = catalog::read_wasm(path).map_err(|e| e.to_string())?;
    super::print_line(&format!("{digest}  {}", path.display()));
    match &spec.executable.sha256 {
        Some(p) if *p == digest => {
            super::print_line(&format!("matches the pin in {}", file.display()));
            return Ok(exit::SUCCESS);
        }
        Some(p) => super::print_line(&format!("differs from the pin {p} in {}", file.display())),
        None => super::print_line(&format!("{} pins no digest", file.display())),
    }
    if !args.write {
        super::print_line("review the file, then rerun with --write to pin it");
        return Ok(if spec.executable.sha256.is_some() {
            ErrorKind::HashMismatch.exit_code()
        } else {
            exit::SUCCESS
        });
    }
    // The manifest's text is edited, not re-serialized, so comments and
    // layout survive.
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("{}: {}", file.display(), manifest::io_reason(&e)))?;
    let updated = pin(&text, digest.as_str())
        .ok_or_else(|| format!("{}: cannot find where to write sha256; add `sha256: {digest}` under spec.executable by hand", file.display()))?;
    std::fs::write(file, &updated).map_err(|e| format!("{}: {e}", file.display()))?;
    manifest::load(file)
        .map_err(|e| format!("wrote the pin, but the manifest is still invalid: {e}"))?;
    super::print_line(&format!("pinned in {}", file.display()));
    Ok(exit::SUCCESS)
}

/// Returns `text` with `sha256` set to `digest` under `spec.executable`,
/// editing the text (not re-serializing) so comments and layout survive.
fn pin(text: &str, digest: &str) -> Option<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // An existing `sha256:` (block or flow style): replace its value.
    for line in &mut lines {
        if let Some(i) = line.find("sha256:") {
            let after = &line[i + "sha256:".len()..];
            let value_len = after
                .trim_start()
                .find(|c: char| {
                    !c.is_ascii_alphanumeric() && c != '<' && c != '>' && c != '"' && c != '\''
                })
                .unwrap_or(after.trim_start().len());
            let ws = after.len() - after.trim_start().len();
            let end = i + "sha256:".len() + ws + value_len;
            *line = format!("{}sha256: {digest}{}", &line[..i], &line[end..]);
            return Some(lines.join("\n") + "\n");
        }
    }
    // Block style: insert after `path:` with the same indentation.
    for (n, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("path:") && !line.contains('{') {
            let indent = &line[..line.len() - trimmed.len()];
            lines.insert(n + 1, format!("{indent}sha256: {digest}"));
            return Some(lines.join("\n") + "\n");
        }
    }
    // Flow style: `executable: { ..., path: x }`.
    for line in &mut lines {
        if line.contains("executable:")
            && let Some(close) = line.rfind('}')
        {
            line.insert_str(close, &format!(", sha256: {digest} "));
            return Some(lines.join("\n") + "\n");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::pin;

    #[test]
    fn pins_in_every_layout() {
        let d = "ab".repeat(32);
        let block = "spec:\n  executable:\n    type: shell\n    path: x.sh # the script\n";
        assert_eq!(
            pin(block, &d).unwrap(),
            format!(
                "spec:\n  executable:\n    type: shell\n    path: x.sh # the script\n    sha256: {d}\n"
            )
        );
        let existing = format!("    sha256: {} # vetted\n", "0".repeat(64));
        assert_eq!(
            pin(&existing, &d).unwrap(),
            format!("    sha256: {d} # vetted\n")
        );
        let flow = "  executable: { type: shell, path: x.sh }\n";
        let out = pin(flow, &d).unwrap();
        assert!(
            out.contains(&format!("path: x.sh , sha256: {d} }}")),
            "{out}"
        );
        let flow_pinned = format!(
            "  executable: {{ type: shell, path: x.sh, sha256: {} }}\n",
            "1".repeat(64)
        );
        assert!(
            pin(&flow_pinned, &d)
                .unwrap()
                .contains(&format!("sha256: {d} }}"))
        );
    }
}
