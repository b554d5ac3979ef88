//! The result of one call: what it produced, what it spent, and, when it
//! failed, a typed reason that names the limit or the fault.

use crate::units::{ByteSize, HumanDuration};
use serde::Serialize;
use std::time::Duration;

/// What one call produced and spent.
#[derive(Debug)]
pub struct Outcome {
    /// The output, or why there is none.
    pub result: Result<Output, CallError>,
    /// What the call spent, whether it succeeded or not.
    pub usage: Usage,
}

/// What a successful call produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum Output {
    /// A tool's JSON result.
    Tool(String),
    /// A subprocess tool's text output (manifest `output: text`).
    Text(String),
    /// A command's exit code (0 for success; a command that exits non-zero
    /// still ran to completion).
    Exit(i32),
}

/// What a call spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Fuel units consumed.
    pub fuel_consumed: u64,
    /// Largest total linear memory seen, in bytes.
    pub peak_memory: u64,
    /// Wall-clock time from instantiation to the end of the call.
    #[serde(serialize_with = "millis")]
    pub wall_time: Duration,
    /// Bytes written to stdout, stderr and logs plus the result.
    pub output_bytes: u64,
    /// Language-model tokens spent by the run (workflows).
    pub llm_tokens: u64,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
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
    /// The limit's name, as in `--json` output: `fuel`, `memory`, `table`,
    /// `timeout`, `output` or `stack`.
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

/// Why a call produced no output.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
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
    /// A limit ended the call.
    #[error("`{tool}` stopped: {limit}")]
    Limit {
        /// The tool.
        tool: String,
        /// Which limit.
        #[source]
        limit: LimitExceeded,
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
    /// The sandbox could not be built (a granted directory cannot be opened).
    #[error("cannot prepare the sandbox of `{tool}`: {message}")]
    Setup {
        /// The tool.
        tool: String,
        /// What failed.
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
}

impl CallError {
    /// The error's kind as in JSON output: `tool-error`, `limit-exceeded`,
    /// `trap`, `link` or `setup`.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Tool { .. } | CallError::BadResult { .. } => "tool-error",
            CallError::Limit { .. } => "limit-exceeded",
            CallError::Trap { .. } => "trap",
            CallError::Link { .. } => "link",
            CallError::Setup { .. } => "setup",
        }
    }

    /// `{"kind", "message"}`, plus `limit` and `value` for a limit.
    pub fn to_json(&self) -> serde_json::Value {
        self.to_json_as(self.kind())
    }

    /// [`CallError::to_json`] with the caller's own word for the kind (the
    /// CLI and the HTTP API each have their established vocabulary).
    pub fn to_json_as(&self, kind: &str) -> serde_json::Value {
        let mut v = serde_json::json!({ "kind": kind, "message": self.to_string() });
        if let (CallError::Limit { limit, .. }, Some(o)) = (self, v.as_object_mut()) {
            o.insert("limit".into(), serde_json::json!(limit.name()));
            o.insert("value".into(), serde_json::json!(limit.value()));
        }
        v
    }

    /// The exit code `toka-host run` uses for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CallError::Tool { .. } | CallError::BadResult { .. } => crate::exit::TOOL_ERROR,
            CallError::Limit { .. } => crate::exit::LIMIT,
            CallError::Trap { .. } => crate::exit::TRAP,
            CallError::Link { .. } | CallError::Setup { .. } => crate::exit::INVALID,
        }
    }
}
