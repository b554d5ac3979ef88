//! Toka's run store: agent runs and their events, kept where they survive a
//! restart and, on PostgreSQL, shared between replicas.
//!
//! One trait, [`RunStore`], with two implementations: [`SqliteStore`] (an
//! embedded file, the default, at [`default_sqlite_path`]) and [`PgStore`]
//! (a PostgreSQL database several replicas share). [`open`] picks one from a
//! URL (`sqlite:PATH`, `postgres://…`, `postgresql://…`).
//!
//! How runs move between replicas:
//! - **Leases.** A run belongs to the replica that inserted it, which renews
//!   the leases of all its running runs with [`RunStore::renew_leases`]
//!   (a heartbeat, every third of [`OpenOptions::lease`] or so). Any replica
//!   may call [`RunStore::interrupt_expired`], which ends `interrupted` every
//!   running run whose lease has expired (its replica died or lost the store),
//!   and a replica that starts ends its own leftover runs with
//!   [`RunStore::interrupt_own`]. Leases compare the clocks of different
//!   replicas: keep the lease well above the heartbeat plus clock skew.
//! - **Cancel.** [`RunStore::request_cancel`] stores the request in the row
//!   and says which replica runs it; that replica finds it with
//!   [`RunStore::cancel_requests`] (polling), woken early by
//!   [`RunStore::cancel_wakeup`], and ends the run `cancelled` with
//!   [`RunStore::finish`].
//! - **Finish once.** [`RunStore::finish`] changes only a running run, so a
//!   run interrupted by another replica is not overwritten by its late
//!   result, and a cancel and a result cannot both win.
//!
//! Times are unix milliseconds (`i64`) from the store's [`Clock`].
//! Queries are built at runtime (no sqlx macros, no database at build time);
//! the schema is migrated at open (versions up to [`SCHEMA_VERSION`]) and a
//! database migrated by a newer toka is refused.

mod clock;
mod error;
mod location;
mod postgres;
mod record;
mod schema;
mod sql;
mod sqlite;
mod wakeup;

pub use clock::{Clock, system_clock};
pub use error::StoreError;
pub use location::{Location, default_sqlite_path, redact_url};
pub use postgres::{CANCEL_CHANNEL, PgStore};
pub use record::{
    CancelRequest, FinalState, NewRun, Pruned, Retention, RunEvent, RunRecord, RunState, new_run_id,
};
pub use sqlite::SqliteStore;
pub use wakeup::CancelWakeup;

use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The newest schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = schema::LATEST;

/// Runs and their events, in SQLite or PostgreSQL.
///
/// Every method either did what it says, durably, or returns an error: a
/// lost connection is [`StoreError::Unavailable`] (retry later), never a
/// silent success.
#[async_trait::async_trait]
pub trait RunStore: Send + Sync {
    /// The store's URL, password hidden, for logs and messages.
    fn url(&self) -> &str;

    /// How long a lease lasts ([`OpenOptions::lease`]).
    fn lease(&self) -> Duration;

    /// Stores a new run, `running` on `run.replica`, started now, with a
    /// fresh lease. Returns the record as stored.
    ///
    /// # Errors
    ///
    /// [`StoreError::DuplicateRun`] when the id is taken; the store's errors.
    async fn insert(&self, run: &NewRun) -> Result<RunRecord, StoreError>;

    /// Records the run's progress (the caller throttles: one update every
    /// few hundred milliseconds at most). False when the run is not running.
    ///
    /// # Errors
    ///
    /// The store's errors.
    async fn progress(&self, id: &str, fraction: f32, message: &str) -> Result<bool, StoreError>;

    /// Ends the run in `state` with its result, error and usage, and
    /// progress 1.0 when completed. True only when the run was still running
    /// and the change is committed; false when it had already ended (by a
    /// cancel, an interruption or an earlier finish), which is then kept.
    ///
    /// # Errors
    ///
    /// The store's errors (the run's end was not stored then).
    async fn finish(
        &self,
        id: &str,
        state: FinalState,
        result: Option<&Value>,
        error: Option<&Value>,
        usage: Option<&Value>,
    ) -> Result<bool, StoreError>;

    /// The run `id`, if stored.
    ///
    /// # Errors
    ///
    /// The store's errors; [`StoreError::BadRecord`] for a row changed
    /// outside toka.
    async fn get(&self, id: &str) -> Result<Option<RunRecord>, StoreError>;

    /// Up to `limit` runs, newest (by start) first.
    ///
    /// # Errors
    ///
    /// As [`RunStore::get`].
    async fn list(&self, limit: u32) -> Result<Vec<RunRecord>, StoreError>;

    /// Asks for the run to be cancelled: stored in the run's row (so it
    /// survives a lost notification or a restart of the caller) for its
    /// replica to act on.
    ///
    /// # Errors
    ///
    /// The store's errors.
    async fn request_cancel(&self, id: &str) -> Result<CancelRequest, StoreError>;

    /// The ids of `replica`'s running runs that a caller asked to cancel.
    /// A request stays here until the run ends (so one lost answer loses
    /// nothing): cancel the task idempotently, then
    /// [`finish`](RunStore::finish) it `cancelled`. Poll it every few
    /// seconds; [`RunStore::cancel_wakeup`] says when to look sooner.
    ///
    /// # Errors
    ///
    /// The store's errors.
    async fn cancel_requests(&self, replica: &str) -> Result<Vec<String>, StoreError>;

