//! What a running call reports while it runs: a guest's logs and progress
//! (`toka:plugin/host`), a subprocess tool's stderr lines, and the host's
//! warnings about the call. Both the wasm sandbox and the subprocess shim
//! deliver them here; the front end decides where they go (a terminal, a
//! call's JSON, an agent's event stream, MCP progress notifications).

use std::sync::{Arc, Mutex};
use toka_spec::outcome::{LogEntry, LogLevel};

/// Something a call reported while it ran.
#[derive(Clone, Copy, Debug)]
pub enum HostEvent<'a> {
    /// A log line.
    Log {
        /// Severity.
        level: LogLevel,
        /// The line.
        message: &'a str,
    },
    /// Progress.
    Progress {
        /// 0.0 ..= 1.0.
        fraction: f32,
        /// What is happening.
        message: &'a str,
    },
}

impl HostEvent<'_> {
    /// The event as an owned log entry.
    pub fn to_entry(&self) -> LogEntry {
        match *self {
            HostEvent::Log { level, message } => LogEntry::Log {
                level,
                message: message.to_string(),
            },
            HostEvent::Progress { fraction, message } => LogEntry::Progress {
                fraction,
                message: message.to_string(),
            },
        }
    }
}

/// Receives the events of a call: the name of the tool that reported it (a
/// workflow's nested calls report under their own names) and the event.
pub type EventSink = Arc<dyn Fn(&str, HostEvent<'_>) + Send + Sync>;

/// A sink that drops everything.
pub fn discard() -> EventSink {
    Arc::new(|_, _| {})
}

/// Collects the entries of one call (for its outcome) and passes every event
/// on to `next`. What a guest logs is charged to its output budget first,
/// so the collection is bounded by the call's output limit.
pub fn collecting(next: EventSink) -> (EventSink, Arc<Mutex<Vec<LogEntry>>>) {
    let entries = Arc::new(Mutex::new(Vec::new()));
    let sink: EventSink = {
        let entries = entries.clone();
        Arc::new(move |tool: &str, e: HostEvent<'_>| {
            if let Ok(mut v) = entries.lock() {
                v.push(e.to_entry());
            }
            next(tool, e)
        })
    };
    (sink, entries)
}
