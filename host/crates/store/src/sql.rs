//! The SQL both backends run, and the one implementation of
//! [`RunStore`](crate::RunStore) they share.
//!
//! The statements are the same text on SQLite and PostgreSQL (`$n`
//! placeholders work in both; `RETURNING`, window functions and
//! `ON DELETE CASCADE` too). What differs is behind a few hooks each backend
//! provides as inherent methods: `write_tx` (`BEGIN IMMEDIATE` on SQLite,
//! so a transaction that reads then writes waits for the lock instead of
//! failing at once), `fail` (which driver errors mean "unavailable" or
//! "corrupt"), `notify_cancel` (PostgreSQL's `pg_notify`), `wakeup` and
//! `close_listener` (PostgreSQL's listener task), and `now` (the clock).
//! [`impl_run_store!`] writes the trait implementation once over those
//! hooks: sqlx has no object-safe "any database" executor without its `any`
//! driver, and code generic over `sqlx::Database` needs a wall of
//! higher-ranked bounds per function.

use crate::record::{RunRecord, RunState};
use crate::{NewRun, StoreError};
use serde_json::Value;
use sha2::Digest;

/// The columns of `runs` a [`RunRow`] reads, in one place for every SELECT.
macro_rules! run_columns {
    () => {
        "id, name, workflow, workflow_version, workflow_digest, subject, caller, \
         input_size, input_sha256, input_json, state, progress, message, \
         result_json, error_json, usage_json, started_ms, finished_ms, replica, \
         lease_expires_ms, cancel_requested_ms, event_count, stored_bytes"
    };
}

pub(crate) const INSERT_RUN: &str = "INSERT INTO runs (id, name, workflow, workflow_version, \
     workflow_digest, subject, caller, input_size, input_sha256, input_json, state, progress, \
     message, started_ms, replica, lease_expires_ms, event_count, stored_bytes) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'running', 0, '', $11, $12, $13, 0, $14)";

pub(crate) const PROGRESS: &str =
    "UPDATE runs SET progress = $2, message = $3 WHERE id = $1 AND state = 'running'";

/// The `state = 'running'` condition is what makes a finish happen once.
pub(crate) const FINISH: &str = "UPDATE runs SET state = $2, result_json = $3, error_json = $4, \
     usage_json = $5, finished_ms = $6, progress = COALESCE($7, progress), \
     stored_bytes = stored_bytes + $8 WHERE id = $1 AND state = 'running'";

pub(crate) const GET: &str = concat!("SELECT ", run_columns!(), " FROM runs WHERE id = $1");

pub(crate) const LIST: &str = concat!(
    "SELECT ",
    run_columns!(),
    " FROM runs ORDER BY started_ms DESC, id DESC LIMIT $1"
);

/// Keeps the first request's time when asked twice.
pub(crate) const REQUEST_CANCEL: &str = "UPDATE runs SET \
     cancel_requested_ms = COALESCE(cancel_requested_ms, $2) \
     WHERE id = $1 AND state = 'running' RETURNING replica";

/// Read-only: a request stays pending until the run ends, so a poll whose
/// answer is lost (a dropped connection) loses nothing.
pub(crate) const CANCEL_REQUESTS: &str = "SELECT id FROM runs \
     WHERE replica = $1 AND state = 'running' AND cancel_requested_ms IS NOT NULL \
     ORDER BY id";

pub(crate) const RENEW: &str = "UPDATE runs SET lease_expires_ms = $2 \
     WHERE replica = $1 AND state = 'running' RETURNING id";

pub(crate) const EXPIRED: &str = "SELECT id, replica, lease_expires_ms FROM runs \
     WHERE state = 'running' AND lease_expires_ms < $1 ORDER BY id";

/// Rechecks the lease: on PostgreSQL the row may have been renewed between
/// the SELECT and this UPDATE (which then sees the renewed row).
pub(crate) const INTERRUPT_EXPIRED: &str = "UPDATE runs SET state = 'interrupted', \
     error_json = $2, finished_ms = $3, stored_bytes = stored_bytes + $4 \
     WHERE id = $1 AND state = 'running' AND lease_expires_ms < $3";