    /// Resolves when a cancel request for `replica` may be waiting: at once
    /// for a request made through this handle, and on PostgreSQL for one
    /// made by any replica (`LISTEN`/`NOTIFY`). Best effort; polling
    /// [`RunStore::cancel_requests`] is the guarantee.
    fn cancel_wakeup(&self, replica: &str) -> CancelWakeup;

    /// Extends the lease of every running run of `replica` to now plus
    /// [`RunStore::lease`] (the heartbeat). Returns the ids renewed: a run
    /// the replica thinks it runs but that is missing here was interrupted
    /// by another replica, and its task should stop.
    ///
    /// # Errors
    ///
    /// The store's errors.
    async fn renew_leases(&self, replica: &str) -> Result<Vec<String>, StoreError>;

    /// Ends `interrupted` every running run whose lease expired before now,
    /// with an error saying its replica stopped renewing it and that
    /// `sweeper` noticed. Returns their ids.
    ///
    /// # Errors
    ///
    /// The store's errors.
    async fn interrupt_expired(&self, sweeper: &str) -> Result<Vec<String>, StoreError>;

    /// Ends `interrupted` every running run of `replica`: call it when the
    /// replica starts, before it runs anything, since whatever it ran before
    /// its restart is gone. Returns their ids.
    ///
    /// # Errors
    ///
    /// The store's errors.
    async fn interrupt_own(&self, replica: &str) -> Result<Vec<String>, StoreError>;

    /// Deletes finished runs (and their events) older than
    /// `retention.max_age`, then the oldest finished runs until the rest fit
    /// `retention.max_bytes`. Running runs are kept.
    ///
    /// # Errors
    ///
    /// The store's errors.
    async fn prune(&self, retention: Retention) -> Result<Pruned, StoreError>;

    /// Appends `event` to the run's events; returns its `seq` (1, 2, 3…).
    ///
    /// # Errors
    ///
    /// [`StoreError::NoSuchRun`]; the store's errors.
    async fn append_event(&self, id: &str, event: &Value) -> Result<u64, StoreError>;

    /// Up to `limit` events of the run with `seq` above `after_seq`, in
    /// order (`after_seq` 0 for the first).
    ///
    /// # Errors
    ///
    /// The store's errors.
    async fn events(
        &self,
        id: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<RunEvent>, StoreError>;

    /// Closes the connections (waiting for those in use to come back).
    async fn close(&self);
}

/// How to open a store. [`OpenOptions::default`] suits a server.
#[derive(Clone)]
pub struct OpenOptions {
    /// How long a lease lasts; renew every third of it. Default 30 s.
    pub lease: Duration,
    /// Pool size. Default 8.
    pub max_connections: u32,
    /// How long an operation waits for a connection before it fails with
    /// [`StoreError::Unavailable`] (while PostgreSQL is down, every
    /// operation takes this long). Default 3 s.
    pub acquire_timeout: Duration,
    /// How long the first connection to PostgreSQL may take at open before
    /// [`StoreError::Unreachable`]. Default 5 s.
    pub connect_timeout: Duration,
    /// How long SQLite waits for another writer's lock. Default 5 s.
    pub busy_timeout: Duration,
    /// Where times come from. Default: the system clock.
    pub clock: Clock,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions {
            lease: Duration::from_secs(30),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            clock: system_clock(),
        }
    }
}

impl std::fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("lease", &self.lease)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("busy_timeout", &self.busy_timeout)
            .finish_non_exhaustive()
    }
}

/// Opens the store at `url` with [`OpenOptions::default`]: `sqlite:PATH`
/// (created on first use) or `postgres://…` / `postgresql://…`.
///
/// # Errors
///
/// [`StoreError::InvalidUrl`], [`StoreError::Unreachable`],
/// [`StoreError::Corrupt`] (SQLite), [`StoreError::NewerSchema`].
///
/// # Examples
///
/// ```no_run
/// # async fn f() -> Result<(), toka_store::StoreError> {
/// let path = toka_store::default_sqlite_path().expect("HOME is set");
/// let store = toka_store::open(&format!("sqlite:{}", path.display())).await?;
/// let runs = store.list(20).await?;
/// # Ok(()) }
/// ```
pub async fn open(url: &str) -> Result<Arc<dyn RunStore>, StoreError> {
    open_with(url, OpenOptions::default()).await
}

/// [`open`] with options.
///
/// # Errors
///
/// As [`open`].
pub async fn open_with(url: &str, options: OpenOptions) -> Result<Arc<dyn RunStore>, StoreError> {
    Ok(match Location::parse(url)? {
        Location::Sqlite(path) => Arc::new(SqliteStore::open(&path, options).await?),
        Location::Postgres(url) => Arc::new(PgStore::open(&url, options).await?),
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    /// Callers open stores inside `tokio::spawn`; see `sql::BoxFuture` for
    /// what breaks this.
    #[test]
    fn opening_is_send() {
        fn is_send<T: Send>(_: &T) {}
        is_send(&open("sqlite:x"));
        is_send(&SqliteStore::open(
            std::path::Path::new("x"),
            OpenOptions::default(),
        ));
        is_send(&PgStore::open("postgres://h/d", OpenOptions::default()));
    }
}
