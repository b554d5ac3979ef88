//! `toka-host run`: resolve a plugin, build its policy, load it through the
//! cache, invoke it once, and report the outcome as text or as one JSON
//! envelope, with the documented exit code.

use super::{AuditArgs, DirArgs, SandboxArgs};
use crate::agents::{AgentHost, AgentRequest, AgentState};
use crate::engine::{EngineError, LoadError, TokaEngine};
use crate::exit;
use crate::invoke::{self, Plugin, PluginKind};
use crate::manifest::{self, ExecutableKind, FindError, ManifestError, ToolSpec};
use crate::outcome::{CallError, Outcome, Output, Usage};
use crate::policy::{self, PolicyError};
use crate::sandbox::{EventSink, HostEvent, LogLevel, SandboxIo, Sink, Stdin};
use crate::shim;
use crate::workflow::{DirTools, load_callable};
use clap::Args;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// `toka-host run` flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Tool name, manifest (.yaml) or WebAssembly file (.wasm, .wat).
    pub plugin: String,

    /// Arguments for a command program, after `--` (argv[0] is PLUGIN).
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub dir: DirArgs,

    /// JSON input of a tool: inline JSON, @FILE to read a file, or - for stdin.
    #[arg(long, value_name = "JSON|@FILE|-", help_heading = "Input")]
    pub input: Option<String>,

    /// Set one property of a tool's input (repeatable). VALUE is taken as
    /// JSON (3, true, [1,2]) unless the tool's schema says the property is a
    /// string or VALUE is not valid JSON; then it is a string.
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
    /// A bad manifest.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Not granted, or a bad grant.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The engine could not start.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A file could not be read.
    #[error("cannot read {}: {}", path.display(), manifest::io_reason(source))]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Bytes that are not a plugin.
    #[error("{}: {source}", path.display())]
    Load {
        /// The file.
        path: PathBuf,
        /// Why.
        source: LoadError,
    },
    /// Bad `--input`/`--param`/arguments.
    #[error("{0}")]
    Input(String),
    /// A subprocess tool was refused before it started.
    #[error(transparent)]
    Shim(#[from] shim::ShimError),
    /// The call itself failed.
    #[error(transparent)]
    Call(#[from] CallError),
}

impl RunError {
    /// The documented exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Find(FindError::NotFound { .. }) | RunError::Missing(_) => exit::NOT_FOUND,
            RunError::Policy(PolicyError::Denied { .. }) => exit::DENIED,
            RunError::Call(c) => c.exit_code(),
            _ => exit::INVALID,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            RunError::Find(FindError::NotFound { .. }) | RunError::Missing(_) => "not-found",
            RunError::Policy(PolicyError::Denied { .. }) => "denied",
            RunError::Manifest(_) | RunError::Find(_) => "invalid-manifest",
            RunError::Input(_) => "invalid-input",
            RunError::Load { .. } => "invalid-wasm",
            RunError::Call(CallError::Tool { .. }) => "tool-error",
            RunError::Call(CallError::Limit { .. }) => "limit-exceeded",
            RunError::Shim(shim::ShimError::HashMismatch { .. }) => "hash-mismatch",
            RunError::Shim(shim::ShimError::Weaker { .. }) => "weaker-sandbox",
            RunError::Call(CallError::Trap { .. }) => "trap",
            RunError::Call(CallError::Link { .. }) => "link",
            RunError::Call(_) => "call",
            _ => "host",
        }
    }
}

enum Target {
    Manifest(Box<ToolSpec>),
    Wasm(PathBuf),
}

/// What a run prepared before calling, for the report.
struct Prepared {
    engine: TokaEngine,
    plugin: Plugin,
    policy: policy::Policy,
    input: String,
    io: SandboxIo,
}

/// Collected when `--json` asks for everything in one object.
#[derive(Default)]
struct Collected {
    logs: Vec<Value>,
}

