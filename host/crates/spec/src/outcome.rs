//! The result of one call: what it produced, what it spent, what the guest
//! logged, and, when it failed, a typed reason that names the limit, the
//! capability or the fault.
//!
//! Every front end (the CLI, the HTTP API, MCP, agents) reports a call
//! through this one type and its one JSON form ([`Outcome::to_json`]), and
//! every error of every front end has one word from one vocabulary
//! ([`ErrorKind`]), which also decides the CLI's exit code.

use crate::manifest::{PinMismatch, Sha256Hex, Version};
use crate::policy::PolicyError;
use crate::units::{ByteSize, HumanDuration};
use serde::Serialize;
use serde_json::{Value, json};
use std::fmt;
use std::time::Duration;

/// What one call produced and spent.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Which tool ran.
    pub tool: ToolRef,
    /// The output, or why there is none.
    pub result: Result<Output, CallError>,
    /// What the call spent, whether it succeeded or not; `None` when it was
    /// refused before anything ran.
    pub usage: Option<Usage>,
    /// What the guest logged and reported, when the caller asked for it to
    /// be collected.
    pub logs: Vec<LogEntry>,
    /// Captured stdout and stderr, when they were captured (not when they
    /// went to the host's own streams).
    pub stdio: Option<Stdio>,
}

/// A call's captured standard output and error.
#[derive(Debug, Clone, Default)]
pub struct Stdio {
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

/// Which tool a call ran: its name, and for a manifest's tool its version
/// and the digest of the code that ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolRef {
    /// Tool name (or the file name of a bare `.wasm`).
    pub name: String,
    /// `metadata.version`, for a manifest's tool.
    pub version: Option<Version>,
    /// SHA-256 of the wasm or script that ran.
    pub digest: Option<Sha256Hex>,
}

/// What a successful call produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A tool's JSON result, parsed once.
    Json(Value),
    /// A subprocess tool's text output (manifest `output: text`).
    Text(String),
    /// A command's exit code (0 for success; a command that exits non-zero
    /// still ran to completion).
    Exit(i32),
}

impl Output {
    /// The output as JSON: the value, the text as a string, or `null` for a
    /// command.
    pub fn to_json(&self) -> Value {
        match self {
            Output::Json(v) => v.clone(),
            Output::Text(t) => Value::String(t.clone()),
            Output::Exit(_) => Value::Null,
        }
    }
}

/// What a call spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Fuel units consumed.
    pub fuel_consumed: u64,
    /// Largest total linear memory seen (for subprocess tools: peak RSS), in
    /// bytes.
    pub peak_memory: u64,
    /// Wall-clock time from instantiation to the end of the call.
    #[serde(rename = "wall_time_ms", serialize_with = "millis")]
    pub wall_time: Duration,
    /// Bytes written to stdout, stderr and logs plus the result.
    pub output_bytes: u64,
    /// Language-model tokens spent by the run (workflows).
    pub llm_tokens: u64,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// Severity of a guest's log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Trace.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warn.
    Warn,
    /// Error.
    Error,
}

