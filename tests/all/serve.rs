//! `toka-host serve` on a loopback port, driven with curl: endpoints,
//! errors, hardening, the audit log, live hot-swap, busy and drain.

use crate::harness::{plugin, repo, shared_cache};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) struct Server {
    pub(crate) child: Child,
    base: String,
    log: Arc<Mutex<String>>,
    /// Where the default SQLite run store lives (each server its own).
    _state: tempfile::TempDir,
}

impl Server {
    fn start(manifests: &Path, extra: &[&str]) -> Server {
        Server::start_with_env(manifests, extra, &[])
    }

    /// Starts `serve` on a free loopback port with `env` added.
    pub(crate) fn start_with_env(manifests: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn(manifests, extra, env, None)
    }

    /// Starts `serve` allowed at most `nofile` open file descriptors
    /// (`ulimit -n`).
    pub(crate) fn start_limited(manifests: &Path, extra: &[&str], nofile: u64) -> Server {
        Server::spawn(manifests, extra, &[], Some(nofile))
    }

    fn spawn(
        manifests: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        nofile: Option<u64>,
    ) -> Server {
        crate::harness::warm_shared_cache();
        let state = tempfile::tempdir().expect("state dir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_toka-host"));
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--manifests"])
            .arg(manifests)
            .args(extra)
            .current_dir(repo())
            .env("XDG_STATE_HOME", state.path())
            .env_remove("DATABASE_URL")
            .envs(env.iter().copied())
            .env("TOKA_CACHE_DIR", shared_cache())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(n) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs in
            // the child before exec.
            unsafe {
                cmd.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(url) = line.split("on http://").nth(1) {
                        let _ = tx.send(url.to_string());
                    }
                    if let Ok(mut l) = log.lock() {
                        l.push_str(&line);
                        l.push('\n');
                    }
                }
            });
        }
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "serve did not start: {}",
                    log.lock().map(|l| l.clone()).unwrap_or_default()
                )
            });
        Server {
            child,
            base: format!("http://{addr}"),
            log,
            _state: state,
        }
    }

    /// (status, body) of a request made with curl.
    pub(crate) fn curl(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[&str],
    ) -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-s",
            "--max-time",
            "20",
            "-X",
            method,
            "-w",
            "\n%{http_code}",
        ]);
        for h in headers {
            cmd.args(["-H", h]);
        }
        if let Some(b) = body {
            cmd.args(["-H", "content-type: application/json", "--data-binary", b]);
        }
        let out = cmd
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    pub(crate) fn json(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let (code, text) = self.curl(method, path, body, &[]);
        (
            code,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A manifests directory with `greeter` (hello.wasm, version `version`) and
/// `spinner` (misbehave.wasm with a short timeout).
fn dir_with_greeter(version: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write_greeter(dir.path(), version);
    std::fs::write(
        dir.path().join("spinner.yaml"),
        format!(
            "metadata: {{ name: spinner, version: 1.0.0, description: spins }}\n\
             spec:\n  executable: {{ type: component, path: {} }}\n\
             \x20 security:\n    sandbox: {{ timeout: 300ms }}\n",
            plugin("misbehave")
        ),
    )
    .expect("write spinner");
    dir
}

/// Writes greeter.yaml atomically (write, then rename), like a deploy.
fn write_greeter(dir: &Path, version: &str) {
    let text = format!(
        "metadata: {{ name: greeter, version: {version}, description: greets }}\n\
         spec:\n  executable: {{ type: component, path: {} }}\n\
         \x20 parameters: {{ type: object, properties: {{ name: {{ type: string }} }}, required: [name] }}\n",
        plugin("hello")
    );
    let tmp = dir.join(".greeter.yaml.tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, dir.join("greeter.yaml")).expect("rename");
}

#[test]
fn endpoints_errors_hardening_and_audit() {
    let audit = tempfile::NamedTempFile::new().expect("audit file");
    let audit_path = audit.path().display().to_string();
    let manifests: PathBuf = repo().join("manifests");
    let s = Server::start(&manifests, &["--audit-log", &audit_path]);

    assert_eq!(s.json("GET", "/health", None).0, 200);
    let (code, tools) = s.json("GET", "/v1/tools", None);
    assert_eq!(code, 200);
    let hello = tools
        .as_array()
        .and_then(|a| a.iter().find(|t| t["name"] == "hello"))
        .expect("hello listed");
    assert_eq!(hello["input_schema"]["required"][0], "name");

    let (code, v) = s.json(
        "POST",
        "/v1/tools/hello/invoke",
        Some(r#"{"name":"a secret name"}"#),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["output"]["greeting"], "Hello, a secret name!");
    assert_eq!(v["version"], "0.1.0");
    assert!(v["usage"]["fuel_consumed"].as_u64().expect("fuel") > 0);

    assert_eq!(s.json("POST", "/v1/tools/nope/invoke", Some("{}")).0, 404);
    let (code, v) = s.json("POST", "/v1/tools/hello/invoke", Some("{not json"));
    assert_eq!(
        (code, v["error"]["kind"].as_str()),
        (400, Some("invalid-json"))
    );
    assert_eq!(s.json("POST", "/v1/tools/hello/invoke", Some("{}")).0, 400);
    let (code, v) = s.json(
        "POST",
        "/v1/tools/file-reader/invoke",
        Some(r#"{"path":"notes.txt"}"#),
    );
    assert_eq!(
        (code, v["error"]["kind"].as_str()),
        (403, Some("denied")),
        "{v}"
    );
    let (code, _) = s.curl("GET", "/health", None, &["Host: attacker.example:8080"]);
    assert_eq!(code, 421, "DNS rebinding: foreign Host refused");
    let big = tempfile::NamedTempFile::new().expect("body file");
    std::fs::write(
        big.path(),
        format!(r#"{{"name":"{}"}}"#, "x".repeat(2 << 20)),
    )
    .expect("write");
    let big = format!("@{}", big.path().display());
    assert_eq!(
        s.curl("POST", "/v1/tools/hello/invoke", Some(&big), &[]).0,
        413
    );

    let (code, status) = s.json("GET", "/status", None);
    assert_eq!(code, 200);
    assert!(
        status["tools"].as_array().is_some_and(|t| t.len() == 10),
        "{status}"
    );
    assert_eq!(status["in_flight"], 0);

    let lines = std::fs::read_to_string(audit.path()).expect("audit log");
    assert!(
        !lines.contains("secret"),
        "the audit log holds sizes, not inputs:\n{lines}"
    );
    let entries: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert!(
        entries
            .iter()
            .any(|e| e["tool"] == "hello" && e["outcome"] == "ok" && e["input_bytes"] == 24)
    );
    assert!(
        entries
            .iter()
            .any(|e| e["tool"] == "file-reader" && e["outcome"] == "denied")
    );
}

#[test]
fn limits_come_back_as_structured_errors() {
    let dir = dir_with_greeter("1.0.0");
    let s = Server::start(dir.path(), &[]);
    let (code, v) = s.json("POST", "/v1/tools/spinner/invoke", Some(r#"{"do":"spin"}"#));
    assert_eq!(code, 504, "{v}");
    assert_eq!(v["error"]["kind"], "limit-exceeded");
    assert_eq!(v["error"]["limit"], "timeout");
    let (code, v) = s.json("POST", "/v1/tools/spinner/invoke", Some(r#"{"do":"fail"}"#));
    assert_eq!(
        (code, v["error"]["kind"].as_str()),
        (422, Some("tool-error"))
    );
    assert_eq!(
        s.json("POST", "/v1/tools/greeter/invoke", Some(r#"{"name":"x"}"#))
            .0,
        200
    );
}

#[test]
fn hot_swap_under_load_then_broken_update_then_removal() {
    let dir = dir_with_greeter("1.0.0");
    let s = Arc::new(Server::start(dir.path(), &[]));
    assert_eq!(
        s.json("POST", "/v1/tools/greeter/invoke", Some(r#"{"name":"a"}"#))
            .1["version"],
        "1.0.0"
    );

    // A client calls in a loop while the new version lands.
    let results = Arc::new(Mutex::new(Vec::<(Instant, u16, String)>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let (s, results, stop) = (s.clone(), results.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (code, v) = s.json("POST", "/v1/tools/greeter/invoke", Some(r#"{"name":"b"}"#));
                let version = v["version"].as_str().unwrap_or("").to_string();
                if let Ok(mut r) = results.lock() {
                    r.push((Instant::now(), code, version));
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    write_greeter(dir.path(), "2.0.0");
    let landed = Instant::now();
    std::thread::sleep(Duration::from_millis(2000));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    client.join().expect("client");
    let results = results.lock().expect("results").clone();
    assert!(results.len() > 20, "only {} calls", results.len());
    assert!(
        results.iter().all(|(_, code, _)| *code == 200),
        "failed calls: {results:?}"
    );
    assert!(results.iter().all(|(_, _, v)| v == "1.0.0" || v == "2.0.0"));
    let first_new = results
        .iter()
        .find(|(_, _, v)| v == "2.0.0")
        .map(|(t, _, _)| t.duration_since(landed))
        .expect("the new version was served");
    assert!(
        first_new < Duration::from_secs(1),
        "new version after {first_new:?}"
    );
    let last_old = results
        .iter()
        .rposition(|(_, _, v)| v == "1.0.0")
        .unwrap_or(0);
    let first_new_index = results
        .iter()
        .position(|(_, _, v)| v == "2.0.0")
        .unwrap_or(0);
    assert!(
        last_old < first_new_index,
        "no old answer after the first new one"
    );

    // A broken update leaves 2.0.0 serving and says why.
    std::fs::write(dir.path().join("greeter.yaml"), "metadata: [broken").expect("break");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, status) = s.json("GET", "/status", None);
        if status["errors"].as_array().is_some_and(|e| !e.is_empty()) {
            assert!(
                status["errors"][0]["manifest"]
                    .as_str()
                    .unwrap_or("")
                    .ends_with("greeter.yaml")
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the error never showed in /status"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, v) = s.json("POST", "/v1/tools/greeter/invoke", Some(r#"{"name":"c"}"#));
    assert_eq!((code, v["version"].as_str()), (200, Some("2.0.0")));
    assert!(s.log().contains("keeps serving"), "{}", s.log());

    // A removed manifest removes the tool.
    std::fs::remove_file(dir.path().join("greeter.yaml")).expect("remove");
    let deadline = Instant::now() + Duration::from_secs(5);
    while s
        .json("POST", "/v1/tools/greeter/invoke", Some(r#"{"name":"d"}"#))
        .0
        != 404
    {
        assert!(
            Instant::now() < deadline,
            "the removed tool is still served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        s.json("POST", "/v1/tools/spinner/invoke", Some(r#"{"do":"ok"}"#))
            .0,
        200
    );
}

#[test]
fn busy_gets_503_and_sigterm_drains() {
    let dir = dir_with_greeter("1.0.0");
    std::fs::write(
        dir.path().join("slow.yaml"),
        format!(
            "metadata: {{ name: slow, version: 1.0.0, description: spins for a while }}\n\
             spec:\n  executable: {{ type: component, path: {} }}\n\
             \x20 security:\n    sandbox: {{ timeout: 2s, fuel: 100000000000 }}\n",
            plugin("misbehave")
        ),
    )
    .expect("write slow");
    let mut s = Server::start(dir.path(), &["--max-concurrent", "1"]);
    let slow = {
        let base = s.base.clone();
        std::thread::spawn(move || {
            Command::new("curl")
                .args([
                    "-s",
                    "--max-time",
                    "20",
                    "-w",
                    "\n%{http_code}",
                    "-X",
                    "POST",
                    "-H",
                    "content-type: application/json",
                    "--data-binary",
                ])
                .arg(r#"{"do":"spin"}"#)
                .arg(format!("{base}/v1/tools/slow/invoke"))
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let (code, _) = s.curl(
        "POST",
        "/v1/tools/greeter/invoke",
        Some(r#"{"name":"x"}"#),
        &[],
    );
    let (_, headers) = {
        let out = Command::new("curl")
            .args([
                "-s",
                "-D",
                "-",
                "-o",
                "/dev/null",
                "-X",
                "POST",
                "-H",
                "content-type: application/json",
                "--data-binary",
                r#"{"name":"x"}"#,
            ])
            .arg(format!("{}/v1/tools/greeter/invoke", s.base))
            .output()
            .expect("curl");
        (0, String::from_utf8_lossy(&out.stdout).to_lowercase())
    };
    assert_eq!(code, 503, "the second call while one runs is turned away");
    assert!(headers.contains("retry-after: 1"), "{headers}");

    // SIGTERM while the slow call runs: it still gets its answer.
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(s.child.id() as i32, libc::SIGTERM);
    }
    let slow = slow.join().expect("slow client");
    assert!(slow.ends_with("504"), "the call in flight finished: {slow}");
    let status = s.child.wait().expect("server exits");
    assert!(status.success(), "{status:?}");
    assert!(s.log().contains("draining"), "{}", s.log());
}

#[test]
fn events_stream_and_metrics() {
    let dir = dir_with_greeter("1.0.0");
    let s = Server::start(dir.path(), &[]);
    let listener = {
        let url = format!("{}/v1/events", s.base);
        std::thread::spawn(move || {
            Command::new("curl")
                .args(["-s", "-N", "--max-time", "4"])
                .arg(url)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        s.json("POST", "/v1/tools/greeter/invoke", Some(r#"{"name":"e"}"#))
            .0,
        200
    );
    assert_eq!(
        s.json("POST", "/v1/tools/spinner/invoke", Some(r#"{"do":"spin"}"#))
            .0,
        504
    );
    write_greeter(dir.path(), "3.0.0");
    std::thread::sleep(Duration::from_millis(1000));
    std::fs::write(dir.path().join("broken.yaml"), "metadata: [").expect("broken");
    std::fs::remove_file(dir.path().join("spinner.yaml")).expect("remove");
    let events = listener.join().expect("listener");
    for kind in [
        "call-started",
        "call-finished",
        "tool-replaced",
        "tool-failed",
        "tool-removed",
    ] {
        assert!(
            events.contains(&format!("event: {kind}")),
            "no {kind} in:\n{events}\nserver log:\n{}",
            s.log()
        );
    }
    assert!(events.contains("\"version\":\"3.0.0\""), "{events}");

    // Names no tool has are the client's: counted under one label, not one
    // series each (the metrics would otherwise grow with every name sent).
    for i in 0..20 {
        let path = format!("/v1/tools/no-such-tool-{i}/invoke");
        assert_eq!(s.json("POST", &path, Some("{}")).0, 404);
    }

    let (code, text) = s.curl("GET", "/metrics", None, &[]);
    assert_eq!(code, 200);
    assert!(!text.contains("no-such-tool"), "{text}");
    for line in [
        "toka_calls_total{tool=\"(unknown)\",outcome=\"not-found\"} 20",
        "toka_calls_total{tool=\"greeter\",outcome=\"ok\"} 1",
        "toka_calls_total{tool=\"spinner\",outcome=\"limit-exceeded\"} 1",
        "toka_limits_hit_total{limit=\"timeout\"} 1",
        // Refusals are answers too: 2 calls and the 20 unknown names.
        "toka_call_duration_seconds_count 22",
        "toka_calls_in_flight 0",
    ] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
}

#[test]
fn non_loopback_needs_tokens() {
    // Without tokens a public address is refused (tokens.rs covers
    // --auth-keys); --insecure-no-auth overrides it, loudly.
    let run = crate::harness::toka(["serve", "--addr", "0.0.0.0:0"]).run();
    run.assert_code(125)
        .assert_stderr_has("without tokens")
        .assert_stderr_has("--insecure-no-auth");
    let mut child = Command::new(env!("CARGO_BIN_EXE_toka-host"))
        .args([
            "serve",
            "--addr",
            "0.0.0.0:0",
            "--insecure-no-auth",
            "--state",
            "memory",
        ])
        .current_dir(repo())
        .env("TOKA_CACHE_DIR", shared_cache())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut warned = false;
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("WITHOUT TOKENS") {
                warned = true;
            }
            if line.contains("serving") {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(warned, "--insecure-no-auth says so loudly");
}

#[test]
fn replacing_the_wasm_file_swaps_the_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = dir.path().join("tool.wasm");
    std::fs::copy(plugin("hello"), &wasm).expect("copy");
    std::fs::write(
        dir.path().join("swapper.yaml"),
        "metadata: { name: swapper, version: 1.0.0, description: swaps }\n\
         spec: { executable: { type: component, path: tool.wasm } }\n",
    )
    .expect("manifest");
    let s = Server::start(dir.path(), &[]);
    let (code, v) = s.json("POST", "/v1/tools/swapper/invoke", Some(r#"{"name":"a"}"#));
    assert_eq!(
        (code, v["output"]["greeting"].as_str()),
        (200, Some("Hello, a!"))
    );
    let old_digest = v["digest"].as_str().expect("digest").to_string();

    // Deploy new code under the same manifest: write aside, rename over.
    let staged = dir.path().join(".tool.wasm.new");
    std::fs::copy(plugin("noop"), &staged).expect("stage");
    std::fs::rename(&staged, &wasm).expect("rename");
    let landed = Instant::now();
    loop {
        let (code, v) = s.json("POST", "/v1/tools/swapper/invoke", Some(r#"{"name":"a"}"#));
        assert_eq!(code, 200, "{v}");
        if v["digest"].as_str() != Some(old_digest.as_str()) {
            assert_eq!(v["output"], serde_json::json!({}), "the new code answers");
            break;
        }
        assert!(
            landed.elapsed() < Duration::from_secs(1),
            "the new code was not served within a second"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, status) = s.json("GET", "/status", None);
    assert_ne!(status["tools"][0]["digest"], old_digest.as_str());
}

/// One call path: a subprocess tool's input is checked against its schema
/// under `serve` as under `run` (it used to be checked for wasm tools only).
#[test]
fn subprocess_tool_input_is_checked_against_its_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Parameters arrive as `--name VALUE`; printf is a bash builtin, so no
    // program needs to be executed.
    let script = b"printf '{\"name\":\"%s\"}' \"$2\"\n";
    std::fs::write(dir.path().join("echo.sh"), script).expect("script");
    std::fs::write(
        dir.path().join("echo.yaml"),
        format!(
            "metadata: {{ name: echo, version: 1.0.0, description: echoes its input }}\n\
             spec:\n  executable: {{ type: shell, path: echo.sh, sha256: {}, output: json }}\n\
             \x20 parameters: {{ type: object, properties: {{ name: {{ type: string }} }}, required: [name] }}\n",
            toka_spec::manifest::Sha256Hex::of(script)
        ),
    )
    .expect("manifest");
    let s = Server::start(dir.path(), &["--allow-weaker-sandbox"]);
    let (code, v) = s.json("POST", "/v1/tools/echo/invoke", Some("{}"));
    assert_eq!(
        (code, v["error"]["kind"].as_str()),
        (400, Some("invalid-input")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`name`")),
        "{v}"
    );
    let (code, v) = s.json("POST", "/v1/tools/echo/invoke", Some(r#"{"name": 3}"#));
    assert_eq!(
        (code, v["error"]["kind"].as_str()),
        (400, Some("invalid-input")),
        "{v}"
    );
    let (code, v) = s.json("POST", "/v1/tools/echo/invoke", Some(r#"{"name":"Ada"}"#));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["output"]["name"], "Ada", "{v}");
}
