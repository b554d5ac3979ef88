//! Agent runs that survive restarts and span replicas, with a real SQLite
//! file and a real PostgreSQL server (Debian's, started by the tests as an
//! unprivileged user on a free loopback port): runs seen and cancelled
//! across replicas, a replica killed mid-run leaves its run `interrupted`,
//! finished runs survive restarts, and the database stopped and restarted
//! under load loses no finished result.

use crate::harness::{plugin, toka};
use crate::serve::Server;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use toka_testkit::PgServer;

/// A manifests directory with `wf` (the scriptable workflow) and `hello`.
fn manifests() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("wf.yaml"),
        format!(
            "metadata: {{ name: wf, version: 1.0.0, description: a scripted workflow }}\n\
             spec:\n  executable: {{ type: workflow, path: {} }}\n\
             \x20 security: {{ sandbox: {{ timeout: 120s, fuel: 100000000000000 }} }}\n",
            plugin("wf-script")
        ),
    )
    .expect("wf");
    std::fs::write(
        dir.path().join("hello.yaml"),
        format!(
            "metadata: {{ name: hello, version: 1.0.0, description: greets }}\n\
             spec:\n  executable: {{ type: component, path: {} }}\n",
            plugin("hello")
        ),
    )
    .expect("hello");
    dir
}

fn replica(dir: &Path, state: &str, name: &str) -> Server {
    Server::start_with_env(
        dir,
        &["--state", state, "--replica-id", name, "--lease", "2s"],
        &[],
    )
}

fn start(s: &Server, steps: Value) -> String {
    let (code, v) = s.json(
        "POST",
        "/v1/agents",
        Some(&json!({ "workflow": "wf", "input": { "steps": steps } }).to_string()),
    );
    assert_eq!(code, 202, "{v}");
    v["id"].as_str().expect("id").to_string()
}

