//! Agent runs in a store (SQLite on one machine, PostgreSQL to share between
//! replicas): what [`super::AgentHost`] writes and reads, and the replica's
//! side of leases, cross-replica cancels and retention.
//!
//! Writes that say a run ended are retried until the store takes them (a
//! database restarting under load loses no finished result); progress and
//! events are best effort (a lost progress line is made good by the next).

use super::{AgentState, AgentStatus, Cancelled};
use crate::call::Caller;
use serde_json::Value;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use toka_spec::manifest::Sha256Hex;
use toka_store::{CancelRequest, FinalState, NewRun, Retention, RunStore, StoreError};

/// How often finished runs are pruned.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Progress is written at most this often per run.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Events a run records at most (logs included); the rest go to listeners
/// only.
const MAX_EVENTS: u64 = 1000;
/// Waiting between attempts to store a run's end while the store is away.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// How runs are kept.
#[derive(Clone)]
pub struct DurableOptions {
    /// The store.
    pub store: Arc<dyn RunStore>,
    /// This replica's name (stable across restarts of the same replica).
    pub replica: String,
    /// What to keep.
    pub retention: Retention,
    /// Store the runs' inputs, not only their size and digest.
    pub keep_inputs: bool,
}

/// The store of an agent host.
pub struct Durable {
    options: DurableOptions,
    /// Per run: when its progress was last written, and its events.
    progress: Mutex<std::collections::HashMap<String, (Instant, u64)>>,
    events_written: AtomicU64,
    last_error_log: AtomicI64,
    /// The background loop's last contact with the store failed with this
    /// (cleared by the next success): what `/status` reports.
    unreachable: Mutex<Option<String>>,
}

impl Durable {
    /// Opens the host's side: marks this replica's unfinished runs of an
    /// earlier life `interrupted`.
    ///
    /// # Errors
    ///
    /// When the store cannot be reached.
    pub async fn start(options: DurableOptions) -> Result<Durable, StoreError> {
        let interrupted = options.store.interrupt_own(&options.replica).await?;
        if !interrupted.is_empty() {
            eprintln!(
                "toka-host: {} run(s) of replica `{}` did not finish before it stopped; marked interrupted: {}",
                interrupted.len(),
                options.replica,
                interrupted.join(", ")
            );
        }
        Ok(Durable {
            options,
            progress: Mutex::new(std::collections::HashMap::new()),
            events_written: AtomicU64::new(0),
            last_error_log: AtomicI64::new(0),
            unreachable: Mutex::new(None),
        })
    }

    /// This replica's name.
    pub fn replica(&self) -> &str {
        &self.options.replica
    }

    /// The lease a replica holds on its running runs.
    pub fn lease(&self) -> Duration {
        self.options.store.lease()
    }

    /// How often cancel requests are polled.
    pub fn poll_interval(&self) -> Duration {
        (self.lease() / 10).clamp(Duration::from_millis(100), Duration::from_millis(500))
    }

    /// Why the store could not be reached at the background loop's last
    /// contact (every [`Durable::poll_interval`]); `None` while it answers.
    pub fn unreachable(&self) -> Option<String> {
        self.unreachable.lock().ok().and_then(|u| u.clone())
    }

    fn contact<T>(&self, result: Result<T, StoreError>) -> Option<T> {
        let (value, error) = match result {
            Ok(v) => (Some(v), None),
            Err(e) => {
                self.log_once_in_a_while(&e);
                (None, Some(e.to_string()))
            }
        };
        if let Ok(mut u) = self.unreachable.lock() {
            *u = error;
        }
        value
    }

    fn log_once_in_a_while(&self, e: &StoreError) {
        let now = Instant::now().elapsed().as_secs() as i64;
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(now, |d| d.as_secs() as i64);
        let last = self.last_error_log.load(Ordering::Relaxed);
        if wall - last >= 10 {
            self.last_error_log.store(wall, Ordering::Relaxed);
            eprintln!("toka-host: the run store: {e}");
        }
    }

    /// Records a new run (before it starts).
    pub(super) async fn insert(
        &self,
        status: &AgentStatus,
        caller: &Caller,
        input: Value,
        digest: &Sha256Hex,
    ) -> Result<(), StoreError> {
        let run = NewRun {
            id: status.id.clone(),
            name: status.name.clone(),
            workflow: status.workflow.clone(),
            workflow_version: status.version.clone(),
            workflow_digest: Some(digest.to_string()),
            subject: status.subject.clone(),
            caller: caller.label(),
            input,
            keep_input: self.options.keep_inputs,
            replica: self.options.replica.clone(),
        };
        self.options.store.insert(&run).await.map(|_| ())
    }

    /// The run `id`.
    pub(super) async fn get(&self, id: &str) -> Result<Option<AgentStatus>, StoreError> {
        Ok(self.options.store.get(id).await?.map(AgentStatus::from))
    }

