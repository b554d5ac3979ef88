//! Fresh stores for a test: a new SQLite file, or a new database on the
//! shared PostgreSQL server; a clock the test moves by hand; and a way to
//! reach the database behind the store's back (to plant a newer schema).

use serde_json::json;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use toka_store::{NewRun, OpenOptions, RunStore, StoreError};
use toka_testkit::PgServer;

/// The server the PostgreSQL half of the suite shares. A `static` is never
/// dropped: the testkit's guardian stops the server when the test process
/// exits.
pub fn shared_pg() -> &'static PgServer {
    static PG: OnceLock<PgServer> = OnceLock::new();
    PG.get_or_init(PgServer::start)
}

/// Which backend a test runs against.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A clock the test sets; starts at a fixed, realistic time.
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub const START: i64 = 1_800_000_000_000;

    pub fn new() -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(Self::START)))
    }

    pub fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

/// One empty database and the URL to open it.
pub struct Db {
    pub backend: Backend,
    pub url: String,
    pub clock: ManualClock,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    /// A new, empty database of `backend`.
    pub fn new(backend: Backend) -> Db {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let clock = ManualClock::new();
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite:{}", dir.path().join("state/toka/runs.db").display());
                Db {
                    backend,
                    url,
                    clock,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let n = NEXT.fetch_add(1, Ordering::SeqCst);
                let url = shared_pg().create_database(&format!("t_{n}"));
                Db {
                    backend,
                    url,
                    clock,
                    _dir: None,
                }
            }
        }
    }

    /// Options with the test's clock and a 10 s lease.
    pub fn options(&self) -> OpenOptions {
        let clock = self.clock.clone();
        OpenOptions {
            lease: Duration::from_secs(10),
            clock: Arc::new(move || clock.now()),
            ..OpenOptions::default()
        }
    }

    /// A handle on the database (a "replica"; call it again for another).
    pub async fn open(&self) -> Arc<dyn RunStore> {
        self.try_open().await.unwrap()
    }

    pub async fn try_open(&self) -> Result<Arc<dyn RunStore>, StoreError> {
        toka_store::open_with(&self.url, self.options()).await
    }

    /// Records schema version `v` behind the store's back, as a newer toka
    /// would have.
    pub async fn plant_schema_version(&self, v: i64) {
        match self.backend {
            Backend::Sqlite => {
                let path = self.url.strip_prefix("sqlite:").unwrap();
                let pool = sqlx::SqlitePool::connect_with(
                    sqlx::sqlite::SqliteConnectOptions::new().filename(path),
                )
                .await
                .unwrap();
                sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
                    .bind(v)
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            }
            Backend::Postgres => {
                let db = self.url.rsplit('/').next().unwrap();
                shared_pg().psql(
                    db,
                    &format!("INSERT INTO schema_version (version) VALUES ({v})"),
                );
            }
        }
    }
}

/// A run of workflow `wf` on `replica`.
pub fn new_run(id: &str, replica: &str) -> NewRun {
    NewRun {
        id: id.to_string(),
        name: format!("{id}-name"),
        workflow: "research".into(),
        workflow_version: Some("1.2.0".into()),
        workflow_digest: Some("ab".repeat(32)),
        subject: Some("alice".into()),
        caller: "http 127.0.0.1".into(),
        input: json!({"topic": "wasm", "depth": 2}),
        keep_input: false,
        replica: replica.to_string(),
    }
}
