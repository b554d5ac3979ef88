//! The shared backend: a PostgreSQL database that several replicas use at
//! once (runs started on one are visible, cancellable and, when their replica
//! dies, interruptible from the others).
//!
//! Opening connects **once, directly**, under a timeout, before any pool
//! exists: a pool retries a refused connection until its acquire timeout and
//! then reports only "timed out", while one connection says at once whether
//! the server refused, the password was wrong or the database is missing.
//! Migrations run on that connection under an advisory lock (replicas that
//! start together migrate once). The pool that follows tests each connection
//! before handing it out, so it reconnects by itself after a server restart,
//! and gives up after a short acquire timeout, so callers get
//! [`StoreError::Unavailable`] instead of hanging while the server is down.
//!
//! Cancel requests are also sent with `pg_notify` on the channel
//! [`CANCEL_CHANNEL`] (payload: the replica id) to a listener that holds its
//! own connection; see [`crate::wakeup`] for why polling remains the
//! guarantee.

use crate::error::pg_is_unavailable;
use crate::location::redact_url;
use crate::schema;
use crate::sql::{BoxFuture, impl_run_store};
use crate::wakeup::{CancelWakeup, Wakeups};
use crate::{OpenOptions, StoreError};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::{Connection, Executor, Postgres, Transaction};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `LISTEN`/`NOTIFY` channel of cancel requests (quoted by sqlx, so
/// case-sensitive).
pub const CANCEL_CHANNEL: &str = "toka_cancel";

/// The advisory-lock key that serializes migrations ("toka" in ASCII).
const MIGRATION_LOCK: i64 = 0x746f_6b61;

/// PostgreSQL refuses `NOTIFY` payloads of 8000 bytes or more; a longer
/// replica id is woken by polling only.
const MAX_NOTIFY_PAYLOAD: usize = 7999;

/// A run store in a PostgreSQL database.
pub struct PgStore {
    pool: PgPool,
    connect: PgConnectOptions,
    url: String,
    options: OpenOptions,
    wakeups: Arc<Wakeups>,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl PgStore {
    /// Connects to `url` (`postgres://…` or `postgresql://…`; the password
    /// may also come from `PGPASSWORD` or `~/.pgpass`), migrates, and builds
    /// the pool.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidUrl`] for a URL the driver does not take,
    /// [`StoreError::Unreachable`] when the server refuses, does not answer
    /// within [`OpenOptions::connect_timeout`], rejects the credentials or
    /// lacks the database, [`StoreError::NewerSchema`] for a database
    /// migrated by a newer toka.
    pub async fn open(url: &str, options: OpenOptions) -> Result<PgStore, StoreError> {
        let shown = redact_url(url);
        let mut connect = PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
        if connect.get_application_name().is_none() {
            // Makes toka's sessions easy to spot in pg_stat_activity.
            connect = connect.application_name("toka");
        }
        let unreachable = |reason: String| StoreError::Unreachable {
            url: shown.clone(),
            reason,
        };
        let mut conn = match tokio::time::timeout(
            options.connect_timeout,
            PgConnection::connect_with(&connect),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(unreachable(connect_failure(&e))),
            // PgConnectOptions has no connect timeout of its own; a host that
            // drops packets would hang for the kernel's TCP timeout.
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {:?} (is the host right, and is a firewall dropping the connection?)",
                    options.connect_timeout
                )));
            }
        };
        let migrated = migrate(&mut conn).await;
        // The migration connection is not kept: the pool makes its own.
        let _ = conn.close().await;
        match migrated {
            Ok(()) => {}
            Err(Migration::Newer(found)) => {
                return Err(StoreError::NewerSchema {
                    url: shown,
                    found,
                    supported: schema::LATEST,
                });
            }
            Err(Migration::Failed(e)) if pg_is_unavailable(&e) => {
                return Err(unreachable(format!("lost while migrating the schema: {e}")));
            }
            Err(Migration::Failed(e)) => {
                return Err(StoreError::Query {
                    url: shown,
                    op: "migrate the schema",
                    source: e,
                });
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            // Pings an idle connection before handing it out: dead ones
            // (after a server restart) are replaced instead of failing the
            // caller's query with 57P01.
            .test_before_acquire(true)
            .connect_lazy_with(connect.clone());
        Ok(PgStore {
            pool,
            connect,
            url: shown,
            options,
            wakeups: Arc::new(Wakeups::default()),
            listener: Mutex::new(None),
        })
    }

    fn now(&self) -> i64 {
        (self.options.clock)()
    }

    async fn write_tx(
        &self,
        op: &'static str,
    ) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(|e| self.fail(op, e))
    }

    fn fail(&self, op: &'static str, e: sqlx::Error) -> StoreError {
        if pg_is_unavailable(&e) {
            StoreError::Unavailable {
                url: self.url.clone(),
                op,
                source: e,
            }
        } else {
            StoreError::Query {
                url: self.url.clone(),
                op,
                source: e,
            }
        }
    }

    /// Sent at commit, so a listener never wakes before the request is
    /// visible.
    async fn notify_cancel(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        replica: &str,
    ) -> Result<(), sqlx::Error> {
        if replica.len() > MAX_NOTIFY_PAYLOAD {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CANCEL_CHANNEL)
            .bind(replica)
            .execute(&mut **tx)
            .await
            .map(|_| ())
    }

    /// Starts the listener on first use (a store that is never asked for
    /// wake-ups holds no extra connection).
    fn wakeup(&self, replica: &str) -> CancelWakeup {
        let wake = self.wakeups.subscribe(replica);
        if let Ok(mut listener) = self.listener.lock()
            && listener.is_none()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(self.options.acquire_timeout)
                .connect_lazy_with(self.connect.clone());
            *listener = Some(rt.spawn(listen(pool, self.wakeups.clone())));
        }
        wake
    }

    fn close_listener(&self) {
        if let Ok(mut listener) = self.listener.lock()
            && let Some(task) = listener.take()
        {
            task.abort();
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.close_listener();
    }
}

