//! `toka-host run`: find the plugin (a tool name, a manifest or a `.wasm`),
//! load it through the catalog, call it once through the runtime's call
//! path, and report the outcome as text or as its one JSON form, with the
//! documented exit code. A workflow runs as one agent, with live progress.

use super::oci::PullError;
use super::{AuditArgs, DirArgs, SandboxArgs};
use clap::Args;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toka_runtime::agents::{AgentHost, AgentRequest, AgentState, SpawnError};
use toka_runtime::call::{CallCtx, Caller, Runtime};
use toka_runtime::catalog::{self, DirCatalog, LoadError, Tool, ToolKind};
use toka_runtime::engine::{EngineError, TokaEngine};
use toka_runtime::events::{self, EventSink, HostEvent};
use toka_runtime::llm::LlmConfigError;
use toka_runtime::sandbox::{SandboxIo, Sink, Stdin};
use toka_spec::directory::{self, FindError};
use toka_spec::exit;
use toka_spec::manifest::{self, ManifestError, Schema, ToolSpec};
use toka_spec::outcome::{ErrorKind, Output, error_json};

/// The most bytes `--input` reads (from a file or stdin): a tool's input is
/// a JSON object, not a data set.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// `toka-host run` flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Tool name, manifest (.yaml), WebAssembly file (.wasm, .wat), or a
    /// tool in an OCI registry (oci://HOST/REPO:TAG or @sha256:DIGEST).
    pub plugin: String,

    /// Arguments for a command program, after `--` (argv[0] is PLUGIN).
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub dir: DirArgs,

    /// JSON input of a tool: inline JSON, @FILE to read a file, or - for
    /// stdin (at most 16MiB).
    #[arg(long, value_name = "JSON|@FILE|-", help_heading = "Input")]
    pub input: Option<String>,

    /// Set one property of a tool's input (repeatable). VALUE is taken as
    /// JSON (3, true, [1,2]) unless the tool's schema says the property is a
    /// string or VALUE is not valid JSON; then it is a string. The schema is
    /// the manifest's `spec.parameters`, or for a bare .wasm tool the one its
    /// own describe() returns (run with no capabilities).
    #[arg(long = "param", value_name = "KEY=VALUE", help_heading = "Input")]
    pub params: Vec<String>,

    /// Print one JSON object on stdout: output, error, logs and usage (fuel
    /// consumed, peak memory, wall time), instead of the plain output.
    #[arg(long, help_heading = "Output")]
    pub json: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub sandbox: SandboxArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub audit: AuditArgs,

    /// The name used in messages instead of PLUGIN (`exec` names the
    /// language, not the runtime's path).
    #[arg(skip)]
    pub display_name: Option<String>,
}

/// Why `run` stopped before or around the call.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No tool of that name.
    #[error(transparent)]
    Find(#[from] FindError),
    /// A path that does not exist.
    #[error("{}: no such file", .0.display())]
    Missing(PathBuf),
    /// A path that is not a regular file.
    #[error("{}: is {what}, not a manifest or a WebAssembly file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is (`a directory`, `a fifo`, `a symlink loop`, …).
        what: String,
    },
    /// A bad manifest.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The tool could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The engine could not start.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The model configuration is wrong.
    #[error(transparent)]
    Llm(#[from] LlmConfigError),
    /// Bad `--input`/`--param`/arguments.
    #[error("{0}")]
    Input(String),
    /// A workflow could not start.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// The tool could not be pulled from its registry.
    #[error(transparent)]
    Pull(#[from] PullError),
}

impl From<toka_oci::OciError> for RunError {
    fn from(e: toka_oci::OciError) -> RunError {
        RunError::Pull(PullError::Oci(e))
    }
}

impl RunError {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RunError::Find(FindError::NotFound { .. }) | RunError::Missing(_) => {
                ErrorKind::NotFound
            }
            RunError::Find(_) | RunError::Manifest(_) => ErrorKind::InvalidManifest,
            RunError::NotAFile { .. } => ErrorKind::InvalidInput,
            RunError::Load(e) => e.kind(),
            RunError::Engine(_) => ErrorKind::Host,
            RunError::Llm(_) | RunError::Input(_) => ErrorKind::InvalidInput,
            RunError::Spawn(e) => e.kind(),
            RunError::Pull(e) => e.kind(),
        }
    }

    /// The documented exit code.
    pub fn exit_code(&self) -> u8 {
        self.kind().exit_code()
    }
}

enum Target {
    Manifest(Box<ToolSpec>),
    Wasm(PathBuf),
}

/// Runs `toka-host run` and returns the process exit code.
pub async fn run(args: RunArgs) -> u8 {
    match run_inner(&args).await {
        Ok(code) => code,
        Err(e) => report_error(&args, &e),
    }
}