impl LogLevel {
    /// The level as written in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// One thing a guest reported while it ran.
#[derive(Clone, Debug, PartialEq)]
pub enum LogEntry {
    /// `host.log`.
    Log {
        /// Severity.
        level: LogLevel,
        /// The line.
        message: String,
    },
    /// `host.progress`.
    Progress {
        /// 0.0 ..= 1.0.
        fraction: f32,
        /// What is happening.
        message: String,
    },
}

impl LogEntry {
    /// `{"log": LEVEL, "message"}` or `{"progress": FRACTION, "message"}`.
    pub fn to_json(&self) -> Value {
        match self {
            LogEntry::Log { level, message } => json!({ "log": level, "message": message }),
            LogEntry::Progress { fraction, message } => {
                json!({ "progress": fraction_json(*fraction), "message": message })
            }
        }
    }
}

/// A progress fraction as JSON: the `f32` the guest sent, printed as the
/// short decimal it stands for (`0.1`, not `0.10000000149011612`).
pub fn fraction_json(fraction: f32) -> Value {
    fraction
        .to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// A limit a call ran into. Each message names the limit, its value, and the
/// flag and manifest field that raise it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// Out of fuel.
    #[error("fuel limit of {limit} exceeded; raise it with --fuel or spec.security.sandbox.fuel")]
    Fuel {
        /// The limit.
        limit: u64,
    },
    /// Linear memory would have grown past the limit.
    #[error("memory limit of {} exceeded (the guest asked for {} in all); raise it with --memory or spec.security.sandbox.memory_limit", ByteSize(*limit), ByteSize(*requested))]
    Memory {
        /// The limit, in bytes.
        limit: u64,
        /// What the guest asked for, in bytes.
        requested: u64,
    },
    /// Tables would have grown past the limit.
    #[error("table limit of {limit} elements exceeded")]
    Table {
        /// The limit, in elements.
        limit: usize,
    },
    /// The call ran out of wall-clock time.
    #[error("timeout of {} exceeded; raise it with --timeout or spec.security.sandbox.timeout", HumanDuration(*limit))]
    Timeout {
        /// The limit.
        limit: Duration,
    },
    /// The call wrote more than allowed.
    #[error("output limit of {} exceeded; raise it with --max-output or spec.security.sandbox.output_limit", ByteSize(*limit))]
    Output {
        /// The limit, in bytes.
        limit: u64,
    },
    /// A subprocess tree used up its CPU time.
    #[error("CPU limit of {}s exceeded; raise --timeout or spec.security.sandbox.cpu_limit", limit.as_secs())]
    Cpu {
        /// CPU seconds.
        limit: Duration,
    },
    /// The wasm stack overflowed.
    #[error("wasm stack limit of {} exceeded (unbounded recursion?); raise it with --max-wasm-stack", ByteSize(*limit as u64))]
    Stack {
        /// The limit, in bytes.
        limit: usize,
    },
}

impl LimitExceeded {
    /// The limit's name, as in JSON output: `fuel`, `memory`, `table`,
    /// `timeout`, `output`, `cpu` or `stack`.
    pub fn name(&self) -> &'static str {
        match self {
            LimitExceeded::Fuel { .. } => "fuel",
            LimitExceeded::Memory { .. } => "memory",
            LimitExceeded::Table { .. } => "table",
            LimitExceeded::Timeout { .. } => "timeout",
            LimitExceeded::Output { .. } => "output",
            LimitExceeded::Stack { .. } => "stack",
            LimitExceeded::Cpu { .. } => "cpu",
        }
    }

    /// The limit's value: fuel units, bytes, elements or milliseconds.
    pub fn value(&self) -> u64 {
        match *self {
            LimitExceeded::Fuel { limit } | LimitExceeded::Memory { limit, .. } => limit,
            LimitExceeded::Output { limit } => limit,
            LimitExceeded::Table { limit } | LimitExceeded::Stack { limit } => limit as u64,
            LimitExceeded::Timeout { limit } | LimitExceeded::Cpu { limit } => {
                u64::try_from(limit.as_millis()).unwrap_or(u64::MAX)
            }
        }
    }
}

/// The error cases a tool may return (`toka:plugin/types.tool-error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ToolErrorKind {
    /// Bad input.
    InvalidInput,
    /// Not allowed.
    Denied,
    /// Something named does not exist.
    NotFound,
    /// Tried and failed.
    Failed,
    /// A budget ran out.
    LimitExceeded,
}

