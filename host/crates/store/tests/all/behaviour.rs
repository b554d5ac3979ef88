//! The behaviour every store has, run against both backends: each function
//! below becomes `behaviour::sqlite::NAME` and `behaviour::postgres::NAME`.

use crate::fixture::{Backend, Db, ManualClock, new_run};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use toka_store::{CancelRequest, FinalState, Retention, RunState, StoreError};

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(crate::fixture::Backend::Sqlite).await
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                super::$name(crate::fixture::Backend::Postgres).await
            })*
        }
    };
}

on_both_backends!(
    insert_get_and_list_newest_first,
    inputs_are_kept_only_when_asked,
    progress_then_finish_once,
    a_duplicate_id_is_refused,
    cancel_request_reaches_the_owning_replica,
    cancel_of_finished_or_unknown_runs,
    cancel_wakes_the_replica_through_the_same_handle,
    expired_lease_is_interrupted_by_another_replica,
    renewed_leases_are_not_interrupted,
    restarted_replica_interrupts_its_own_runs,
    retention_by_age_keeps_running_and_recent_runs,
    retention_by_bytes_deletes_the_oldest_first,
    events_come_back_in_order,
    concurrent_appends_from_two_replicas_get_distinct_seqs,
    two_handles_see_each_others_runs,
    reopening_keeps_everything,
    a_newer_schema_is_refused,
);

async fn insert_get_and_list_newest_first(b: Backend) {
    let db = Db::new(b);
    let store = db.open().await;
    for id in ["r1", "r2", "r3"] {
        store.insert(&new_run(id, "a")).await.unwrap();
        db.clock.advance(5);
    }
    let r = store.get("r2").await.unwrap().unwrap();
    assert_eq!(r.id, "r2");
    assert_eq!(r.name, "r2-name");
    assert_eq!(r.workflow, "research");
    assert_eq!(r.workflow_version.as_deref(), Some("1.2.0"));
    assert_eq!(r.workflow_digest, Some("ab".repeat(32)));
    assert_eq!(r.subject.as_deref(), Some("alice"));
    assert_eq!(r.caller, "http 127.0.0.1");
    assert_eq!(r.state, RunState::Running);
    assert_eq!(r.started_ms, ManualClock::START + 5);
    assert_eq!(r.finished_ms, None);
    assert_eq!(r.replica, "a");
    assert_eq!(r.lease_expires_ms, ManualClock::START + 5 + 10_000);
    assert_eq!(r.progress, 0.0);
    assert_eq!(r.events, 0);
    assert!(store.get("nope").await.unwrap().is_none());

    let ids: Vec<String> = store
        .list(10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["r3", "r2", "r1"]);
    assert_eq!(store.list(2).await.unwrap().len(), 2);
}

async fn inputs_are_kept_only_when_asked(b: Backend) {
    let db = Db::new(b);
    let store = db.open().await;
    let mut kept = new_run("kept", "a");
    kept.keep_input = true;
    let inserted = store.insert(&kept).await.unwrap();
    store.insert(&new_run("digest-only", "a")).await.unwrap();

    let kept = store.get("kept").await.unwrap().unwrap();
    assert_eq!(kept, inserted, "insert returns the record as stored");
    assert_eq!(kept.input, Some(json!({"topic": "wasm", "depth": 2})));
    let text = kept.input.as_ref().unwrap().to_string();
    assert_eq!(kept.input_size, text.len() as u64);
    assert_eq!(kept.stored_bytes, text.len() as u64);

    let other = store.get("digest-only").await.unwrap().unwrap();
    assert_eq!(other.input, None);
    assert_eq!(other.input_size, kept.input_size);
    assert_eq!(other.input_sha256, kept.input_sha256);
    assert_eq!(other.input_sha256.len(), 64);
    assert_eq!(other.stored_bytes, 0);
}