/// Runs `toka-host run` and returns the process exit code.
pub async fn run(args: RunArgs) -> u8 {
    let collected = Arc::new(Mutex::new(Collected::default()));
    let events: EventSink = if args.json {
        let c = collected.clone();
        Arc::new(move |_tool: &str, e: HostEvent<'_>| {
            let v = match e {
                HostEvent::Log { level, message } => json!({"log": level, "message": message}),
                HostEvent::Progress { fraction, message } => {
                    json!({"progress": fraction, "message": message})
                }
            };
            if let Ok(mut c) = c.lock() {
                c.logs.push(v);
            }
        })
    } else {
        Arc::new(|tool: &str, e: HostEvent<'_>| match e {
            HostEvent::Log { level, message } => {
                let level = match level {
                    LogLevel::Trace => "trace",
                    LogLevel::Debug => "debug",
                    LogLevel::Info => "info",
                    LogLevel::Warn => "warn",
                    LogLevel::Error => "error",
                };
                eprintln!("[{tool}] {level}: {message}");
            }
            HostEvent::Progress { fraction, message } => {
                eprintln!("[{tool}] {:>3.0}% {message}", fraction * 100.0);
            }
        })
    };

    let target = match resolve_target(&args.plugin, &args.dir.manifests) {
        Ok(t) => t,
        Err(e) => return report_error(&args, &e),
    };
    let (subject, outcome, stdout, stderr) = match target {
        Target::Manifest(spec) if spec.executable.kind == ExecutableKind::Workflow => {
            return match run_workflow(&args, *spec).await {
                Ok(code) => code,
                Err(e) => report_error(&args, &e),
            };
        }
        Target::Manifest(spec) if !spec.executable.kind.is_wasm() => {
            match run_shim(&args, &spec, &events).await {
                Ok((subject, outcome)) => (subject, outcome, None, None),
                Err(e) => return report_error(&args, &e),
            }
        }
        target => {
            let prepared = match prepare(&args, target, events) {
                Ok(p) => p,
                Err(e) => return report_error(&args, &e),
            };
            let Prepared {
                engine,
                plugin,
                policy,
                input,
                io,
            } = prepared;
            let (stdout, stderr) = (io.stdout.clone(), io.stderr.clone());
            let outcome = invoke::invoke(&engine, &plugin, &policy, io, &input).await;
            let subject = json!({
                "tool": plugin.name,
                "kind": plugin.kind,
                "digest": plugin.loaded.digest,
                "compile": {
                    "cache": plugin.loaded.cache,
                    "load_time_ms": plugin.loaded.load_time.as_secs_f64() * 1000.0,
                },
            });
            (subject, outcome, Some(stdout), Some(stderr))
        }
    };

    if args.json {
        let logs = collected.lock().map(|c| c.logs.clone()).unwrap_or_default();
        let envelope = envelope(subject, &outcome, stdout.as_ref(), stderr.as_ref(), logs);
        print_json(&envelope);
    }
    match outcome.result {
        Ok(Output::Tool(json)) => {
            if !args.json {
                super::print_line(&json);
            }
            exit::SUCCESS
        }
        Ok(Output::Text(text)) => {
            if !args.json {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            }
            exit::SUCCESS
        }
        Ok(Output::Exit(code)) => (code as u32 & 0xff) as u8,
        Err(e) => {
            let e = RunError::Call(e);
            if !args.json {
                eprintln!("error: {e}");
            }
            e.exit_code()
        }
    }
}

/// Runs a workflow as one agent, showing its progress live; returns the exit
/// code.
async fn run_workflow(args: &RunArgs, spec: ToolSpec) -> Result<u8, RunError> {
    if !args.args.is_empty() {
        return Err(RunError::Input(format!(
            "`{}` is a workflow: it takes JSON input (--input or --param), not arguments after --",
            spec.name
        )));
    }
    let input: Value = serde_json::from_str(&build_input(args, Some(&spec.parameters))?)
        .map_err(|e| RunError::Input(e.to_string()))?;
    let audit = args.audit.open().map_err(RunError::Input)?;
    let llm = super::llm_from_env(audit.clone()).map_err(RunError::Input)?;
    let engine = Arc::new(TokaEngine::new(
        &args.sandbox.engine.options(&args.sandbox.limits),
    )?);
    let shim = args.sandbox.shim.options().map_err(RunError::Input)?;
    let grants = args.sandbox.grants.grants(&args.sandbox.limits);
    let name = spec.name.to_string();
    let callable = {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || load_callable(&engine, spec))
            .await
            .map_err(|e| RunError::Input(e.to_string()))?
            .map_err(RunError::Input)?
    };
    let tools = Arc::new(DirTools::new(engine.clone(), args.dir.manifests.clone()));
    let host = Arc::new(AgentHost::new(
        engine,
        tools,
        grants,
        shim,
        llm,
        audit,
        tokio::sync::broadcast::channel(4096).0,
    ));
    let mut events = host.subscribe();
    let agent = host
        .spawn_callable(
            Arc::new(callable),
            AgentRequest {
                name: None,
                workflow: name.clone(),
                input,
                limits: Default::default(),
            },
        )
        .map_err(|e| match e {
            crate::agents::SpawnError::Policy(p) => RunError::Policy(p),
            other => RunError::Input(other.to_string()),
        })?;
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

