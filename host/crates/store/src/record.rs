//! What the store holds about a run and its events, and the values the
//! [`RunStore`](crate::RunStore) operations take and return.
//!
//! Times are unix **milliseconds** as `i64` everywhere: exact to compare
//! (leases, retention), the same `BIGINT` in both databases, and no clock
//! function of either database involved (the store's clock supplies them).

use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// Where a run is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Running on its replica.
    Running,
    /// Returned a result.
    Completed,
    /// Returned an error, trapped or hit a limit.
    Failed,
    /// Cancelled by a caller.
    Cancelled,
    /// Its replica stopped (restarted, crashed, or stopped renewing its lease)
    /// before it finished.
    Interrupted,
}

impl RunState {
    /// The word stored and printed: `running`, `completed`, `failed`,
    /// `cancelled`, `interrupted`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Completed => "completed",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
            RunState::Interrupted => "interrupted",
        }
    }

    /// The state named `word`, if it is one.
    pub fn parse(word: &str) -> Option<RunState> {
        Some(match word {
            "running" => RunState::Running,
            "completed" => RunState::Completed,
            "failed" => RunState::Failed,
            "cancelled" => RunState::Cancelled,
            "interrupted" => RunState::Interrupted,
            _ => return None,
        })
    }

    /// True for every state but `running`.
    pub fn is_finished(self) -> bool {
        self != RunState::Running
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state a run ends in ([`RunStore::finish`](crate::RunStore::finish)):
/// every [`RunState`] but `Running`, so that finishing into `running` cannot
/// be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FinalState {
    /// Returned a result.
    Completed,
    /// Returned an error, trapped or hit a limit.
    Failed,
    /// Cancelled by a caller.
    Cancelled,
    /// Its replica is stopping before the run finished.
    Interrupted,
}

impl From<FinalState> for RunState {
    fn from(s: FinalState) -> RunState {
        match s {
            FinalState::Completed => RunState::Completed,
            FinalState::Failed => RunState::Failed,
            FinalState::Cancelled => RunState::Cancelled,
            FinalState::Interrupted => RunState::Interrupted,
        }
    }
}

/// A run about to start ([`RunStore::insert`](crate::RunStore::insert)).
#[derive(Clone, Debug)]
pub struct NewRun {
    /// A unique id ([`new_run_id`] makes one).
    pub id: String,
    /// A name for tables and events (an agents file's name, or the
    /// workflow's).
    pub name: String,
    /// The workflow tool it runs.
    pub workflow: String,
    /// The workflow's `metadata.version`.
    pub workflow_version: Option<String>,
    /// SHA-256 (hex) of the workflow's code.
    pub workflow_digest: Option<String>,
    /// The token subject that started it, when the caller had a token.
    pub subject: Option<String>,
    /// Who started it, as audit logs name callers (`cli`, `http 127.0.0.1`).
    pub caller: String,
    /// The input. Its size and SHA-256 are always stored; the input itself
    /// only when `keep_input` is set (inputs may hold what an operator does
    /// not want on disk).
    pub input: Value,
    /// Store the input itself, not only its size and digest.
    pub keep_input: bool,
    /// The replica that runs it (and renews its lease).
    pub replica: String,
}

