//! The embedded backend: one SQLite file (bundled SQLite 3.46), the default
//! store of a single toka process. Several processes may share a file on one
//! machine; replicas on several machines share a PostgreSQL instead.
//!
//! Opening creates the parent directories (mode 0700: runs hold inputs and
//! results) and the file (0600; SQLite gives its `-wal` and `-shm` files the
//! same mode), sets WAL, `synchronous=NORMAL`, `busy_timeout` and foreign
//! keys, refuses a damaged file (`PRAGMA quick_check`), and migrates.
//! Writes run in `BEGIN IMMEDIATE` transactions: a deferred transaction that
//! reads and then writes fails at once with `SQLITE_BUSY` when another
//! writer got in between, without waiting for the busy timeout.

use crate::error::{sqlite_is_corrupt, sqlite_is_unavailable};
use crate::location::sqlite_display;
use crate::schema;
use crate::sql::{BoxFuture, impl_run_store};
use crate::wakeup::{CancelWakeup, Wakeups};
use crate::{OpenOptions, StoreError};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Executor, Sqlite, Transaction};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A run store in a SQLite file.
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
    url: String,
    options: OpenOptions,
    wakeups: Arc<Wakeups>,
}

impl SqliteStore {
    /// Opens (creating on first use) the store at `path`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unreachable`] when the directory or file cannot be
    /// created or opened, [`StoreError::Corrupt`] for a file that is not a
    /// database or is damaged, [`StoreError::NewerSchema`] for a store
    /// migrated by a newer toka.
    pub async fn open(path: &Path, options: OpenOptions) -> Result<SqliteStore, StoreError> {
        let url = sqlite_display(path);
        let unreachable = |reason: String| StoreError::Unreachable {
            url: url.clone(),
            reason,
        };
        create_private(path).map_err(unreachable)?;
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true);
        let corrupt = |e: &sqlx::Error| StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: e
                .as_database_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string()),
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| {
                if sqlite_is_corrupt(&e) {
                    corrupt(&e)
                } else {
                    unreachable(e.to_string())
                }
            })?;
        let store = SqliteStore {
            pool,
            path: path.to_path_buf(),
            url,
            options,
            wakeups: Arc::new(Wakeups::default()),
        };
        let opened = async {
            store.check_integrity().await?;
            store.migrate().await
        }
        .await;
        if let Err(e) = opened {
            store.pool.close().await;
            return Err(e);
        }
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Refuses a damaged file: healthy only if `quick_check` says exactly
    /// `ok` (it skips the index-versus-table checks of `integrity_check`, so
    /// it is fast enough to run at every start).
    fn check_integrity(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            match sqlx::query_scalar::<_, String>("PRAGMA quick_check")
                .fetch_all(&self.pool)
                .await
            {
                Ok(rows) if rows == ["ok"] => Ok(()),
                Ok(rows) => Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: rows.into_iter().take(3).collect::<Vec<_>>().join("; "),
                }),
                Err(e) => Err(self.fail("check the database", e)),
            }
        })
    }

    /// Applies the migrations this file lacks, under the write lock, so
    /// that two processes opening a new file at once migrate it once.
    fn migrate(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            const OP: &str = "migrate the schema";
            let mut tx = self.write_tx(OP).await?;
            (&mut *tx)
                .execute(sqlx::raw_sql(schema::CREATE_VERSION_TABLE))
                .await
                .map_err(|e| self.fail(OP, e))?;
            let current: Option<i64> = sqlx::query_scalar(schema::CURRENT_VERSION)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.fail(OP, e))?;
            let current = current.unwrap_or(0);
            if current > schema::LATEST {
                return Err(StoreError::NewerSchema {
                    url: self.url.clone(),
                    found: current,
                    supported: schema::LATEST,
                });
            }
            // A plain loop: an iterator adapter with a closure held across
            // `.await` makes rustc unable to prove the future `Send`.
            for &(version, sql) in schema::MIGRATIONS {
                if version <= current {
                    continue;
                }
                (&mut *tx)
                    .execute(sqlx::raw_sql(sql))
                    .await
                    .map_err(|e| self.fail(OP, e))?;
                sqlx::query(schema::RECORD_VERSION)
                    .bind(version)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.fail(OP, e))?;
            }
            tx.commit().await.map_err(|e| self.fail(OP, e))
        })
    }

    fn now(&self) -> i64 {
        (self.options.clock)()
    }

    async fn write_tx(&self, op: &'static str) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.fail(op, e))
    }

    fn fail(&self, op: &'static str, e: sqlx::Error) -> StoreError {
        if sqlite_is_corrupt(&e) {
            StoreError::Corrupt {
                path: self.path.clone(),
                detail: e
                    .as_database_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_string()),
            }
        } else if sqlite_is_unavailable(&e) {
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

    /// Other processes on the file are not told; they poll.
    async fn notify_cancel(
        &self,
        _tx: &mut Transaction<'static, Sqlite>,
        _replica: &str,
    ) -> Result<(), sqlx::Error> {
        Ok(())
    }

    fn wakeup(&self, replica: &str) -> CancelWakeup {
        self.wakeups.subscribe(replica)
    }

    fn close_listener(&self) {}
}

impl_run_store!(SqliteStore);

/// Creates the parent directories (0700) and the file (0600) if missing.
/// An existing directory or file keeps its mode: the operator chose it.
fn create_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create the directory {}: {e}", dir.display()))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        // An empty file is a valid empty SQLite database.
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}