pub(crate) const INTERRUPT_OWN: &str = "UPDATE runs SET state = 'interrupted', \
     error_json = $2, finished_ms = $3, stored_bytes = stored_bytes + $4 \
     WHERE replica = $1 AND state = 'running' RETURNING id";

pub(crate) const PRUNE_AGE: &str = "DELETE FROM runs WHERE state <> 'running' AND finished_ms < $1";

/// Keeps the newest finished runs whose running total of `stored_bytes`
/// (newest first) stays within the budget: the same set as deleting the
/// oldest one by one until the rest fit. `ROWS` (not the default `RANGE`)
/// so that runs finishing in the same millisecond are counted one by one.
pub(crate) const PRUNE_SIZE: &str = "DELETE FROM runs WHERE id IN (SELECT id FROM \
     (SELECT id, SUM(stored_bytes) OVER (ORDER BY finished_ms DESC, id DESC \
     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS kept \
     FROM runs WHERE state <> 'running') AS newest WHERE kept > $1)";

/// Counting on the run's row serializes appenders of one run (a row lock on
/// PostgreSQL, the write lock on SQLite), so `seq` never collides.
pub(crate) const BUMP_EVENTS: &str = "UPDATE runs SET event_count = event_count + 1, \
     stored_bytes = stored_bytes + $2 WHERE id = $1 RETURNING event_count";

pub(crate) const INSERT_EVENT: &str =
    "INSERT INTO run_events (run_id, seq, at_ms, event_json) VALUES ($1, $2, $3, $4)";

pub(crate) const EVENTS: &str = "SELECT seq, at_ms, event_json FROM run_events \
     WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";

/// A boxed `Send` future. Helpers that run queries outside the trait
/// implementation return one: rustc cannot prove the future of a plain
/// `async fn` over sqlx's fetch helpers `Send` once it is awaited elsewhere
/// ("implementation of `Executor` is not general enough", rust-lang/rust
/// issue 102211); boxed where it is built, the check succeeds (the same
/// thing `async_trait` does for the trait's methods).
pub(crate) type BoxFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Byte counts as stored (`BIGINT`); no JSON text comes near `i64::MAX`.
pub(crate) fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A new run's values as bound to [`INSERT_RUN`].
pub(crate) struct InsertValues {
    pub input_size: i64,
    pub input_sha256: String,
    pub input_json: Option<String>,
}

impl InsertValues {
    pub(crate) fn of(run: &NewRun) -> InsertValues {
        let text = run.input.to_string();
        InsertValues {
            input_size: len_i64(text.len()),
            input_sha256: hex(&sha2::Sha256::digest(text.as_bytes())),
            input_json: run.keep_input.then_some(text),
        }
    }

    /// What the input adds to `stored_bytes`.
    pub(crate) fn stored_bytes(&self) -> i64 {
        self.input_json.as_deref().map_or(0, |t| len_i64(t.len()))
    }
}

/// The error JSON of an interrupted run: the one error shape
/// (`{"kind", "message"}`) plus the replica and, for an expired lease, when
/// it expired and who noticed.
pub(crate) fn interrupted_error(
    message: String,
    replica: &str,
    extra: Option<(i64, &str)>,
) -> String {
    let kind = toka_spec::outcome::ErrorKind::Host;
    let mut v = toka_spec::outcome::error_json(kind, &message, None);
    if let Some(o) = v.as_object_mut() {
        o.insert("exit_code".into(), kind.exit_code().into());
        o.insert("replica".into(), replica.into());
        if let Some((expired_ms, by)) = extra {
            o.insert("lease_expired_ms".into(), expired_ms.into());
            o.insert("interrupted_by".into(), by.into());
        }
    }
    v.to_string()
}

/// The columns of one `runs` row, as read.
pub(crate) struct RunRow {
    id: String,
    name: String,
    workflow: String,
    workflow_version: Option<String>,
    workflow_digest: Option<String>,
    subject: Option<String>,
    caller: String,
    input_size: i64,
    input_sha256: String,
    input_json: Option<String>,
    state: String,
    progress: f64,
    message: String,
    result_json: Option<String>,
    error_json: Option<String>,
    usage_json: Option<String>,
    started_ms: i64,
    finished_ms: Option<i64>,
    replica: String,
    lease_expires_ms: i64,
    cancel_requested_ms: Option<i64>,
    event_count: i64,
    stored_bytes: i64,
}

