//! What only the PostgreSQL store has: a server that is not there at open, a
//! server that stops and comes back while the store is in use, and
//! `LISTEN`/`NOTIFY` wake-ups between replicas.

use crate::fixture::{new_run, shared_pg};
use serde_json::json;
use std::net::TcpListener;
use std::time::{Duration, Instant};
use toka_store::{FinalState, OpenOptions, RunState, StoreError};
use toka_testkit::PgServer;

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn unreachable_at_open_names_the_url_without_its_password_quickly() {
    let port = closed_port();
    let url = format!("postgres://toka:s3cret@127.0.0.1:{port}/runs?sslmode=disable");
    let started = Instant::now();
    let e = toka_store::open(&url)
        .await
        .err()
        .expect("nothing listens there");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(matches!(e, StoreError::Unreachable { .. }), "{e}");
    assert!(e.is_unavailable());
    assert_eq!(e.kind(), toka_spec::outcome::ErrorKind::Unavailable);
    let message = e.to_string();
    assert!(
        message.contains(&format!("postgres://toka:***@127.0.0.1:{port}/runs")),
        "{message}"
    );
    assert!(message.contains("is PostgreSQL running"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
    assert!(!format!("{e:?}").contains("s3cret"), "{e:?}");
}

/// A host that accepts the connection and then says nothing (a hung server,
/// a proxy with nothing behind it): Unreachable after the connect timeout,
/// not after the kernel's TCP timeout.
#[tokio::test]
async fn a_silent_server_is_unreachable_after_the_connect_timeout() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let options = OpenOptions {
        connect_timeout: Duration::from_millis(500),
        ..OpenOptions::default()
    };
    let started = Instant::now();
    let e = toka_store::open_with(&format!("postgres://toka@127.0.0.1:{port}/db"), options)
        .await
        .err()
        .expect("nothing answers");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(matches!(e, StoreError::Unreachable { .. }), "{e}");
    assert!(e.to_string().contains("no answer within"), "{e}");
    drop(silent);
}

#[tokio::test]
async fn a_missing_database_is_unreachable_with_the_fix() {
    let url = shared_pg().url_for("no_such_db");
    let e = toka_store::open(&url)
        .await
        .err()
        .expect("no such database");
    assert!(matches!(e, StoreError::Unreachable { .. }), "{e}");
    assert!(e.to_string().contains("createdb"), "{e}");
}

#[tokio::test]
async fn an_invalid_url_is_refused_without_its_password() {
    let e = toka_store::open("postgres://toka:s3cret@127.0.0.1:notaport/db")
        .await
        .err()
        .expect("not a port");
    assert!(matches!(e, StoreError::InvalidUrl { .. }), "{e}");
    assert!(!e.to_string().contains("s3cret"), "{e}");
}

/// The server stops under a store in use: operations fail with
/// `Unavailable` within the acquire timeout instead of hanging; once it is
/// back, the same store works again without reopening, and nothing stored
/// before is lost. A replica's wake-up listener reconnects too.
#[tokio::test]
async fn a_stopped_server_is_unavailable_then_works_again_after_restart() {
    let mut pg = PgServer::start();
    let url = pg.create_database("restart");
    let options = OpenOptions {
        acquire_timeout: Duration::from_secs(1),
        ..OpenOptions::default()
    };
    let a = toka_store::open_with(&url, options.clone()).await.unwrap();
    let b = toka_store::open_with(&url, options).await.unwrap();
    let mut wake_a = a.cancel_wakeup("a");
    a.insert(&new_run("before", "a")).await.unwrap();
    a.append_event("before", &json!({"event": "spawned"}))
        .await
        .unwrap();
    a.insert(&new_run("survivor", "a")).await.unwrap();
    a.finish(
        "before",
        FinalState::Completed,
        Some(&json!({"n": 1})),
        None,
        None,
    )
    .await
    .unwrap();
    let stored = a.get("before").await.unwrap().unwrap();
    // Let the listener's connect wake-up pass.
    let _ = tokio::time::timeout(Duration::from_secs(2), wake_a.notified()).await;

    pg.stop();
    let started = Instant::now();
    let e = a.get("before").await.unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    assert!(matches!(e, StoreError::Unavailable { .. }), "{e}");
    let e = a.insert(&new_run("during", "a")).await.unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    let e = a
        .finish("survivor", FinalState::Completed, None, None, None)
        .await
        .unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    let e = a.renew_leases("a").await.unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "4 operations took {took:?}");

    pg.start_again();
    // The pool replaces its dead connections by itself.
    assert_eq!(a.get("before").await.unwrap().unwrap(), stored);
    assert_eq!(a.events("before", 0, 10).await.unwrap().len(), 1);
    assert!(
        a.get("during").await.unwrap().is_none(),
        "what failed was not stored"
    );
    assert_eq!(
        b.get("survivor").await.unwrap().unwrap().state,
        RunState::Running
    );
    assert!(
        a.finish(
            "survivor",
            FinalState::Completed,
            Some(&json!(2)),
            None,
            None
        )
        .await
        .unwrap()
    );

    // The listener is back: a cancel from b wakes a again. A fresh
    // wake-up each round ignores those the reconnect itself sent.
    let woken = tokio::time::timeout(Duration::from_secs(20), async {
        for round in 0.. {
            let id = format!("late-{round}");
            let mut wake = a.cancel_wakeup("a");
            a.insert(&new_run(&id, "a")).await.unwrap();
            b.request_cancel(&id).await.unwrap();
            if tokio::time::timeout(Duration::from_secs(1), wake.notified())
                .await
                .is_ok()
            {
                return round;
            }
        }
        unreachable!()
    })
    .await
    .expect("the listener reconnects after the restart");
    eprintln!("woken by NOTIFY after the restart in round {woken}");
    drop(wake_a);
}