async fn progress_then_finish_once(b: Backend) {
    let db = Db::new(b);
    let store = db.open().await;
    store.insert(&new_run("r", "a")).await.unwrap();
    assert!(store.progress("r", 0.25, "reading").await.unwrap());
    let r = store.get("r").await.unwrap().unwrap();
    assert_eq!((r.progress, r.message.as_str()), (0.25, "reading"));
    // f32 survives DOUBLE PRECISION exactly.
    assert!(store.progress("r", 0.1, "more").await.unwrap());
    assert_eq!(store.get("r").await.unwrap().unwrap().progress, 0.1f32);

    db.clock.advance(1234);
    let result = json!({"answer": 42});
    let usage = json!({"fuel_consumed": 10, "wall_time_ms": 1.5});
    assert!(
        store
            .finish(
                "r",
                FinalState::Completed,
                Some(&result),
                None,
                Some(&usage)
            )
            .await
            .unwrap()
    );
    let done = store.get("r").await.unwrap().unwrap();
    assert_eq!(done.state, RunState::Completed);
    assert_eq!(done.result, Some(result.clone()));
    assert_eq!(done.usage, Some(usage));
    assert_eq!(done.error, None);
    assert_eq!(done.progress, 1.0);
    assert_eq!(done.finished_ms, Some(ManualClock::START + 1234));
    assert_eq!(done.elapsed_ms(0), 1234);

    // A second finish (a late cancel, a duplicate result) changes nothing.
    let error = json!({"kind": "cancelled", "message": "cancelled by request"});
    assert!(
        !store
            .finish("r", FinalState::Cancelled, None, Some(&error), None)
            .await
            .unwrap()
    );
    assert_eq!(store.get("r").await.unwrap().unwrap(), done);
    assert!(!store.progress("r", 0.5, "late").await.unwrap());
    assert!(
        !store
            .finish("missing", FinalState::Failed, None, None, None)
            .await
            .unwrap()
    );
}

async fn a_duplicate_id_is_refused(b: Backend) {
    let db = Db::new(b);
    let store = db.open().await;
    store.insert(&new_run("r", "a")).await.unwrap();
    let e = store.insert(&new_run("r", "b")).await.unwrap_err();
    assert!(
        matches!(e, StoreError::DuplicateRun { ref id, .. } if id == "r"),
        "{e}"
    );
    assert_eq!(store.get("r").await.unwrap().unwrap().replica, "a");
}

async fn cancel_request_reaches_the_owning_replica(b: Backend) {
    let db = Db::new(b);
    let (a, other) = (db.open().await, db.open().await);
    a.insert(&new_run("r", "a")).await.unwrap();
    a.insert(&new_run("s", "a")).await.unwrap();
    other.insert(&new_run("t", "b")).await.unwrap();

    let asked = other.request_cancel("r").await.unwrap();
    assert_eq!(
        asked,
        CancelRequest::Requested {
            replica: "a".into()
        }
    );
    // Asking twice keeps the first request's time and is still fine.
    db.clock.advance(10);
    assert!(matches!(
        other.request_cancel("r").await.unwrap(),
        CancelRequest::Requested { .. }
    ));
    let r = a.get("r").await.unwrap().unwrap();
    assert_eq!(r.cancel_requested_ms, Some(ManualClock::START));
    assert_eq!(
        r.state,
        RunState::Running,
        "the owner ends it, not the request"
    );

    assert!(other.cancel_requests("b").await.unwrap().is_empty());
    assert_eq!(a.cancel_requests("a").await.unwrap(), ["r"]);
    // Still pending until the run ends: a poll whose answer was lost
    // loses nothing.
    assert_eq!(a.cancel_requests("a").await.unwrap(), ["r"]);

    let error = json!({"kind": "cancelled", "message": "cancelled by request"});
    assert!(
        a.finish("r", FinalState::Cancelled, None, Some(&error), None)
            .await
            .unwrap()
    );
    assert_eq!(
        other.get("r").await.unwrap().unwrap().state,
        RunState::Cancelled
    );
    assert!(a.cancel_requests("a").await.unwrap().is_empty(), "ended");
    assert_eq!(
        other.get("s").await.unwrap().unwrap().cancel_requested_ms,
        None
    );
}