/// The one vocabulary of error kinds, shared by the CLI (`--json` and exit
/// codes), the HTTP API, MCP and agents. Each front end maps a kind to its
/// own status (an exit code here, an HTTP status in the server); the words
/// are the same everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// No such tool, manifest, file or record.
    NotFound,
    /// Bad input: flags, a tool's input, a request.
    InvalidInput,
    /// A request body that is not JSON.
    InvalidJson,
    /// A manifest that does not validate.
    InvalidManifest,
    /// Bytes that are not WebAssembly, or invalid WebAssembly.
    InvalidWasm,
    /// A plugin of the wrong world, or needing imports the host lacks.
    Link,
    /// An executable whose bytes are not the ones its manifest pins.
    HashMismatch,
    /// A subprocess tool that would run less isolated than its policy says.
    WeakerSandbox,
    /// A capability or tool not granted (by the operator or the token).
    Denied,
    /// No valid credentials (missing, expired, revoked, tampered, unknown key).
    Unauthorized,
    /// The tool ran and returned an error (or a result that is not JSON).
    ToolError,
    /// A limit ended the call.
    LimitExceeded,
    /// The guest trapped (crashed).
    Trap,
    /// The call was cancelled.
    Cancelled,
    /// Too many calls at once.
    Busy,
    /// Too many requests from one token.
    RateLimited,
    /// A request for a host name that is not this server's.
    BadHost,
    /// A request body of the wrong media type.
    UnsupportedMediaType,
    /// A request body or header block over the limit.
    TooLarge,
    /// A method the endpoint does not take.
    MethodNotAllowed,
    /// A request for a workflow where a tool is expected (or the reverse).
    WrongKind,
    /// A dependency (the store, the registry) is not reachable now.
    Unavailable,
    /// Anything else that went wrong in the host.
    Host,
}

