//! One `runs` row as both drivers read it, and the [`RunRecord`] it becomes
//! (JSON parsed, state checked): the only place stored values are decoded.

use crate::StoreError;
use crate::record::{RunRecord, RunState};
use serde_json::Value;

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