async fn cancel_of_finished_or_unknown_runs(b: Backend) {
    let db = Db::new(b);
    let store = db.open().await;
    store.insert(&new_run("r", "a")).await.unwrap();
    store
        .finish("r", FinalState::Completed, Some(&json!(1)), None, None)
        .await
        .unwrap();
    match store.request_cancel("r").await.unwrap() {
        CancelRequest::AlreadyFinished(r) => {
            assert_eq!(r.state, RunState::Completed);
            assert_eq!(r.cancel_requested_ms, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.request_cancel("nope").await.unwrap(),
        CancelRequest::NotFound
    );
    assert!(store.cancel_requests("a").await.unwrap().is_empty());
}

async fn cancel_wakes_the_replica_through_the_same_handle(b: Backend) {
    let db = Db::new(b);
    let store = db.open().await;
    let mut wake_a = store.cancel_wakeup("a");
    let mut wake_b = store.cancel_wakeup("b");
    store.insert(&new_run("r", "a")).await.unwrap();
    store.request_cancel("r").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), wake_a.notified())
        .await
        .expect("replica a is woken");
    assert_eq!(store.cancel_requests("a").await.unwrap(), ["r"]);
    // b may see a wake-up for everyone (a PostgreSQL listener connecting
    // wakes all), but its poll finds nothing.
    let _ = tokio::time::timeout(Duration::from_millis(100), wake_b.notified()).await;
    assert!(store.cancel_requests("b").await.unwrap().is_empty());
}

async fn expired_lease_is_interrupted_by_another_replica(b: Backend) {
    let db = Db::new(b);
    let (a, other) = (db.open().await, db.open().await);
    a.insert(&new_run("r", "a")).await.unwrap();
    assert!(other.interrupt_expired("b").await.unwrap().is_empty());

    // a stops renewing; the lease (10 s) runs out.
    db.clock.advance(10_001);
    assert_eq!(other.interrupt_expired("b").await.unwrap(), ["r"]);
    let r = other.get("r").await.unwrap().unwrap();
    assert_eq!(r.state, RunState::Interrupted);
    assert_eq!(r.finished_ms, Some(ManualClock::START + 10_001));
    let error = r.error.unwrap();
    assert_eq!(error["kind"], "host");
    assert_eq!(error["replica"], "a");
    assert_eq!(error["interrupted_by"], "b");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("replica `a` stopped renewing"),
        "{message}"
    );

    // a comes back: its late result is refused and its heartbeat no longer
    // holds the run, so it knows to stop the task.
    assert!(
        !a.finish("r", FinalState::Completed, Some(&json!(1)), None, None)
            .await
            .unwrap()
    );
    assert!(a.renew_leases("a").await.unwrap().is_empty());
    assert!(other.interrupt_expired("b").await.unwrap().is_empty());
}

async fn renewed_leases_are_not_interrupted(b: Backend) {
    let db = Db::new(b);
    let (a, other) = (db.open().await, db.open().await);
    a.insert(&new_run("r1", "a")).await.unwrap();
    a.insert(&new_run("r2", "a")).await.unwrap();
    other.insert(&new_run("s", "b")).await.unwrap();
    for _ in 0..3 {
        db.clock.advance(6_000);
        let renewed: BTreeSet<String> = a.renew_leases("a").await.unwrap().into_iter().collect();
        assert_eq!(renewed, BTreeSet::from(["r1".into(), "r2".into()]));
        other.renew_leases("b").await.unwrap();
        assert!(other.interrupt_expired("b").await.unwrap().is_empty());
    }
    let r = a.get("r1").await.unwrap().unwrap();
    assert_eq!(r.lease_expires_ms, ManualClock::START + 18_000 + 10_000);
    assert_eq!(r.state, RunState::Running);
}

