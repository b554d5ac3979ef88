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

mod row;
mod run_store;

pub(crate) use row::RunRow;
pub(crate) use run_store::impl_run_store;

use crate::NewRun;
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

/// `Duration` as milliseconds for arithmetic on stored times.
pub(crate) fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

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
