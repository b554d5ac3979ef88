//! The store's schema, as a list of numbered migrations in SQL that both
//! SQLite and PostgreSQL run unchanged, and the bookkeeping that applies them
//! at open: a `schema_version` table holding every version applied.
//!
//! Why hand-rolled: `sqlx::migrate!` needs the macro crates (and with them a
//! second build of bundled SQLite), and the runtime `Migrator` needs files on
//! disk. A list in the binary is versioned with the code that reads it.
//!
//! Portable SQL: `TEXT`, `BIGINT` (unix ms, sizes, counters), `DOUBLE
//! PRECISION` (never `REAL`: float4 on PostgreSQL), JSON as `TEXT`, no
//! auto-increment ids (event `seq` is assigned by the store), no `STRICT`
//! tables (which reject these type names).

/// The migrations, oldest first; version `n` is at index `n - 1`. Append
/// only: a released migration never changes.
pub(crate) const MIGRATIONS: &[(i64, &str)] = &[(1, V1)];

/// The newest schema this binary knows.
pub(crate) const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Created before reading the version, inside the migration transaction.
pub(crate) const CREATE_VERSION_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL PRIMARY KEY)";

/// The current version (`NULL` in a new database).
pub(crate) const CURRENT_VERSION: &str = "SELECT MAX(version) FROM schema_version";

/// Records a version as applied.
pub(crate) const RECORD_VERSION: &str = "INSERT INTO schema_version (version) VALUES ($1)";

/// Runs and their events.
const V1: &str = "
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    workflow TEXT NOT NULL,
    workflow_version TEXT,
    workflow_digest TEXT,
    subject TEXT,
    caller TEXT NOT NULL,
    input_size BIGINT NOT NULL,
    input_sha256 TEXT NOT NULL,
    input_json TEXT,
    state TEXT NOT NULL
        CHECK (state IN ('running', 'completed', 'failed', 'cancelled', 'interrupted')),
    progress DOUBLE PRECISION NOT NULL,
    message TEXT NOT NULL,
    result_json TEXT,
    error_json TEXT,
    usage_json TEXT,
    started_ms BIGINT NOT NULL,
    finished_ms BIGINT,
    replica TEXT NOT NULL,
    lease_expires_ms BIGINT NOT NULL,
    cancel_requested_ms BIGINT,
    event_count BIGINT NOT NULL,
    stored_bytes BIGINT NOT NULL
);
CREATE INDEX runs_by_start ON runs (started_ms);
CREATE INDEX runs_by_finish ON runs (finished_ms);
CREATE INDEX runs_by_state_replica ON runs (state, replica);
CREATE TABLE run_events (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    event_json TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_from_one() {
        for (i, (v, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v, i as i64 + 1);
        }
        assert_eq!(LATEST, MIGRATIONS.len() as i64);
    }
}