async fn restarted_replica_interrupts_its_own_runs(b: Backend) {
    let db = Db::new(b);
    let a = db.open().await;
    let other = db.open().await;
    a.insert(&new_run("r1", "a")).await.unwrap();
    a.insert(&new_run("r2", "a")).await.unwrap();
    a.insert(&new_run("done", "a")).await.unwrap();
    a.finish("done", FinalState::Completed, Some(&json!(1)), None, None)
        .await
        .unwrap();
    other.insert(&new_run("s", "b")).await.unwrap();
    a.close().await;
    drop(a);

    // a restarts, with a new handle, before its leases expire.
    let a = db.open().await;
    let ids: BTreeSet<String> = a.interrupt_own("a").await.unwrap().into_iter().collect();
    assert_eq!(ids, BTreeSet::from(["r1".into(), "r2".into()]));
    let r1 = other.get("r1").await.unwrap().unwrap();
    assert_eq!(r1.state, RunState::Interrupted);
    let message = r1.error.unwrap()["message"].as_str().unwrap().to_string();
    assert!(message.contains("replica `a` restarted"), "{message}");
    assert_eq!(
        a.get("done").await.unwrap().unwrap().state,
        RunState::Completed
    );
    assert_eq!(a.get("s").await.unwrap().unwrap().state, RunState::Running);
    assert!(a.interrupt_own("a").await.unwrap().is_empty());
}

async fn retention_by_age_keeps_running_and_recent_runs(b: Backend) {
    let db = Db::new(b);
    let store = db.open().await;
    store.insert(&new_run("running", "a")).await.unwrap();
    for id in ["old1", "old2", "recent"] {
        store.insert(&new_run(id, "a")).await.unwrap();
        store
            .append_event(id, &json!({"event": "spawned"}))
            .await
            .unwrap();
        store
            .finish(id, FinalState::Completed, Some(&json!(id)), None, None)
            .await
            .unwrap();
        db.clock.advance(1_000);
    }
    // Finished at START, +1 s, +2 s; now +3 s; keep the last 1.5 s.
    let pruned = store
        .prune(Retention {
            max_age: Some(Duration::from_millis(1_500)),
            max_bytes: None,
        })
        .await
        .unwrap();
    assert_eq!((pruned.by_age, pruned.by_size), (2, 0));
    let left: BTreeSet<String> = store
        .list(100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, BTreeSet::from(["running".into(), "recent".into()]));
    assert!(
        store.events("old1", 0, 100).await.unwrap().is_empty(),
        "events go with their run"
    );
    assert_eq!(store.events("recent", 0, 100).await.unwrap().len(), 1);

    // The running run is kept however old it is.
    db.clock.advance(1_000_000);
    store
        .prune(Retention {
            max_age: Some(Duration::ZERO),
            max_bytes: None,
        })
        .await
        .unwrap();
    let left: Vec<String> = store
        .list(100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, ["running"]);
}

async fn retention_by_bytes_deletes_the_oldest_first(b: Backend) {
    let db = Db::new(b);
    let store = db.open().await;
    let mut big = new_run("running", "a");
    big.keep_input = true;
    big.input = json!("x".repeat(10_000));
    store.insert(&big).await.unwrap();
    let result = json!("y".repeat(98)); // 100 bytes of JSON text
    for id in ["f1", "f2", "f3", "f4"] {
        store.insert(&new_run(id, "a")).await.unwrap();
        store
            .finish(id, FinalState::Completed, Some(&result), None, None)
            .await
            .unwrap();
        db.clock.advance(10);
    }
    assert_eq!(store.get("f1").await.unwrap().unwrap().stored_bytes, 100);
    let pruned = store
        .prune(Retention {
            max_age: Some(Duration::from_secs(3600)),
            max_bytes: Some(250),
        })
        .await
        .unwrap();
    assert_eq!((pruned.by_age, pruned.by_size), (0, 2));
    let left: Vec<String> = store
        .list(100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        left,
        ["f4", "f3", "running"],
        "the newest that fit, and the running run"
    );
    // Exactly at the budget: nothing more goes.
    let pruned = store
        .prune(Retention {
            max_age: None,
            max_bytes: Some(200),
        })
        .await
        .unwrap();
    assert_eq!(pruned.by_size, 0);
    let pruned = store
        .prune(Retention {
            max_age: None,
            max_bytes: Some(0),
        })
        .await
        .unwrap();
    assert_eq!(pruned.by_size, 2);
    assert!(store.get("running").await.unwrap().is_some());
}

