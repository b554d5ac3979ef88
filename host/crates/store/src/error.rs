//! Why a store operation failed, in the words callers act on: the store could
//! not be reached at start, was lost during operation (retry or back off),
//! is damaged, is newer than this binary, or a query failed. Also the one
//! place that sorts driver errors into those cases, per backend.
//!
//! Every message names the store by its redacted URL (`postgres://u:***@…`
//! or `sqlite:PATH`); no variant holds a password.

use std::path::PathBuf;
use toka_spec::outcome::ErrorKind;

/// A run-store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is not one `open` takes.
    #[error("run store URL `{url}` is not valid: {reason}")]
    InvalidUrl {
        /// The URL, password hidden.
        url: String,
        /// What is wrong and the forms that work.
        reason: String,
    },
    /// The store could not be reached or opened at start.
    #[error("cannot reach the run store at {url}: {reason}")]
    Unreachable {
        /// The URL, password hidden.
        url: String,
        /// The cause and what to check.
        reason: String,
    },
    /// The SQLite file is not a database or is damaged.
    #[error(
        "the run store {} is corrupt ({detail}); move it aside (its runs are lost, or try `sqlite3 {} .recover`) and start again: a new store is created",
        path.display(),
        path.display()
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// The database was migrated by a newer toka.
    #[error(
        "the run store at {url} has schema version {found}, newer than this toka supports ({supported}); upgrade toka, or point it at another store"
    )]
    NewerSchema {
        /// The URL, password hidden.
        url: String,
        /// The version found in `schema_version`.
        found: i64,
        /// The newest version this binary knows.
        supported: i64,
    },
    /// The store was lost during operation (I/O error, pool timeout, the
    /// server shutting down): retry later.
    #[error("the run store at {url} is unavailable ({op}): {source}")]
    Unavailable {
        /// The URL, password hidden.
        url: String,
        /// What was being done.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A query failed for another reason (a bug, a constraint, a full disk
    /// the driver reports as such).
    #[error("run store query failed at {url} ({op}): {source}")]
    Query {
        /// The URL, password hidden.
        url: String,
        /// What was being done.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A run was inserted under an id the store already holds.
    #[error(
        "the run store at {url} already holds a run `{id}`; run ids must be unique (use toka_store::new_run_id)"
    )]
    DuplicateRun {
        /// The URL, password hidden.
        url: String,
        /// The id.
        id: String,
    },
    /// An operation named a run the store does not hold.
    #[error("the run store at {url} holds no run `{id}` (never started here, or pruned)")]
    NoSuchRun {
        /// The URL, password hidden.
        url: String,
        /// The id.
        id: String,
    },
    /// A stored value could not be read back (JSON that does not parse, an
    /// unknown state): the database was changed outside toka.
    #[error("run `{id}` in the run store at {url} has an unreadable {field}: {reason}")]
    BadRecord {
        /// The URL, password hidden.
        url: String,
        /// The run.
        id: String,
        /// The column.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl StoreError {
    /// The error's word in Toka's one vocabulary: `unavailable` for a store
    /// that cannot be reached or was lost, `not-found` for an unknown run,
    /// `invalid-input` for a bad URL or a duplicate id, `host` otherwise.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Unreachable { .. } | StoreError::Unavailable { .. } => {
                ErrorKind::Unavailable
            }
            StoreError::InvalidUrl { .. } | StoreError::DuplicateRun { .. } => {
                ErrorKind::InvalidInput
            }
            StoreError::NoSuchRun { .. } => ErrorKind::NotFound,
            StoreError::Corrupt { .. }
            | StoreError::NewerSchema { .. }
            | StoreError::Query { .. }
            | StoreError::BadRecord { .. } => ErrorKind::Host,
        }
    }

    /// True when the store is not reachable now (at start or during
    /// operation) and the same operation may succeed later.
    pub fn is_unavailable(&self) -> bool {
        self.kind() == ErrorKind::Unavailable
    }
}

/// The primary result code of a SQLite error (`db.code()` is the extended
/// code as decimal text; the primary code is its low byte).
pub(crate) fn sqlite_primary_code(e: &sqlx::Error) -> Option<i64> {
    let db = e.as_database_error()?;
    let code: i64 = db.code()?.parse().ok()?;
    Some(code & 0xff)
}

/// SQLITE_CORRUPT (11) and SQLITE_NOTADB (26).
pub(crate) fn sqlite_is_corrupt(e: &sqlx::Error) -> bool {
    matches!(sqlite_primary_code(e), Some(11 | 26))
}

/// Errors after which a SQLite store may work again: the file busy past
/// busy_timeout (5 BUSY, 6 LOCKED), I/O errors (10), a full disk (13),
/// the file gone (14 CANTOPEN), a read-only file system (8), and the
/// pool's own timeouts.
pub(crate) fn sqlite_is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(_) => {
            matches!(sqlite_primary_code(e), Some(5 | 6 | 8 | 10 | 13 | 14))
        }
        _ => false,
    }
}

/// Errors of a lost or not-yet-back PostgreSQL: I/O and TLS errors, pool
/// timeouts (the pool retries refused connections until its acquire timeout
/// and then reports only that), a broken protocol stream, and the SQLSTATEs
/// of class 08 (connection exception), 57P01..57P03 (the server shutting down
/// or starting) and 53300 (too many connections).
pub(crate) fn pg_is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// A unique-key violation (a duplicate run id).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_are_unavailable() {
        let e = StoreError::Unavailable {
            url: "postgres://u:***@h/d".into(),
            op: "get",
            source: sqlx::Error::PoolTimedOut,
        };
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_unavailable());
        assert!(pg_is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(sqlite_is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(!pg_is_unavailable(&sqlx::Error::RowNotFound));
        let q = StoreError::NoSuchRun {
            url: "sqlite:x".into(),
            id: "r".into(),
        };
        assert_eq!(q.kind(), ErrorKind::NotFound);
        assert!(!q.is_unavailable());
    }
}