async fn run_inner(args: &RunArgs) -> Result<u8, RunError> {
    let registry = args.sandbox.registry.settings()?;
    let mut engine = TokaEngine::new(&args.sandbox.engine.options(&args.sandbox.limits))?
        .with_registry(registry);
    if let Some(watch) = super::progress::CompileSpinner::for_stderr() {
        engine = engine.with_compile_watch(watch);
    }
    let engine = Arc::new(engine);
    let target = if args.plugin.starts_with(toka_oci::SCHEME) {
        let reference: toka_oci::Reference = args
            .plugin
            .parse()
            .map_err(|e: toka_oci::ReferenceError| RunError::Pull(PullError::Oci(e.into())))?;
        let registry = engine.registry().map_err(PullError::Oci)?;
        let (_, spec) = super::oci::pull_tool(&registry, &reference).await?;
        Target::Manifest(Box::new(spec))
    } else {
        resolve_target(&args.plugin, &args.dir.manifests)?
    };
    let name = match &target {
        Target::Manifest(spec) => spec.name.to_string(),
        Target::Wasm(_) => args
            .display_name
            .clone()
            .unwrap_or_else(|| args.plugin.clone()),
    };
    let is_wasm = match &target {
        Target::Manifest(spec) => spec.executable.kind.is_wasm(),
        Target::Wasm(_) => true,
    };
    if is_wasm
        && let Err(why) = engine.cache()
        && !args.sandbox.engine.no_cache
    {
        eprintln!("warning: compile cache off: {why}");
    }
    // Loaded on this thread, not a blocking-pool one: a one-shot command
    // has nothing else to run meanwhile, and a second thread mapping and
    // faulting in the compiled code costs a thread start and cross-CPU TLB
    // flushes on every later mprotect (+0.5 ms of `run hello`'s ~4 ms).
    let mut tool = match target {
        Target::Manifest(spec) => catalog::load(&engine, *spec),
        Target::Wasm(path) => catalog::load_file(&engine, &path, &name),
    }?;
    let audit = args.audit.open().map_err(RunError::Input)?;
    let shim = args.sandbox.shim.options().map_err(RunError::Input)?;
    let workflow = tool.is_workflow();
    let llm = if workflow {
        super::llm_from_env(audit.clone())?
    } else {
        None
    };
    let catalog = Arc::new(DirCatalog::new(engine.clone(), args.dir.manifests.clone()));
    let runtime = Arc::new(Runtime {
        engine,
        catalog: catalog.clone(),
        grants: args.sandbox.grants.grants(&args.sandbox.limits),
        shim,
        llm,
        audit,
    });
    if tool.spec.is_none() && tool.takes_json() && !workflow {
        tool.described = described_schema(&runtime, &tool).await;
    }
    let tool = Arc::new(tool);
    if workflow {
        if tool.spec.is_none() {
            return Err(RunError::Input(format!(
                "`{name}` is a workflow; run it through a manifest with `spec.executable.type: workflow`, which lists the tools it may call"
            )));
        }
        return run_workflow(args, runtime, tool).await;
    }
    let (input, io) = call_io(args, &tool)?;
    let mut ctx = CallCtx::new(Caller::Operator, io);
    ctx.collect_logs = args.json;
    let outcome = runtime.call(tool.clone(), input, ctx).await;

    if args.json {
        let mut v = outcome.to_json();
        if let Some(o) = v.as_object_mut() {
            o.insert("kind".into(), kind_json(&tool));
            if let Some((cache, load_time)) = tool.compile_info() {
                o.insert(
                    "compile".into(),
                    json!({ "cache": cache, "load_time_ms": load_time.as_secs_f64() * 1000.0 }),
                );
            }
        }
        super::print_line(&v.to_string());
        return Ok(u8::try_from(outcome.exit_code() & 0xff).unwrap_or(exit::INVALID));
    }
    Ok(match &outcome.result {
        Ok(Output::Json(v)) => {
            super::print_line(&v.to_string());
            exit::SUCCESS
        }
        Ok(Output::Text(text)) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            exit::SUCCESS
        }
        Ok(Output::Exit(code)) => (*code as u32 & 0xff) as u8,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    })
}

/// A bare `.wasm` tool's own input schema, from its `describe`, so that
/// `--param` values are typed and the input checked as with a manifest. A
/// `describe` that fails or gives no usable schema is a warning: the call
/// still runs, with any JSON object as input.
async fn described_schema(runtime: &Runtime, tool: &Tool) -> Option<Schema> {
    let name = &tool.name;
    let info = match runtime.describe(tool).await {
        Ok(info) => info,
        Err(e) => {
            eprintln!(
                "warning: `{name}`'s describe() failed ({e}); --param values are not typed and the input is not checked"
            );
            return None;
        }
    };
    let schema = serde_json::from_str::<Value>(&info.input_schema)
        .map_err(|e| format!("not JSON: {e}"))
        .and_then(|json| {
            if json.get("type").and_then(Value::as_str) == Some("object") {
                Schema::compile(json).map_err(|e| e.to_string())
            } else {
                Err("not an object schema (`type: object`)".into())
            }
        });
    match schema {
        Ok(schema) => Some(schema),
        Err(why) => {
            eprintln!(
                "warning: `{name}`'s describe() gives an input schema that is {why}; --param values are not typed and the input is not checked"
            );
            None
        }
    }
}