async fn events_come_back_in_order(b: Backend) {
    let db = Db::new(b);
    let store = db.open().await;
    store.insert(&new_run("r", "a")).await.unwrap();
    for i in 1..=5u64 {
        let seq = store
            .append_event("r", &json!({"event": "progress", "i": i}))
            .await
            .unwrap();
        assert_eq!(seq, i);
        db.clock.advance(1);
    }
    let all = store.events("r", 0, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(all[2].event, json!({"event": "progress", "i": 3}));
    assert_eq!(all[2].at_ms, ManualClock::START + 2);
    assert_eq!(all[2].run_id, "r");
    let page = store.events("r", 3, 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].seq, 4);
    assert!(store.events("r", 5, 10).await.unwrap().is_empty());

    let r = store.get("r").await.unwrap().unwrap();
    assert_eq!(r.events, 5);
    let e = store.append_event("nope", &json!({})).await.unwrap_err();
    assert!(
        matches!(e, StoreError::NoSuchRun { ref id, .. } if id == "nope"),
        "{e}"
    );
    assert_eq!(e.kind(), toka_spec::outcome::ErrorKind::NotFound);
    // Events may follow the end (a `completed` event after finish).
    store
        .finish("r", FinalState::Completed, None, None, None)
        .await
        .unwrap();
    assert_eq!(
        store
            .append_event("r", &json!({"event": "completed"}))
            .await
            .unwrap(),
        6
    );
}

async fn concurrent_appends_from_two_replicas_get_distinct_seqs(b: Backend) {
    let db = Db::new(b);
    let (a, other) = (db.open().await, db.open().await);
    a.insert(&new_run("r", "a")).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        for store in [a.clone(), other.clone()] {
            tasks.push(tokio::spawn(async move {
                store.append_event("r", &json!({"i": i})).await.unwrap()
            }));
        }
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=40).collect::<Vec<u64>>());
    assert_eq!(a.events("r", 0, 100).await.unwrap().len(), 40);
}

async fn two_handles_see_each_others_runs(b: Backend) {
    let db = Db::new(b);
    let (a, other) = (db.open().await, db.open().await);
    a.insert(&new_run("from-a", "a")).await.unwrap();
    db.clock.advance(1);
    other.insert(&new_run("from-b", "b")).await.unwrap();
    a.progress("from-a", 0.5, "half").await.unwrap();
    for store in [&a, &other] {
        let ids: Vec<String> = store
            .list(10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["from-b", "from-a"]);
        assert_eq!(store.get("from-a").await.unwrap().unwrap().message, "half");
    }
    assert!(
        other
            .finish(
                "from-a",
                FinalState::Failed,
                None,
                Some(&json!({"kind": "trap"})),
                None
            )
            .await
            .unwrap()
    );
    assert_eq!(
        a.get("from-a").await.unwrap().unwrap().state,
        RunState::Failed
    );
}

async fn reopening_keeps_everything(b: Backend) {
    let db = Db::new(b);
    let store = db.open().await;
    store.insert(&new_run("r", "a")).await.unwrap();
    store
        .append_event("r", &json!({"event": "spawned"}))
        .await
        .unwrap();
    store
        .finish(
            "r",
            FinalState::Completed,
            Some(&json!({"ok": true})),
            None,
            None,
        )
        .await
        .unwrap();
    let before = store.get("r").await.unwrap().unwrap();
    store.close().await;
    drop(store);
    let store = db.open().await;
    assert_eq!(store.get("r").await.unwrap().unwrap(), before);
    assert_eq!(store.events("r", 0, 10).await.unwrap().len(), 1);
}

async fn a_newer_schema_is_refused(b: Backend) {
    let db = Db::new(b);
    let store = db.open().await;
    store.close().await;
    drop(store);
    db.plant_schema_version(toka_store::SCHEMA_VERSION + 1)
        .await;
    let e = db
        .try_open()
        .await
        .err()
        .expect("a newer schema is refused");
    match &e {
        StoreError::NewerSchema {
            found, supported, ..
        } => {
            assert_eq!(*found, toka_store::SCHEMA_VERSION + 1);
            assert_eq!(*supported, toka_store::SCHEMA_VERSION);
        }
        other => panic!("{other}"),
    }
    let message = e.to_string();
    assert!(
        message.contains("newer than this toka supports"),
        "{message}"
    );
    assert!(message.contains(&db.url), "names the store: {message}");
}