impl ErrorKind {
    /// The word, as in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not-found",
            ErrorKind::InvalidInput => "invalid-input",
            ErrorKind::InvalidJson => "invalid-json",
            ErrorKind::InvalidManifest => "invalid-manifest",
            ErrorKind::InvalidWasm => "invalid-wasm",
            ErrorKind::Link => "link",
            ErrorKind::HashMismatch => "hash-mismatch",
            ErrorKind::WeakerSandbox => "weaker-sandbox",
            ErrorKind::Denied => "denied",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::ToolError => "tool-error",
            ErrorKind::LimitExceeded => "limit-exceeded",
            ErrorKind::Trap => "trap",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Busy => "busy",
            ErrorKind::RateLimited => "rate-limited",
            ErrorKind::BadHost => "bad-host",
            ErrorKind::UnsupportedMediaType => "unsupported-media-type",
            ErrorKind::TooLarge => "too-large",
            ErrorKind::MethodNotAllowed => "method-not-allowed",
            ErrorKind::WrongKind => "wrong-kind",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Host => "host",
        }
    }

    /// The documented exit code of `toka-host` for an error of this kind.
    pub fn exit_code(self) -> u8 {
        use crate::exit;
        match self {
            ErrorKind::NotFound => exit::NOT_FOUND,
            ErrorKind::Denied | ErrorKind::Unauthorized => exit::DENIED,
            ErrorKind::ToolError | ErrorKind::Cancelled => exit::TOOL_ERROR,
            ErrorKind::LimitExceeded => exit::LIMIT,
            ErrorKind::Trap => exit::TRAP,
            _ => exit::INVALID,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"kind", "message"}` for an error of `kind`, plus `limit` and `value`
/// when a limit ended it: the one JSON shape of an error.
pub fn error_json(kind: ErrorKind, message: &str, limit: Option<&LimitExceeded>) -> Value {
    let mut v = json!({ "kind": kind, "message": message });
    if let (Some(limit), Some(o)) = (limit, v.as_object_mut()) {
        o.insert("limit".into(), json!(limit.name()));
        o.insert("value".into(), json!(limit.value()));
    }
    v
}

/// Why a call produced no output.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The tool a workflow or client named does not exist.
    #[error("no tool named `{}`{}", crate::manifest::yaml::shorten_name(tool), if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    NotFound {
        /// The name asked for.
        tool: String,
        /// Where it was looked for, what is there.
        detail: String,
    },
    /// The tool could not be loaded (bad manifest, bad wasm, pin mismatch).
    #[error("{message}")]
    Unloadable {
        /// The tool.
        tool: String,
        /// Which kind of load failure.
        kind: ErrorKind,
        /// The load error, with the file and the fix.
        message: String,
    },
    /// The input is not what the tool takes.
    #[error("{tool}: {message}")]
    InvalidInput {
        /// The tool.
        tool: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The policy could not be resolved: a capability not granted, a key
    /// asked for, a bad directory grant.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The tool ran and returned an error.
    #[error("tool `{tool}` returned an error ({kind:?}): {message}")]
    Tool {
        /// The tool.
        tool: String,
        /// Which case of `tool-error`.
        kind: ToolErrorKind,
        /// What it said.
        message: String,
    },
    /// The tool's result was not JSON.
    #[error("tool `{tool}` returned something that is not JSON: {message}")]
    BadResult {
        /// The tool.
        tool: String,
        /// The parse error.
        message: String,
    },
    /// A limit ended the call.
    #[error("`{tool}` stopped: {limit}")]
    Limit {
        /// The tool.
        tool: String,
        /// Which limit.
        #[source]
        limit: LimitExceeded,
        /// True when the limit was what was left of a calling workflow's
        /// budget rather than the tool's own: then the caller is out of it.
        caller_budget: bool,
    },
    /// The guest trapped (crashed).
    #[error("`{tool}` trapped: {message}")]
    Trap {
        /// The tool.
        tool: String,
        /// The trap and its wasm backtrace.
        message: String,
    },
    /// The plugin could not be instantiated: it needs something the host does
    /// not provide, or is not of a world the host runs.
    #[error("`{tool}` cannot run: {message}")]
    Link {
        /// The tool.
        tool: String,
        /// What is missing or wrong, and what the host offers.
        message: String,
    },
    /// The tool cannot be called this way (a command given JSON input, a
    /// workflow outside a run).
    #[error("`{tool}` {message}")]
    WrongKind {
        /// The tool.
        tool: String,
        /// What it is and how to call it instead.
        message: String,
    },
    /// The sandbox could not be built (a granted directory cannot be opened).
    #[error("cannot prepare the sandbox of `{tool}`: {message}")]
    Setup {
        /// The tool.
        tool: String,
        /// What failed.
        message: String,
    },
    /// The bytes about to run are not the vetted ones.
    #[error("tool `{tool}`: {mismatch}")]
    Pin {
        /// The tool.
        tool: String,
        /// Both digests and the fix.
        #[source]
        mismatch: PinMismatch,
    },
    /// A subprocess tool's interpreter is not allowed or not installed.
    #[error(
        "tool `{tool}` needs interpreter `{name}`, which is not allowed or not installed (allowed here: {allowed}); install it under /usr/bin or allow it with --interpreter {name}=/absolute/path"
    )]
    Interpreter {
        /// The tool.
        tool: String,
        /// The interpreter.
        name: String,
        /// What is allowed.
        allowed: String,
    },
    /// Part of the subprocess isolation is unavailable and the operator did
    /// not accept a weaker sandbox.
    #[error(
        "refusing to run `{tool}`: {what}; the tool would run less isolated than its policy says. Fix the host, or pass --allow-weaker-sandbox to run it anyway"
    )]
    WeakerSandbox {
        /// The tool.
        tool: String,
        /// What is missing.
        what: String,
    },
    /// The subprocess could not be prepared or started.
    #[error("cannot start `{tool}`: {message}")]
    Spawn {
        /// The tool.
        tool: String,
        /// What failed.
        message: String,
    },
    /// The call was cancelled by its caller.
    #[error("`{tool}` was cancelled")]
    Cancelled {
        /// The tool.
        tool: String,
    },
}

impl CallError {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CallError::NotFound { .. } => ErrorKind::NotFound,
            CallError::Unloadable { kind, .. } => *kind,
            CallError::InvalidInput { .. } => ErrorKind::InvalidInput,
            CallError::Policy(p) => p.kind(),
            CallError::Tool { .. } | CallError::BadResult { .. } => ErrorKind::ToolError,
            CallError::Limit { .. } => ErrorKind::LimitExceeded,
            CallError::Trap { .. } => ErrorKind::Trap,
            CallError::Link { .. } => ErrorKind::Link,
            CallError::WrongKind { .. } => ErrorKind::WrongKind,
            CallError::Pin { .. } => ErrorKind::HashMismatch,
            CallError::WeakerSandbox { .. } => ErrorKind::WeakerSandbox,
            CallError::Setup { .. } | CallError::Interpreter { .. } | CallError::Spawn { .. } => {
                ErrorKind::Host
            }
            CallError::Cancelled { .. } => ErrorKind::Cancelled,
        }
    }

    /// The limit that ended the call, if one did.
    pub fn limit(&self) -> Option<&LimitExceeded> {
        match self {
            CallError::Limit { limit, .. } => Some(limit),
            _ => None,
        }
    }

    /// `{"kind", "message"}`, plus `limit` and `value` for a limit.
    pub fn to_json(&self) -> Value {
        error_json(self.kind(), &self.to_string(), self.limit())
    }

    /// The exit code `toka-host run` uses for this error.
    pub fn exit_code(&self) -> u8 {
        self.kind().exit_code()
    }
}

impl Outcome {
    /// The exit code `toka-host run` uses for this outcome: 0, a command's
    /// own code, or the error's.
    pub fn exit_code(&self) -> i32 {
        match &self.result {
            Ok(Output::Exit(code)) => *code,
            Ok(_) => i32::from(crate::exit::SUCCESS),
            Err(e) => i32::from(e.exit_code()),
        }
    }

    /// The one JSON form of an outcome: `ok`, `output`, `error` (kind,
    /// message, limit), `exit_code`, `usage`, `logs`, the tool's `tool`,
    /// `version` and `digest`, and `stdout`/`stderr` when captured.
    pub fn to_json(&self) -> Value {
        let ok = match &self.result {
            Ok(Output::Exit(code)) => *code == 0,
            Ok(_) => true,
            Err(_) => false,
        };
        let (output, error) = match &self.result {
            Ok(o) => (o.to_json(), Value::Null),
            Err(e) => (Value::Null, e.to_json()),
        };
        let mut v = json!({
            "ok": ok,
            "tool": self.tool.name,
            "version": self.tool.version,
            "digest": self.tool.digest,
            "output": output,
            "error": error,
            "exit_code": self.exit_code(),
            "usage": self.usage,
            "logs": self.logs.iter().map(LogEntry::to_json).collect::<Vec<_>>(),
        });
        if let (Some(stdio), Some(o)) = (&self.stdio, v.as_object_mut()) {
            o.insert(
                "stdout".into(),
                json!(String::from_utf8_lossy(&stdio.stdout)),
            );
            o.insert(
                "stderr".into(),
                json!(String::from_utf8_lossy(&stdio.stderr)),
            );
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_fractions_print_short() {
        assert_eq!(fraction_json(0.1).to_string(), "0.1");
        assert_eq!(fraction_json(1.0).to_string(), "1.0");
    }

    #[test]
    fn one_json_shape_for_errors_and_usage() {
        let o = Outcome {
            tool: ToolRef {
                name: "t".into(),
                ..ToolRef::default()
            },
            result: Err(CallError::Limit {
                tool: "t".into(),
                limit: LimitExceeded::Timeout {
                    limit: Duration::from_millis(500),
                },
                caller_budget: false,
            }),
            usage: Some(Usage {
                wall_time: Duration::from_millis(3),
                ..Usage::default()
            }),
            logs: vec![LogEntry::Progress {
                fraction: 0.1,
                message: "m".into(),
            }],
            stdio: None,
        };
        let v = o.to_json();
        assert_eq!(v["ok"], false);
        assert_eq!(v["exit_code"], 124);
        assert_eq!(v["error"]["kind"], "limit-exceeded");
        assert_eq!(v["error"]["limit"], "timeout");
        assert_eq!(v["error"]["value"], 500);
        assert_eq!(v["usage"]["wall_time_ms"], 3.0);
        assert_eq!(v["usage"]["llm_tokens"], 0);
        assert_eq!(v["logs"][0]["progress"].to_string(), "0.1");
    }
}