/// Polls `GET /v1/agents/{id}` on `s` until `until` holds (or 20 s pass).
fn poll(s: &Server, id: &str, until: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, v) = s.json("GET", &format!("/v1/agents/{id}"), None);
        if code == 200 && until(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {code} {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn finished_runs_survive_a_restart_with_sqlite() {
    let dir = manifests();
    let state = tempfile::tempdir().expect("state");
    let url = format!("sqlite:{}", state.path().join("runs.db").display());
    let s = replica(dir.path(), &url, "one");
    let done = start(&s, json!([{ "progress": 0.5 }]));
    poll(&s, &done, |v| v["state"] == "completed");
    // And one that is still running when the replica dies.
    let running = start(&s, json!([{ "progress": 0.2 }, { "spin": true }]));
    poll(&s, &running, |v| v["progress"] == 0.2);
    drop(s); // SIGKILL
    let s = replica(dir.path(), &url, "one");
    let v = poll(&s, &done, |_| true);
    assert_eq!(v["state"], "completed", "{v}");
    assert_eq!(v["output"]["results"][0]["ok"], 0.5, "the result too: {v}");
    // The same replica, started again, knows it did not finish that one.
    let v = poll(&s, &running, |v| v["state"] != "running");
    assert_eq!(v["state"], "interrupted", "{v}");
    let (code, list) = s.json("GET", "/v1/agents", None);
    assert_eq!(code, 200);
    assert!(list.as_array().is_some_and(|l| l.len() == 2), "{list}");
}

#[test]
fn a_corrupt_or_unreachable_store_is_refused_at_start() {
    let dir = manifests();
    let state = tempfile::tempdir().expect("state");
    let file = state.path().join("runs.db");
    std::fs::write(&file, vec![0x5a; 8192]).expect("garbage");
    let m = dir.path().display().to_string();
    toka([
        "serve",
        "--manifests",
        &m,
        "--state",
        &format!("sqlite:{}", file.display()),
    ])
    .run()
    .assert_code(125)
    .assert_stderr_has(&file.display().to_string());
    let r = toka([
        "serve",
        "--manifests",
        &m,
        "--state",
        "postgres://toka:s3cret-pw@127.0.0.1:1/runs",
    ])
    .run();
    r.assert_code(125).assert_stderr_has("127.0.0.1:1");
    assert!(
        !r.stderr.contains("s3cret-pw"),
        "the password is hidden: {}",
        r.stderr
    );
}

#[test]
fn replicas_share_runs_on_postgres() {
    let pg = PgServer::start();
    let url = pg.create_database("replicas");
    let dir = manifests();
    let a = replica(dir.path(), &url, "a");
    let b = replica(dir.path(), &url, "b");

    // Any replica answers for any run.
    let id = start(&a, json!([{ "progress": 0.3 }, { "spin": true }]));
    let v = poll(&b, &id, |v| v["progress"] == 0.3);
    assert_eq!(
        (v["state"].as_str(), v["replica"].as_str()),
        (Some("running"), Some("a")),
        "{v}"
    );
    let (code, list) = b.json("GET", "/v1/agents", None);
    assert_eq!(code, 200);
    assert!(
        list.as_array()
            .is_some_and(|l| l.iter().any(|r| r["id"] == id.as_str()))
    );

    // A cancel on the other replica reaches the one that runs it.
    let cpu_before = crate::harness::cpu_seconds(a.child.id(), Duration::from_millis(500));
    assert!(cpu_before > 0.3, "it spins on replica a: {cpu_before}");
    let (code, v) = b.json("DELETE", &format!("/v1/agents/{id}"), None);
    assert_eq!(code, 200, "{v}");
    let v = poll(&b, &id, |v| v["state"] != "running");
    assert_eq!(v["state"], "cancelled", "{v}");
    std::thread::sleep(Duration::from_millis(200));
    let cpu_after = crate::harness::cpu_seconds(a.child.id(), Duration::from_millis(800));
    assert!(
        cpu_after < 0.2,
        "the sandbox on replica a stopped: {cpu_after}"
    );

    // A replica killed mid-run: the other marks its run interrupted once
    // the lease (2s) runs out.
    let lost = start(&a, json!([{ "progress": 0.4 }, { "spin": true }]));
    poll(&b, &lost, |v| v["progress"] == 0.4);
    let killed = Instant::now();
    drop(a); // SIGKILL
    let v = poll(&b, &lost, |v| v["state"] != "running");
    assert_eq!(v["state"], "interrupted", "{v}");
    assert!(
        killed.elapsed() < Duration::from_secs(8),
        "interrupted within the lease and a sweep: {:?}",
        killed.elapsed()
    );
}

#[test]
fn the_database_restarting_under_load_loses_no_finished_result() {
    let mut pg = PgServer::start();
    let url = pg.create_database("outage");
    let dir = manifests();
    let s = replica(dir.path(), &url, "solo");
    // Runs that finish while the database is down.
    let ids: Vec<String> = (0..6)
        .map(|i| {
            start(
                &s,
                json!([{ "progress": 0.5 }, { "sleep_ms": 1500 + 100 * i }]),
            )
        })
        .collect();
    pg.stop();
    // Agent endpoints say so; tool calls keep working.
    let (code, v) = s.json("GET", &format!("/v1/agents/{}", ids[0]), None);
    assert_eq!(code, 503, "{v}");
    assert_eq!(v["error"]["kind"], "unavailable", "{v}");
    let (code, v) = s.json("POST", "/v1/tools/hello/invoke", Some(r#"{"name":"x"}"#));
    assert_eq!(code, 200, "{v}");
    let (code, _) = s.json(
        "POST",
        "/v1/agents",
        Some(r#"{"workflow":"wf","input":{"steps":[]}}"#),
    );
    assert_eq!(code, 503, "a run that cannot be recorded does not start");
    // `/status` says why within a poll of the store; `/ready` stays ready,
    // since tools still serve.
    let status = wait_for_status(&s, |v| v["run_store_error"].is_string());
    assert!(
        status["run_store_error"]
            .as_str()
            .is_some_and(|e| e.contains("postgres")),
        "{status}"
    );
    assert_eq!(s.json("GET", "/ready", None).0, 200);
    // Down for longer than the 2 s lease: coming back, the replica renews
    // its own runs before it sweeps expired ones, so none is interrupted.
    std::thread::sleep(Duration::from_secs(3));
    pg.start_again();
    wait_for_status(&s, |v| v["run_store_error"].is_null());
    for id in &ids {
        let v = poll(&s, id, |v| v["state"] != "running");
        assert_eq!(v["state"], "completed", "{v}");
        assert_eq!(v["output"]["results"][1]["ok"], "slept", "{v}");
    }
}

/// Polls `GET /status` on `s` until `until` holds (or 20 s pass).
fn wait_for_status(s: &Server, until: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, v) = s.json("GET", "/status", None);
        if code == 200 && until(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "/status: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
