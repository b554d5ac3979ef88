//! What only the SQLite store has: a file it creates privately, damaged
//! files refused at open with their path, and a location it cannot create.

use crate::fixture::new_run;
use std::os::unix::fs::PermissionsExt;
use toka_store::{OpenOptions, RunStore, SqliteStore, StoreError};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn creates_private_directories_and_file_with_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/toka/runs.db");
    let store = toka_store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    store.insert(&new_run("r", "a")).await.unwrap();
    assert_eq!(mode(&dir.path().join("state")), 0o700);
    assert_eq!(mode(&dir.path().join("state/toka")), 0o700);
    assert_eq!(mode(&path), 0o600);
    assert!(
        dir.path().join("state/toka/runs.db-wal").exists(),
        "WAL mode"
    );
    assert_eq!(store.url(), format!("sqlite:{}", path.display()));
}

/// A file of garbage: SQLITE_NOTADB at the first statement.
#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    std::fs::write(&path, vec![0x41u8; 8192]).unwrap();
    let e = SqliteStore::open(&path, OpenOptions::default())
        .await
        .err()
        .expect("garbage is refused");
    assert!(
        matches!(&e, StoreError::Corrupt { path: p, .. } if *p == path),
        "{e}"
    );
    let message = e.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("move it aside"), "{message}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        vec![0x41u8; 8192],
        "left untouched"
    );
}

/// A valid header but pages overwritten in the middle: caught by
/// `quick_check` (or the first query) at open, not at some later write.
#[tokio::test]
async fn damaged_pages_are_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    let store = SqliteStore::open(&path, OpenOptions::default())
        .await
        .unwrap();
    for i in 0..300 {
        let mut run = new_run(&format!("run-{i:04}"), "a");
        run.keep_input = true;
        run.input = serde_json::json!("z".repeat(200));
        store.insert(&run).await.unwrap();
    }
    // Checkpoints the WAL into the file and removes it.
    store.close().await;
    drop(store);
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 40_000, "several pages: {}", bytes.len());
    let mid = bytes.len() / 2;
    bytes[mid..mid + 3000].fill(0xff);
    std::fs::write(&path, bytes).unwrap();

    let e = SqliteStore::open(&path, OpenOptions::default())
        .await
        .err()
        .expect("a damaged file is refused");
    assert!(
        matches!(&e, StoreError::Corrupt { path: p, .. } if *p == path),
        "{e}"
    );
    assert_eq!(e.kind(), toka_spec::outcome::ErrorKind::Host);
}

/// Damage that leaves every query working: an index page that lost its
/// cells. Only `quick_check` sees it, and the store refuses to go on.
#[tokio::test]
async fn a_damaged_index_found_only_by_quick_check_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    let store = SqliteStore::open(&path, OpenOptions::default())
        .await
        .unwrap();
    store.insert(&new_run("r", "a")).await.unwrap();
    store.close().await;
    drop(store);
    let (root, page_size) = {
        let pool = sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new().filename(&path),
        )
        .await
        .unwrap();
        let root: i64 =
            sqlx::query_scalar("SELECT rootpage FROM sqlite_master WHERE name = 'runs_by_start'")
                .fetch_one(&pool)
                .await
                .unwrap();
        let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        (root as usize, page_size as usize)
    };
    let mut bytes = std::fs::read(&path).unwrap();
    let page = (root - 1) * page_size;
    assert_eq!(bytes[page], 0x0a, "a leaf index page");
    // The page's cell count (bytes 3..5 of its header) set to zero.
    bytes[page + 3] = 0;
    bytes[page + 4] = 0;
    std::fs::write(&path, bytes).unwrap();

    let e = SqliteStore::open(&path, OpenOptions::default())
        .await
        .err()
        .expect("a damaged index is refused");
    match &e {
        StoreError::Corrupt { path: p, detail } => {
            assert_eq!(*p, path);
            assert!(detail.contains("runs_by_start"), "{detail}");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn an_uncreatable_location_is_unreachable_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let url = format!("sqlite:{}/runs.db", file.display());
    let e = toka_store::open(&url)
        .await
        .err()
        .expect("cannot create under a file");
    assert!(matches!(e, StoreError::Unreachable { .. }), "{e}");
    assert!(e.is_unavailable());
    assert!(e.to_string().contains(&url), "{e}");
}

#[tokio::test]
async fn two_processes_worth_of_writers_wait_for_each_other() {
    // Two pools on one file, writing at once: BEGIN IMMEDIATE makes the
    // second wait for the lock instead of failing with SQLITE_BUSY.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    let a = std::sync::Arc::new(
        SqliteStore::open(&path, OpenOptions::default())
            .await
            .unwrap(),
    );
    let b = std::sync::Arc::new(
        SqliteStore::open(&path, OpenOptions::default())
            .await
            .unwrap(),
    );
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let id = format!("r{i}");
            store.insert(&new_run(&id, "a")).await.unwrap();
            store.progress(&id, 0.5, "half").await.unwrap();
            store.request_cancel(&id).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(a.list(100).await.unwrap().len(), 40);
    assert_eq!(b.cancel_requests("a").await.unwrap().len(), 40);
}