/// Killing the server mid-flight (like a crash) loses nothing committed.
#[tokio::test]
async fn a_crashed_server_recovers_what_was_committed() {
    let mut pg = PgServer::start();
    let url = pg.create_database("crash");
    let options = OpenOptions {
        acquire_timeout: Duration::from_secs(1),
        ..OpenOptions::default()
    };
    let store = toka_store::open_with(&url, options).await.unwrap();
    store.insert(&new_run("r", "a")).await.unwrap();
    store.progress("r", 0.5, "half").await.unwrap();
    pg.kill();
    assert!(
        store
            .progress("r", 0.7, "lost")
            .await
            .unwrap_err()
            .is_unavailable()
    );
    pg.start_again();
    let r = store.get("r").await.unwrap().unwrap();
    assert_eq!((r.progress, r.message.as_str()), (0.5, "half"));
}

#[tokio::test]
async fn a_cancel_from_another_replica_wakes_the_owner() {
    let url = shared_pg().create_database("notify");
    let a = toka_store::open(&url).await.unwrap();
    let b = toka_store::open(&url).await.unwrap();
    let mut wake_a = a.cancel_wakeup("a");
    let mut wake_c = a.cancel_wakeup("c");
    a.insert(&new_run("r", "a")).await.unwrap();
    // The listener wakes everyone once it is connected and listening.
    tokio::time::timeout(Duration::from_secs(5), wake_c.notified())
        .await
        .expect("the listener connects");
    let _ = tokio::time::timeout(Duration::from_millis(200), wake_a.notified()).await;

    let started = Instant::now();
    b.request_cancel("r").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), wake_a.notified())
        .await
        .expect("NOTIFY wakes replica a");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(a.cancel_requests("a").await.unwrap(), ["r"]);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), wake_c.notified())
            .await
            .is_err(),
        "only the owner is woken"
    );
}

#[tokio::test]
async fn replicas_starting_together_migrate_once() {
    let url = shared_pg().create_database("together");
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { toka_store::open(&url).await.map(|_| ()) })
        })
        .collect();
    for o in opens {
        o.await.unwrap().unwrap();
    }
    let versions = shared_pg().psql("together", "SELECT count(*) FROM schema_version");
    assert_eq!(versions.trim(), toka_store::SCHEMA_VERSION.to_string());
}