    /// The newest runs.
    pub(super) async fn list(&self) -> Result<Vec<AgentStatus>, StoreError> {
        Ok(self
            .options
            .store
            .list(super::RETAINED_FINISHED as u32)
            .await?
            .into_iter()
            .map(AgentStatus::from)
            .collect())
    }

    /// Stores a run's end, trying until the store takes it; false when the
    /// run had already ended (another replica interrupted or cancelled it).
    pub(super) async fn finish(
        &self,
        id: &str,
        state: AgentState,
        output: Option<&Value>,
        error: Option<&Value>,
        usage: Option<&Value>,
    ) -> bool {
        let state = match state {
            AgentState::Completed => FinalState::Completed,
            AgentState::Failed => FinalState::Failed,
            AgentState::Cancelled => FinalState::Cancelled,
            AgentState::Interrupted | AgentState::Running => FinalState::Interrupted,
        };
        let mut wait = RETRY_MIN;
        loop {
            match self
                .options
                .store
                .finish(id, state, output, error, usage)
                .await
            {
                Ok(ended) => {
                    if let Ok(mut p) = self.progress.lock() {
                        p.remove(id);
                    }
                    return ended;
                }
                Err(e) => {
                    // The result is kept here until the store is back: it
                    // is never reported done before it is stored.
                    self.log_once_in_a_while(&e);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// Asks the replica that runs `id` to cancel it.
    pub(super) async fn request_cancel(&self, id: &str) -> Result<Cancelled, StoreError> {
        Ok(match self.options.store.request_cancel(id).await? {
            CancelRequest::NotFound => Cancelled::NotFound,
            CancelRequest::AlreadyFinished(r) => Cancelled::AlreadyFinished(AgentStatus::from(*r)),
            CancelRequest::Requested { .. } => match self.get(id).await? {
                Some(s) => Cancelled::Requested(s),
                None => Cancelled::NotFound,
            },
        })
    }

    /// Writes a run's progress, at most every [`PROGRESS_EVERY`].
    pub(super) fn record_progress(&self, id: &str, fraction: f32, message: &str) {
        let due = match self.progress.lock() {
            Ok(mut p) => {
                let entry = p
                    .entry(id.to_string())
                    .or_insert((Instant::now() - PROGRESS_EVERY, 0));
                if entry.0.elapsed() >= PROGRESS_EVERY {
                    entry.0 = Instant::now();
                    true
                } else {
                    false
                }
            }
            Err(_) => false,
        };
        if due {
            let store = self.options.store.clone();
            let (id, message) = (id.to_string(), message.to_string());
            tokio::spawn(async move {
                let _ = store.progress(&id, fraction, &message).await;
            });
        }
    }

    /// Appends a run's event (up to [`MAX_EVENTS`] per run).
    pub(super) fn record_event(&self, id: &str, event: &Value) {
        let lifecycle = matches!(
            event["event"].as_str(),
            Some("spawned" | "completed" | "failed")
        );
        let allowed = match self.progress.lock() {
            Ok(mut p) => {
                let entry = p
                    .entry(id.to_string())
                    .or_insert((Instant::now() - PROGRESS_EVERY, 0));
                entry.1 += 1;
                lifecycle || entry.1 <= MAX_EVENTS
            }
            Err(_) => lifecycle,
        };
        if !allowed {
            return;
        }
        self.events_written.fetch_add(1, Ordering::Relaxed);
        let store = self.options.store.clone();
        let (id, event) = (id.to_string(), event.clone());
        tokio::spawn(async move {
            let _ = store.append_event(&id, &event).await;
        });
    }

    /// Wakes when another replica asks this one to cancel a run.
    pub(super) fn cancel_wakeup(&self) -> toka_store::CancelWakeup {
        self.options.store.cancel_wakeup(&self.options.replica)
    }

    /// Runs of this replica that someone asked to cancel.
    pub(super) async fn cancel_requests(&self) -> Vec<String> {
        let ids = self
            .options
            .store
            .cancel_requests(&self.options.replica)
            .await;
        self.contact(ids).unwrap_or_default()
    }

    /// Renews this replica's leases; the runs it still holds, or `None`
    /// when the store cannot be reached.
    pub(super) async fn renew(&self) -> Option<Vec<String>> {
        let held = self.options.store.renew_leases(&self.options.replica).await;
        self.contact(held)
    }

    /// Marks runs of replicas that stopped renewing `interrupted`.
    pub(super) async fn interrupt_expired(&self) {
        match self
            .options
            .store
            .interrupt_expired(&self.options.replica)
            .await
        {
            Ok(ids) if !ids.is_empty() => eprintln!(
                "toka-host: marked {} run(s) of replicas that stopped renewing their lease interrupted: {}",
                ids.len(),
                ids.join(", ")
            ),
            Ok(_) => {}
            Err(e) => self.log_once_in_a_while(&e),
        }
    }

    /// Deletes runs past the retention.
    pub(super) async fn prune(&self) {
        if let Err(e) = self.options.store.prune(self.options.retention).await {
            self.log_once_in_a_while(&e);
        }
    }
}
