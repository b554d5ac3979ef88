//! The door every outside call walks through, whichever front end brought
//! it (`POST /v1/tools/{name}/invoke`, `/mcp`, MCP on stdio): at most
//! `--max-concurrent` calls at once, each counted (`/status`, `/metrics`) and
//! announced (`call-started`/`call-finished` on `/v1/events`). What a call may
//! do is decided behind the door, in the runtime's one call path; the door
//! only decides whether it enters now.

use crate::server::metrics::Metrics;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;
use toka_runtime::call::{CallCtx, Runtime};
use toka_runtime::catalog::Tool;
use toka_spec::outcome::{ErrorKind, Outcome};

/// The `tool` label of calls to a name no tool has (not a valid tool name,
/// so it cannot be mistaken for one).
pub(crate) const UNKNOWN_TOOL: &str = "(unknown)";

/// The shared accounting of calls from outside.
pub(crate) struct Door {
    permits: tokio::sync::Semaphore,
    max: usize,
    in_flight: AtomicUsize,
    calls: AtomicU64,
    events: tokio::sync::broadcast::Sender<Value>,
    metrics: Metrics,
}

/// The most calls are running: retry shortly.
#[derive(Debug, thiserror::Error)]
#[error("{max} calls are running, the most this server allows; retry shortly")]
pub(crate) struct Busy {
    /// `--max-concurrent`.
    pub(crate) max: usize,
}

impl Door {
    /// At most `max` calls at once; events go to `events`.
    pub(crate) fn new(max: usize, events: tokio::sync::broadcast::Sender<Value>) -> Door {
        let max = max.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        Door {
            permits: tokio::sync::Semaphore::new(max),
            max,
            in_flight: AtomicUsize::new(0),
            calls: AtomicU64::new(0),
            events,
            metrics: Metrics::default(),
        }
    }

    /// Calls running now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Calls that entered since start.
    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Per-tool counts and latencies.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Counts a call refused before it reached the door (an unknown tool, a
    /// body that is not JSON).
    pub(crate) fn refused(&self, tool: &str, kind: ErrorKind) {
        self.metrics.record(tool, kind.as_str(), None, 0.0);
    }

    /// Counts a call to a name no tool has. The name is the client's, so it
    /// is not a label: one series per name sent would let anyone grow the
    /// metrics without bound.
    pub(crate) fn refused_unknown(&self) {
        self.refused(UNKNOWN_TOOL, ErrorKind::NotFound);
    }

    /// Runs `tool` through the runtime's call path, or refuses with
    /// [`Busy`] at once when `max` calls are running. Dropping the future
    /// (a client that hung up, an MCP cancel) drops the sandbox and still
    /// counts the call, as `cancelled`.
    pub(crate) async fn call(
        &self,
        runtime: &Arc<Runtime>,
        tool: Arc<Tool>,
        input: Value,
        ctx: CallCtx,
    ) -> Result<Outcome, Busy> {
        let Ok(_permit) = self.permits.try_acquire() else {
            self.refused(&tool.name, ErrorKind::Busy);
            return Err(Busy { max: self.max });
        };
        let mut entered = Entered::new(self, &tool);
        let outcome = runtime.call(tool, input, ctx).await;
        entered.finish(&outcome);
        Ok(outcome)
    }

    fn finished(&self, e: &Entered<'_>, word: &str, kind: Option<ErrorKind>, limit: Option<&str>) {
        let seconds = e.started.elapsed().as_secs_f64();
        self.metrics.record(&e.tool, word, limit, seconds);
        let status = kind.map_or(200, |k| crate::server::error::status_of(k).as_u16());
        let _ = self.events.send(json!({
            "event": "call-finished", "id": e.id, "tool": e.tool, "version": e.version,
            "outcome": word, "status": status, "wall_time_ms": seconds * 1000.0,
        }));
    }
}

/// A call inside the door: leaves it exactly once, finished or dropped.
struct Entered<'a> {
    door: &'a Door,
    id: u64,
    tool: String,
    version: Option<String>,
    started: Instant,
    done: bool,
}

impl<'a> Entered<'a> {
    fn new(door: &'a Door, tool: &Tool) -> Entered<'a> {
        door.in_flight.fetch_add(1, Ordering::Relaxed);
        let id = door.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let version = tool.spec.as_ref().map(|s| s.version.to_string());
        let _ = door.events.send(
            json!({ "event": "call-started", "id": id, "tool": tool.name, "version": version }),
        );
        Entered {
            door,
            id,
            tool: tool.name.clone(),
            version,
            started: Instant::now(),
            done: false,
        }
    }

    fn finish(&mut self, outcome: &Outcome) {
        self.done = true;
        match &outcome.result {
            Ok(_) => self.door.finished(self, "ok", None, None),
            Err(e) => {
                let limit = e.limit().map(|l| l.name().to_string());
                self.door
                    .finished(self, e.kind().as_str(), Some(e.kind()), limit.as_deref());
            }
        }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.door.in_flight.fetch_sub(1, Ordering::Relaxed);
        if !self.done {
            self.door.finished(
                self,
                ErrorKind::Cancelled.as_str(),
                Some(ErrorKind::Cancelled),
                None,
            );
        }
    }
}