impl_run_store!(PgStore);

/// Why migrating failed.
enum Migration {
    /// The database's schema is newer than this binary's.
    Newer(i64),
    /// A statement failed.
    Failed(sqlx::Error),
}

impl From<sqlx::Error> for Migration {
    fn from(e: sqlx::Error) -> Migration {
        Migration::Failed(e)
    }
}

/// Applies the missing migrations in one transaction holding an advisory
/// lock: a second replica starting at the same moment waits, then finds the
/// schema current.
fn migrate(conn: &mut PgConnection) -> BoxFuture<'_, Result<(), Migration>> {
    Box::pin(async move {
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        (&mut *tx)
            .execute(sqlx::raw_sql(schema::CREATE_VERSION_TABLE))
            .await?;
        let current: Option<i64> = sqlx::query_scalar(schema::CURRENT_VERSION)
            .fetch_one(&mut *tx)
            .await?;
        let current = current.unwrap_or(0);
        if current > schema::LATEST {
            return Err(Migration::Newer(current));
        }
        // A plain loop: an iterator adapter with a closure held across
        // `.await` makes rustc unable to prove the future `Send`.
        for &(version, sql) in schema::MIGRATIONS {
            if version <= current {
                continue;
            }
            (&mut *tx).execute(sqlx::raw_sql(sql)).await?;
            sqlx::query(schema::RECORD_VERSION)
                .bind(version)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    })
}

/// The cause of a failed first connection, with what to check.
fn connect_failure(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("{io} (is PostgreSQL running and listening on that host and port?)")
        }
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("28P01" | "28000") => format!(
                "{} (check the user and password: in the URL, PGPASSWORD or ~/.pgpass)",
                db.message()
            ),
            Some("3D000") => format!(
                "{} (create it with `createdb`, or fix the database name in the URL)",
                db.message()
            ),
            _ => db.message().to_string(),
        },
        other => other.to_string(),
    }
}

/// Forwards notifications to the wake-ups until the store is dropped
/// (which aborts this task). Every (re)connect wakes everyone: notifications
/// sent while disconnected are lost, so runners should look now.
async fn listen(pool: PgPool, wakeups: Arc<Wakeups>) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(200);
    const MAX_BACKOFF: Duration = Duration::from_secs(5);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        if listener.listen(CANCEL_CHANNEL).await.is_err() {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        }
        wakeups.wake_all();
        backoff = FIRST_BACKOFF;
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => wakeups.wake(n.payload()),
                // The connection was lost and sqlx has reconnected and
                // re-LISTENed by itself; what was sent in between is lost.
                Ok(None) => wakeups.wake_all(),
                // Lost and not back (or a reset sqlx does not recover
                // from): start over with a new listener.
                Err(_) => {
                    wakeups.wake_all();
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    break;
                }
            }
        }
    }
}