/// What `--json` says the plugin is: `tool`, `workflow`, `command` or
/// `preview1` for wasm, the manifest's type for a subprocess tool.
fn kind_json(tool: &Tool) -> Value {
    match tool.kind() {
        ToolKind::Wasm(k) => json!(k),
        ToolKind::Process => json!(tool.spec.as_ref().map(|s| s.executable.kind)),
    }
}

/// A tool's input and stdio, or a command's arguments and stdio.
fn call_io(args: &RunArgs, tool: &Tool) -> Result<(Value, SandboxIo), RunError> {
    let events = if args.json {
        events::discard()
    } else {
        print_events()
    };
    let capture = || Sink::capture(0);
    let name = &tool.name;
    if tool.takes_json() {
        if !args.args.is_empty() {
            return Err(RunError::Input(format!(
                "`{name}` is a tool: it takes JSON input (--input or --param), not arguments after --"
            )));
        }
        let input = build_input(args, Some(tool.parameters().json()))?;
        let io = SandboxIo {
            args: vec![name.clone()],
            stdin: Stdin::Empty,
            // A tool's result is its stdout under `run`; what the guest
            // itself prints is log output.
            stdout: if args.json {
                capture()
            } else {
                Sink::HostStderr
            },
            stderr: if args.json {
                capture()
            } else {
                Sink::HostStderr
            },
            events,
        };
        return Ok((input, io));
    }
    if args.input.is_some() || !args.params.is_empty() {
        let what = match tool.kind() {
            ToolKind::Wasm(k) => k.describe(),
            ToolKind::Process => "a program",
        };
        return Err(RunError::Input(format!(
            "`{name}` is {what}: pass arguments after -- and data on stdin; --input and --param are for tools"
        )));
    }
    let argv0 = if tool.spec.is_some() {
        name.clone()
    } else {
        args.plugin.clone()
    };
    let io = SandboxIo {
        args: std::iter::once(argv0)
            .chain(args.args.iter().cloned())
            .collect(),
        stdin: Stdin::Host,
        stdout: if args.json {
            capture()
        } else {
            Sink::HostStdout
        },
        stderr: if args.json {
            capture()
        } else {
            Sink::HostStderr
        },
        events,
    };
    Ok((Value::Null, io))
}

/// Logs and progress as lines on stderr: `[tool] level: message`.
fn print_events() -> EventSink {
    Arc::new(|tool: &str, e: HostEvent<'_>| match e {
        HostEvent::Log { level, message } => {
            eprintln!("[{tool}] {}: {message}", level.as_str());
        }
        HostEvent::Progress { fraction, message } => {
            eprintln!("[{tool}] {:>3.0}% {message}", fraction * 100.0);
        }
    })
}

/// Runs a workflow as one agent, showing its progress live; returns the exit
/// code.
async fn run_workflow(
    args: &RunArgs,
    runtime: Arc<Runtime>,
    tool: Arc<Tool>,
) -> Result<u8, RunError> {
    let name = tool.name.clone();
    if !args.args.is_empty() {
        return Err(RunError::Input(format!(
            "`{name}` is a workflow: it takes JSON input (--input or --param), not arguments after --"
        )));
    }
    let input = build_input(args, Some(tool.parameters().json()))?;
    let host = Arc::new(AgentHost::new(
        runtime,
        tokio::sync::broadcast::channel(4096).0,
    ));
    let mut events = host.subscribe();
    let agent = host
        .spawn_tool(
            tool,
            AgentRequest {
                name: None,
                workflow: name.clone(),
                input,
                limits: Default::default(),
                caller: Caller::Operator,
                scope: None,
            },
        )
        .await?;
    let mut progress = super::progress::Progress::new(args.json, name.len());
    let status =
        super::progress::follow(&mut events, &mut progress, std::slice::from_ref(&agent)).await;
    let Some(status) = status.into_iter().next() else {
        return Ok(exit::INVALID);
    };
    match status.state {
        AgentState::Completed => {
            if !args.json {
                let out = status.output.unwrap_or(Value::Null);
                super::print_line(&out.to_string());
            }
            Ok(exit::SUCCESS)
        }
        _ => {
            let error = status.error.unwrap_or(Value::Null);
            if !args.json {
                eprintln!(
                    "error: workflow `{name}` failed: {}",
                    error["message"].as_str().unwrap_or("unknown error")
                );
            }
            Ok(super::progress::exit_code(&error))
        }
    }
}