/// `FromRow` for a row type of each backend (no `derive` feature: see the
/// crate's Cargo.toml).
macro_rules! run_row_from {
    ($row:ty) => {
        impl<'r> sqlx::FromRow<'r, $row> for RunRow {
            fn from_row(r: &'r $row) -> Result<Self, sqlx::Error> {
                use sqlx::Row;
                Ok(RunRow {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    workflow: r.try_get("workflow")?,
                    workflow_version: r.try_get("workflow_version")?,
                    workflow_digest: r.try_get("workflow_digest")?,
                    subject: r.try_get("subject")?,
                    caller: r.try_get("caller")?,
                    input_size: r.try_get("input_size")?,
                    input_sha256: r.try_get("input_sha256")?,
                    input_json: r.try_get("input_json")?,
                    state: r.try_get("state")?,
                    progress: r.try_get("progress")?,
                    message: r.try_get("message")?,
                    result_json: r.try_get("result_json")?,
                    error_json: r.try_get("error_json")?,
                    usage_json: r.try_get("usage_json")?,
                    started_ms: r.try_get("started_ms")?,
                    finished_ms: r.try_get("finished_ms")?,
                    replica: r.try_get("replica")?,
                    lease_expires_ms: r.try_get("lease_expires_ms")?,
                    cancel_requested_ms: r.try_get("cancel_requested_ms")?,
                    event_count: r.try_get("event_count")?,
                    stored_bytes: r.try_get("stored_bytes")?,
                })
            }
        }
    };
}
run_row_from!(sqlx::sqlite::SqliteRow);
run_row_from!(sqlx::postgres::PgRow);

impl RunRow {
    /// The record, with its JSON parsed and its state checked.
    pub(crate) fn into_record(self, url: &str) -> Result<RunRecord, StoreError> {
        let id = self.id;
        let bad = |field: &'static str, reason: String| StoreError::BadRecord {
            url: url.to_string(),
            id: id.clone(),
            field,
            reason,
        };
        let json =
            |field: &'static str, text: Option<String>| -> Result<Option<Value>, StoreError> {
                text.map(|t| serde_json::from_str(&t).map_err(|e| bad(field, e.to_string())))
                    .transpose()
            };
        let state = RunState::parse(&self.state).ok_or_else(|| {
            bad(
                "state",
                format!(
                    "`{}` is not running, completed, failed, cancelled or interrupted",
                    self.state
                ),
            )
        })?;
        Ok(RunRecord {
            input: json("input_json", self.input_json)?,
            result: json("result_json", self.result_json)?,
            error: json("error_json", self.error_json)?,
            usage: json("usage_json", self.usage_json)?,
            name: self.name,
            workflow: self.workflow,
            workflow_version: self.workflow_version,
            workflow_digest: self.workflow_digest,
            subject: self.subject,
            caller: self.caller,
            input_size: u64::try_from(self.input_size).unwrap_or(0),
            input_sha256: self.input_sha256,
            state,
            // Stored as DOUBLE PRECISION from an f32: the cast is exact.
            progress: self.progress as f32,
            message: self.message,
            started_ms: self.started_ms,
            finished_ms: self.finished_ms,
            replica: self.replica,
            lease_expires_ms: self.lease_expires_ms,
            cancel_requested_ms: self.cancel_requested_ms,
            events: u64::try_from(self.event_count).unwrap_or(0),
            stored_bytes: u64::try_from(self.stored_bytes).unwrap_or(0),
            id,
        })
    }
}