/// A run as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunRecord {
    /// The run's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The workflow it runs.
    pub workflow: String,
    /// The workflow's version.
    pub workflow_version: Option<String>,
    /// SHA-256 (hex) of the workflow's code.
    pub workflow_digest: Option<String>,
    /// The token subject that started it.
    pub subject: Option<String>,
    /// Who started it.
    pub caller: String,
    /// Bytes of the input's JSON text (compact, as `serde_json` writes it).
    pub input_size: u64,
    /// SHA-256 (hex) of that text.
    pub input_sha256: String,
    /// The input, when it was kept ([`NewRun::keep_input`]).
    pub input: Option<Value>,
    /// State.
    pub state: RunState,
    /// Last reported progress, 0.0 ..= 1.0 (1.0 once completed).
    pub progress: f32,
    /// Last progress message.
    pub message: String,
    /// The result, once completed.
    pub result: Option<Value>,
    /// Why it failed, was cancelled or interrupted.
    pub error: Option<Value>,
    /// What it spent, once finished.
    pub usage: Option<Value>,
    /// When it started, unix milliseconds.
    pub started_ms: i64,
    /// When it finished, unix milliseconds.
    pub finished_ms: Option<i64>,
    /// The replica that runs (or ran) it.
    pub replica: String,
    /// Until when its replica holds it, unix milliseconds; renewed by
    /// [`RunStore::renew_leases`](crate::RunStore::renew_leases).
    pub lease_expires_ms: i64,
    /// When a caller asked to cancel it, unix milliseconds.
    pub cancel_requested_ms: Option<i64>,
    /// How many events it has.
    pub events: u64,
    /// Bytes of JSON stored for it (input when kept, result, error, usage,
    /// events): what the byte budget of [`Retention`] counts.
    pub stored_bytes: u64,
}

impl RunRecord {
    /// `started_ms` as unix seconds, the form the agents API prints.
    pub fn started_at(&self) -> f64 {
        self.started_ms as f64 / 1000.0
    }

    /// Milliseconds from start to finish, or to `now_ms` while running.
    pub fn elapsed_ms(&self, now_ms: i64) -> i64 {
        self.finished_ms.unwrap_or(now_ms) - self.started_ms
    }
}

/// One event of a run, in the order appended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunEvent {
    /// The run.
    pub run_id: String,
    /// 1, 2, 3… per run, in the order appended.
    pub seq: u64,
    /// When it was appended, unix milliseconds.
    pub at_ms: i64,
    /// The event.
    pub event: Value,
}

/// What [`RunStore::request_cancel`](crate::RunStore::request_cancel) did.
#[derive(Clone, Debug, PartialEq)]
pub enum CancelRequest {
    /// The request is stored; `replica`, which runs it, sees it at its next
    /// poll (or at once on a PostgreSQL wake-up) and ends it `cancelled`.
    Requested {
        /// The replica that runs it: the caller cancels the task itself when
        /// that is its own replica.
        replica: String,
    },
    /// The run had already finished; nothing was changed.
    AlreadyFinished(Box<RunRecord>),
    /// No such run.
    NotFound,
}

/// What [`RunStore::prune`](crate::RunStore::prune) keeps. Running runs are
/// never pruned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Finished runs that finished longer ago than this are deleted.
    pub max_age: Option<Duration>,
    /// Then the oldest finished runs are deleted until the
    /// [`RunRecord::stored_bytes`] of the finished runs left add up to at
    /// most this.
    pub max_bytes: Option<u64>,
}

/// What [`RunStore::prune`](crate::RunStore::prune) deleted, with their
/// events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Runs deleted for their age.
    pub by_age: u64,
    /// Runs deleted to fit the byte budget.
    pub by_size: u64,
}

/// A new run id: `run-` then the start time in milliseconds (hex, so ids
/// sort by time) and 64 random bits, unique across replicas without
/// coordination.
pub fn new_run_id() -> String {
    let mut random = [0u8; 8];
    // getrandom fails only without an OS entropy source; the time and a
    // per-process counter still keep ids apart then.
    if getrandom::fill(&mut random).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed) ^ u64::from(std::process::id()) << 32;
        random = n.to_be_bytes();
    }
    format!(
        "run-{:011x}-{}",
        crate::clock::system_now_ms(),
        crate::sql::hex(&random)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_words() {
        for s in [
            RunState::Running,
            RunState::Completed,
            RunState::Failed,
            RunState::Cancelled,
            RunState::Interrupted,
        ] {
            assert_eq!(RunState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(RunState::parse("queued"), None);
    }

    #[test]
    fn run_ids_are_unique_and_sort_by_time() {
        let a = new_run_id();
        let b = new_run_id();
        assert_ne!(a, b);
        assert!(a.starts_with("run-") && a.len() == 4 + 11 + 1 + 16, "{a}");
        assert!(a[..15] <= b[..15]);
    }
}