fn resolve_target(plugin: &str, manifests: &Path) -> Result<Target, RunError> {
    let path = Path::new(plugin);
    let ext = path.extension().and_then(|e| e.to_str());
    let is_path = matches!(ext, Some("wasm" | "wat" | "yaml" | "yml"))
        || plugin.contains(std::path::MAIN_SEPARATOR);
    if !is_path {
        return Ok(Target::Manifest(Box::new(directory::find_by_name(
            manifests, plugin,
        )?)));
    }
    match directory::not_a_file(path) {
        None => {}
        Some(what) if what == "missing" => return Err(RunError::Missing(path.to_path_buf())),
        Some(what) => {
            return Err(RunError::NotAFile {
                path: path.to_path_buf(),
                what,
            });
        }
    }
    let is_manifest = match ext {
        Some("yaml" | "yml") => true,
        Some("wasm" | "wat") => false,
        _ => {
            let mut head = [0u8; 4];
            let n = std::fs::File::open(path)
                .and_then(|mut f| f.read(&mut head))
                .unwrap_or(0);
            &head[..n] != b"\0asm"
        }
    };
    if is_manifest {
        Ok(Target::Manifest(Box::new(manifest::load(path)?)))
    } else {
        Ok(Target::Wasm(path.to_path_buf()))
    }
}

/// Reads `--input`: inline, `@FILE` or `-` (stdin), at most
/// [`MAX_INPUT_BYTES`].
fn read_input(spec: &str) -> Result<(String, String), RunError> {
    let too_big = |origin: &str| {
        RunError::Input(format!(
            "{origin}: the input is larger than {}; a tool's input is a JSON object, pass large data as a granted file instead",
            toka_spec::units::ByteSize(MAX_INPUT_BYTES)
        ))
    };
    let text = |bytes: Vec<u8>, origin: &str| {
        String::from_utf8(bytes)
            .map_err(|_| RunError::Input(format!("{origin}: the input is not UTF-8 text")))
    };
    if spec == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| RunError::Input(format!("--input -: cannot read stdin: {e}")))?;
        if bytes.len() as u64 > MAX_INPUT_BYTES {
            return Err(too_big("--input -"));
        }
        Ok((text(bytes, "--input -")?, "stdin".to_string()))
    } else if let Some(file) = spec.strip_prefix('@') {
        let origin = format!("--input @{file}");
        let bytes = catalog::read_capped(Path::new(file), MAX_INPUT_BYTES)
            .map_err(|e| RunError::Input(format!("{origin}: {}", manifest::io_reason(&e))))?
            .ok_or_else(|| too_big(&origin))?;
        Ok((text(bytes, &origin)?, file.to_string()))
    } else {
        Ok((spec.to_string(), "--input".to_string()))
    }
}

/// Builds a tool's JSON input from `--input` and `--param`; the schema says
/// which `--param` values are strings.
fn build_input(args: &RunArgs, schema: Option<&Value>) -> Result<Value, RunError> {
    let mut value = match args.input.as_deref() {
        None => Value::Object(Default::default()),
        Some(spec) => {
            let (text, origin) = read_input(spec)?;
            serde_json::from_str(&text).map_err(|e| {
                RunError::Input(format!(
                    "{origin} is not valid JSON: {e}; a tool's input is a JSON object like {{\"name\": \"Ada\"}}"
                ))
            })?
        }
    };
    let props = schema.and_then(|s| s.get("properties"));
    for p in &args.params {
        let (key, raw) = p.split_once('=').ok_or_else(|| {
            RunError::Input(format!(
                "--param {p}: write KEY=VALUE, like --param name=Ada"
            ))
        })?;
        let wants_string = props
            .and_then(|ps| ps.get(key))
            .and_then(|d| d.get("type"))
            .and_then(|t| t.as_str())
            == Some("string");
        let v = if wants_string {
            Value::String(raw.to_string())
        } else {
            serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
        };
        match value.as_object_mut() {
            Some(obj) => {
                obj.insert(key.to_string(), v);
            }
            None => {
                return Err(RunError::Input(
                    "--param needs the input to be a JSON object; --input gave something else"
                        .into(),
                ));
            }
        }
    }
    // The call path checks the input against the whole schema.
    Ok(value)
}

fn report_error(args: &RunArgs, e: &RunError) -> u8 {
    if args.json {
        super::print_line(
            &json!({
                "tool": args.plugin,
                "ok": false,
                "output": null,
                "exit_code": e.exit_code(),
                "error": error_json(e.kind(), &e.to_string(), None),
            })
            .to_string(),
        );
    } else {
        eprintln!("error: {e}");
    }
    e.exit_code()
}