/// Runs a shell, Python or external tool through the subprocess shim.
async fn run_shim(
    args: &RunArgs,
    spec: &ToolSpec,
    events: &EventSink,
) -> Result<(Value, Outcome), RunError> {
    if !args.args.is_empty() {
        return Err(RunError::Input(format!(
            "`{}` is a tool: it takes JSON input (--input or --param), not arguments after --",
            spec.name
        )));
    }
    let grants = args.sandbox.grants.grants(&args.sandbox.limits);
    let policy = policy::resolve(spec.name.as_str(), Some(spec), &grants, |k| {
        std::env::var(k).ok()
    })?;
    let input = build_input(args, Some(&spec.parameters))?;
    let options = args.sandbox.shim.options().map_err(RunError::Input)?;
    let outcome = shim::run(spec, &policy, &input, &options, events).await?;
    let subject = json!({
        "tool": spec.name,
        "kind": spec.executable.kind,
        "digest": spec.executable.sha256,
    });
    Ok((subject, outcome))
}

fn prepare(args: &RunArgs, target: Target, events: EventSink) -> Result<Prepared, RunError> {
    let (spec, wasm_path) = match target {
        Target::Manifest(spec) => {
            let path = spec.executable.path.clone();
            (Some(*spec), path)
        }
        Target::Wasm(path) => (None, path),
    };
    let name = match &spec {
        Some(s) => s.name.to_string(),
        None => args
            .display_name
            .clone()
            .unwrap_or_else(|| args.plugin.clone()),
    };

    let grants = args.sandbox.grants.grants(&args.sandbox.limits);
    let policy = policy::resolve(&name, spec.as_ref(), &grants, |k| std::env::var(k).ok())?;
    for host in &policy.network.unresolved {
        eprintln!(
            "warning: --allow-net host `{host}` did not resolve; connections to it will be refused"
        );
    }

    let engine = TokaEngine::new(&args.sandbox.engine.options(&args.sandbox.limits))?;
    if let Err(why) = engine.cache()
        && !args.sandbox.engine.no_cache
    {
        eprintln!("warning: compile cache off: {why}");
    }
    let bytes = read_capped(&wasm_path)?;
    let loaded = engine.load(&bytes).map_err(|source| RunError::Load {
        path: wasm_path.clone(),
        source,
    })?;
    if let Some(spec) = &spec
        && let Some(pin) = &spec.executable.sha256
        && *pin != loaded.digest
    {
        // Checked again on the very bytes that were compiled: the file may
        // have changed since the manifest was validated.
        return Err(RunError::Manifest(ManifestError::Invalid {
            file: spec.manifest.clone(),
            line: None,
            field: "spec.executable.sha256".into(),
            message: manifest::pin_mismatch(&spec.manifest, &wasm_path, &loaded.digest, pin),
        }));
    }
    let plugin = Plugin::new(
        &engine,
        &name,
        loaded,
        spec.as_ref().map(|s| s.executable.kind),
    )?;

    let capture = |limit: u64| Sink::capture(limit);
    let limit = policy.limits.output;
    let (input, io) = match plugin.kind {
        PluginKind::Workflow => {
            return Err(RunError::Input(format!(
                "`{name}` is a workflow; run it through a manifest with `spec.executable.type: workflow`, which lists the tools it may call"
            )));
        }
        PluginKind::Tool => {
            if !args.args.is_empty() {
                return Err(RunError::Input(format!(
                    "`{name}` is a tool: it takes JSON input (--input or --param), not arguments after --"
                )));
            }
            let schema = spec.as_ref().map(|s| &s.parameters);
            let input = build_input(args, schema)?;
            let io = SandboxIo {
                args: vec![name.clone()],
                stdin: Stdin::Empty,
                // A tool's result is its stdout under `run`; what the guest
                // itself prints is log output.
                stdout: if args.json {
                    capture(limit)
                } else {
                    Sink::HostStderr
                },
                stderr: if args.json {
                    capture(limit)
                } else {
                    Sink::HostStderr
                },
                events,
            };
            (input, io)
        }
        PluginKind::Command | PluginKind::Preview1 => {
            if args.input.is_some() || !args.params.is_empty() {
                return Err(RunError::Input(format!(
                    "`{name}` is {}: pass arguments after -- and data on stdin; --input and --param are for tools",
                    plugin.kind.describe()
                )));
            }
            let argv0 = if spec.is_some() {
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
                    capture(limit)
                } else {
                    Sink::HostStdout
                },
                stderr: if args.json {
                    capture(limit)
                } else {
                    Sink::HostStderr
                },
                events,
            };
            (String::new(), io)
        }
    };
    Ok(Prepared {
        engine,
        plugin,
        policy,
        input,
        io,
    })
}