/// `Duration` as milliseconds for arithmetic on stored times.
pub(crate) fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The one implementation of [`RunStore`](crate::RunStore), for a backend
/// type with fields `pool`, `url`, `options`, `wakeups` and the hooks
/// `now`, `write_tx`, `fail`, `notify_cancel`, `wakeup` and `close_listener`
/// (see the module docs).
macro_rules! impl_run_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::RunStore for $store {
            fn url(&self) -> &str {
                &self.url
            }

            fn lease(&self) -> std::time::Duration {
                self.options.lease
            }

            async fn insert(
                &self,
                run: &$crate::NewRun,
            ) -> Result<$crate::RunRecord, $crate::StoreError> {
                use $crate::sql::*;
                const OP: &str = "insert a run";
                let v = InsertValues::of(run);
                let now = self.now();
                let lease_expires_ms = now.saturating_add(millis(self.options.lease));
                let mut tx = self.write_tx(OP).await?;
                let r = sqlx::query(INSERT_RUN)
                    .bind(&run.id)
                    .bind(&run.name)
                    .bind(&run.workflow)
                    .bind(&run.workflow_version)
                    .bind(&run.workflow_digest)
                    .bind(&run.subject)
                    .bind(&run.caller)
                    .bind(v.input_size)
                    .bind(&v.input_sha256)
                    .bind(&v.input_json)
                    .bind(now)
                    .bind(&run.replica)
                    .bind(lease_expires_ms)
                    .bind(v.stored_bytes())
                    .execute(&mut *tx)
                    .await;
                match r {
                    Err(e) if $crate::error::is_unique_violation(&e) => {
                        return Err($crate::StoreError::DuplicateRun {
                            url: self.url.clone(),
                            id: run.id.clone(),
                        });
                    }
                    Err(e) => return Err(self.fail(OP, e)),
                    Ok(_) => {}
                }
                tx.commit().await.map_err(|e| self.fail(OP, e))?;
                Ok($crate::RunRecord {
                    id: run.id.clone(),
                    name: run.name.clone(),
                    workflow: run.workflow.clone(),
                    workflow_version: run.workflow_version.clone(),
                    workflow_digest: run.workflow_digest.clone(),
                    subject: run.subject.clone(),
                    caller: run.caller.clone(),
                    input_size: u64::try_from(v.input_size).unwrap_or(0),
                    stored_bytes: u64::try_from(v.stored_bytes()).unwrap_or(0),
                    input_sha256: v.input_sha256,
                    input: run.keep_input.then(|| run.input.clone()),
                    state: $crate::RunState::Running,
                    progress: 0.0,
                    message: String::new(),
                    result: None,
                    error: None,
                    usage: None,
                    started_ms: now,
                    finished_ms: None,
                    replica: run.replica.clone(),
                    lease_expires_ms,
                    cancel_requested_ms: None,
                    events: 0,
                })
            }

            async fn progress(
                &self,
                id: &str,
                fraction: f32,
                message: &str,
            ) -> Result<bool, $crate::StoreError> {
                const OP: &str = "update progress";
                let mut tx = self.write_tx(OP).await?;
                let n = sqlx::query($crate::sql::PROGRESS)
                    .bind(id)
                    .bind(f64::from(fraction))
                    .bind(message)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.fail(OP, e))?
                    .rows_affected();
                tx.commit().await.map_err(|e| self.fail(OP, e))?;
                Ok(n == 1)
            }

            async fn finish(
                &self,
                id: &str,
                state: $crate::FinalState,
                result: Option<&serde_json::Value>,
                error: Option<&serde_json::Value>,
                usage: Option<&serde_json::Value>,
            ) -> Result<bool, $crate::StoreError> {
                use $crate::sql::*;
                const OP: &str = "finish a run";
                let state = $crate::RunState::from(state);
                let (result, error, usage) = (
                    result.map(|v| v.to_string()),
                    error.map(|v| v.to_string()),
                    usage.map(|v| v.to_string()),
                );
                let added: usize = [&result, &error, &usage]
                    .iter()
                    .map(|t| t.as_deref().map_or(0, str::len))
                    .sum();
                let progress = (state == $crate::RunState::Completed).then_some(1.0f64);
                let mut tx = self.write_tx(OP).await?;
                let n = sqlx::query(FINISH)
                    .bind(id)
                    .bind(state.as_str())
                    .bind(&result)
                    .bind(&error)
                    .bind(&usage)
                    .bind(self.now())
                    .bind(progress)
                    .bind(len_i64(added))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.fail(OP, e))?
                    .rows_affected();
                // Only a committed update counts as finished.
                tx.commit().await.map_err(|e| self.fail(OP, e))?;
                Ok(n == 1)
            }

            async fn get(
                &self,
                id: &str,
            ) -> Result<Option<$crate::RunRecord>, $crate::StoreError> {
                sqlx::query_as::<_, $crate::sql::RunRow>($crate::sql::GET)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| self.fail("get a run", e))?
                    .map(|r| r.into_record(&self.url))
                    .transpose()
            }

            async fn list(
                &self,
                limit: u32,
            ) -> Result<Vec<$crate::RunRecord>, $crate::StoreError> {
                sqlx::query_as::<_, $crate::sql::RunRow>($crate::sql::LIST)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| self.fail("list runs", e))?
                    .into_iter()
                    .map(|r| r.into_record(&self.url))
                    .collect()
            }

            async fn request_cancel(
                &self,
                id: &str,
            ) -> Result<$crate::CancelRequest, $crate::StoreError> {
                const OP: &str = "request a cancel";
                let mut tx = self.write_tx(OP).await?;
                let replica: Option<String> = sqlx::query_scalar($crate::sql::REQUEST_CANCEL)
                    .bind(id)
                    .bind(self.now())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.fail(OP, e))?;
                let Some(replica) = replica else {
                    // Not running: nothing changes a finished run back, so
                    // reading it after the UPDATE is not a race.
                    drop(tx);
                    return Ok(match self.get(id).await? {
                        Some(r) => $crate::CancelRequest::AlreadyFinished(Box::new(r)),
                        None => $crate::CancelRequest::NotFound,
                    });
                };
                self.notify_cancel(&mut tx, &replica)
                    .await
                    .map_err(|e| self.fail(OP, e))?;
                tx.commit().await.map_err(|e| self.fail(OP, e))?;
                self.wakeups.wake(&replica);
                Ok($crate::CancelRequest::Requested { replica })
            }

            async fn cancel_requests(
                &self,
                replica: &str,
            ) -> Result<Vec<String>, $crate::StoreError> {
                sqlx::query_scalar($crate::sql::CANCEL_REQUESTS)
                    .bind(replica)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| self.fail("read cancel requests", e))
            }

            fn cancel_wakeup(&self, replica: &str) -> $crate::CancelWakeup {
                self.wakeup(replica)
            }

            async fn renew_leases(
                &self,
                replica: &str,
            ) -> Result<Vec<String>, $crate::StoreError> {
                const OP: &str = "renew leases";
                let until = self
                    .now()
                    .saturating_add($crate::sql::millis(self.options.lease));
                let mut tx = self.write_tx(OP).await?;
                let ids: Vec<String> = sqlx::query_scalar($crate::sql::RENEW)
                    .bind(replica)
                    .bind(until)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| self.fail(OP, e))?;
                tx.commit().await.map_err(|e| self.fail(OP, e))?;
                Ok(ids)
            }

            async fn interrupt_expired(
                &self,
                sweeper: &str,
            ) -> Result<Vec<String>, $crate::StoreError> {
                use $crate::sql::*;
                const OP: &str = "interrupt runs whose lease expired";
                let now = self.now();
                let mut tx = self.write_tx(OP).await?;
                let expired: Vec<(String, String, i64)> = sqlx::query_as(EXPIRED)
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| self.fail(OP, e))?;
                let mut ids = Vec::with_capacity(expired.len());
                for (id, replica, expired_ms) in expired {
                    let error = interrupted_error(
                        format!(
                            "replica `{replica}` stopped renewing the lease of run `{id}` (it expired at unix ms {expired_ms}); the run was interrupted"
                        ),
                        &replica,
                        Some((expired_ms, sweeper)),
                    );
                    let n = sqlx::query(INTERRUPT_EXPIRED)
                        .bind(&id)
                        .bind(&error)
                        .bind(now)
                        .bind(len_i64(error.len()))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.fail(OP, e))?
                        .rows_affected();
                    if n == 1 {
                        ids.push(id);
                    }
                }
                tx.commit().await.map_err(|e| self.fail(OP, e))?;
                Ok(ids)
            }

            async fn interrupt_own(
                &self,
                replica: &str,
            ) -> Result<Vec<String>, $crate::StoreError> {
                use $crate::sql::*;
                const OP: &str = "interrupt a restarted replica's runs";
                let error = interrupted_error(
                    format!(
                        "replica `{replica}` restarted while the run was running; the run was interrupted"
                    ),
                    replica,
                    None,
                );
                let mut tx = self.write_tx(OP).await?;
                let ids: Vec<String> = sqlx::query_scalar(INTERRUPT_OWN)
                    .bind(replica)
                    .bind(&error)
                    .bind(self.now())
                    .bind(len_i64(error.len()))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| self.fail(OP, e))?;
                tx.commit().await.map_err(|e| self.fail(OP, e))?;
                Ok(ids)
            }

            async fn prune(
                &self,
                retention: $crate::Retention,
            ) -> Result<$crate::Pruned, $crate::StoreError> {
                use $crate::sql::*;
                const OP: &str = "prune finished runs";
                let mut pruned = $crate::Pruned::default();
                let mut tx = self.write_tx(OP).await?;
                if let Some(age) = retention.max_age {
                    pruned.by_age = sqlx::query(PRUNE_AGE)
                        .bind(self.now().saturating_sub(millis(age)))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.fail(OP, e))?
                        .rows_affected();
                }
                if let Some(budget) = retention.max_bytes {
                    pruned.by_size = sqlx::query(PRUNE_SIZE)
                        .bind(i64::try_from(budget).unwrap_or(i64::MAX))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.fail(OP, e))?
                        .rows_affected();
                }
                tx.commit().await.map_err(|e| self.fail(OP, e))?;
                Ok(pruned)
            }

            async fn append_event(
                &self,
                id: &str,
                event: &serde_json::Value,
            ) -> Result<u64, $crate::StoreError> {
                use $crate::sql::*;
                const OP: &str = "append an event";
                let text = event.to_string();
                let mut tx = self.write_tx(OP).await?;
                let seq: Option<i64> = sqlx::query_scalar(BUMP_EVENTS)
                    .bind(id)
                    .bind(len_i64(text.len()))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.fail(OP, e))?;
                let Some(seq) = seq else {
                    return Err($crate::StoreError::NoSuchRun {
                        url: self.url.clone(),
                        id: id.to_string(),
                    });
                };
                sqlx::query(INSERT_EVENT)
                    .bind(id)
                    .bind(seq)
                    .bind(self.now())
                    .bind(&text)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.fail(OP, e))?;
                tx.commit().await.map_err(|e| self.fail(OP, e))?;
                Ok(u64::try_from(seq).unwrap_or(0))
            }

            async fn events(
                &self,
                id: &str,
                after_seq: u64,
                limit: u32,
            ) -> Result<Vec<$crate::RunEvent>, $crate::StoreError> {
                let rows: Vec<(i64, i64, String)> = sqlx::query_as($crate::sql::EVENTS)
                    .bind(id)
                    .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| self.fail("list events", e))?;
                rows.into_iter()
                    .map(|(seq, at_ms, text)| {
                        let event = serde_json::from_str(&text).map_err(|e| {
                            $crate::StoreError::BadRecord {
                                url: self.url.clone(),
                                id: id.to_string(),
                                field: "event_json",
                                reason: format!("event {seq}: {e}"),
                            }
                        })?;
                        Ok($crate::RunEvent {
                            run_id: id.to_string(),
                            seq: u64::try_from(seq).unwrap_or(0),
                            at_ms,
                            event,
                        })
                    })
                    .collect()
            }

            async fn close(&self) {
                self.close_listener();
                self.pool.close().await;
            }
        }
    };
}
pub(crate) use impl_run_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_digest_is_of_the_compact_json() {
        let run = NewRun {
            id: "r".into(),
            name: "n".into(),
            workflow: "w".into(),
            workflow_version: None,
            workflow_digest: None,
            subject: None,
            caller: "cli".into(),
            input: serde_json::json!({"a": 1}),
            keep_input: false,
            replica: "a".into(),
        };
        let v = InsertValues::of(&run);
        assert_eq!(v.input_size, 7);
        // printf '{"a":1}' | sha256sum
        assert_eq!(
            v.input_sha256,
            "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
        );
        assert_eq!(v.input_json, None);
        assert_eq!(v.stored_bytes(), 0);
    }

    #[test]
    fn interrupted_errors_have_the_one_error_shape() {
        let e: Value =
            serde_json::from_str(&interrupted_error("m".into(), "a", Some((5, "b")))).unwrap();
        assert_eq!(e["kind"], "host");
        assert_eq!(e["message"], "m");
        assert_eq!(e["replica"], "a");
        assert_eq!(e["interrupted_by"], "b");
        assert_eq!(e["lease_expired_ms"], 5);
    }
}