fn resolve_target(plugin: &str, manifests: &Path) -> Result<Target, RunError> {
    let path = Path::new(plugin);
    let ext = path.extension().and_then(|e| e.to_str());
    let is_path = matches!(ext, Some("wasm" | "wat" | "yaml" | "yml"))
        || plugin.contains(std::path::MAIN_SEPARATOR);
    if !is_path {
        return Ok(Target::Manifest(Box::new(manifest::find_by_name(
            manifests, plugin,
        )?)));
    }
    if !path.is_file() {
        return Err(RunError::Missing(path.to_path_buf()));
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

fn read_capped(path: &Path) -> Result<Vec<u8>, RunError> {
    super::read_capped(path, manifest::MAX_EXECUTABLE_BYTES)
        .map_err(|source| RunError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| {
            RunError::Input(format!(
                "{}: larger than {} bytes; refusing to compile it",
                path.display(),
                manifest::MAX_EXECUTABLE_BYTES
            ))
        })
}

/// Builds a tool's JSON input from `--input` and `--param`, checked against
/// the top level of the manifest's schema.
fn build_input(args: &RunArgs, schema: Option<&Value>) -> Result<String, RunError> {
    let mut value = match args.input.as_deref() {
        None => Value::Object(Default::default()),
        Some(spec) => {
            let (text, origin) = if spec == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .map_err(|e| RunError::Input(format!("--input -: cannot read stdin: {e}")))?;
                (s, "stdin".to_string())
            } else if let Some(file) = spec.strip_prefix('@') {
                let s = std::fs::read_to_string(file).map_err(|e| {
                    RunError::Input(format!("--input @{file}: {}", manifest::io_reason(&e)))
                })?;
                (s, file.to_string())
            } else {
                (spec.to_string(), "--input".to_string())
            };
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
    if let Some(schema) = schema {
        manifest::check_input(schema, &value).map_err(RunError::Input)?;
    }
    Ok(value.to_string())
}

fn envelope(
    subject: Value,
    outcome: &Outcome,
    stdout: Option<&Sink>,
    stderr: Option<&Sink>,
    logs: Vec<Value>,
) -> Value {
    let text = |s: Option<&Sink>| s.map(|s| String::from_utf8_lossy(&s.contents()).into_owned());
    let (ok, output, exit_code, error) = match &outcome.result {
        Ok(Output::Tool(json)) => (
            true,
            serde_json::from_str(json).unwrap_or(Value::Null),
            exit::SUCCESS as i32,
            Value::Null,
        ),
        Ok(Output::Text(t)) => (
            true,
            Value::String(t.clone()),
            exit::SUCCESS as i32,
            Value::Null,
        ),
        Ok(Output::Exit(code)) => (*code == 0, Value::Null, *code, Value::Null),
        Err(e) => {
            let run_error = RunError::Call(e.clone());
            (
                false,
                Value::Null,
                i32::from(run_error.exit_code()),
                error_json(&run_error),
            )
        }
    };
    let mut v = json!({
        "ok": ok,
        "output": output,
        "exit_code": exit_code,
        "error": error,
        "stdout": text(stdout),
        "stderr": text(stderr),
        "logs": logs,
        "usage": usage_json(&outcome.usage),
    });
    if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), subject) {
        obj.extend(extra);
    }
    v
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "fuel_consumed": u.fuel_consumed,
        "peak_memory": u.peak_memory,
        "wall_time_ms": u.wall_time.as_secs_f64() * 1000.0,
        "output_bytes": u.output_bytes,
    })
}

fn error_json(e: &RunError) -> Value {
    match e {
        RunError::Call(c) => c.to_json_as(e.kind()),
        _ => json!({ "kind": e.kind(), "message": e.to_string() }),
    }
}

fn report_error(args: &RunArgs, e: &RunError) -> u8 {
    if args.json {
        print_json(&json!({
            "tool": args.plugin,
            "ok": false,
            "output": null,
            "exit_code": e.exit_code(),
            "error": error_json(e),
        }));
    } else {
        eprintln!("error: {e}");
    }
    e.exit_code()
}

fn print_json(v: &Value) {
    super::print_line(&v.to_string());
}
