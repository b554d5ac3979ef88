//! Capability tokens and the hardened door of `serve`, against a real
//! server on loopback: `token keygen/issue/attenuate/inspect/revoke`, 401s
//! and 403s, rotation and revocation without a restart, per-token rate
//! limits, browser-safe checks, refusing to be open, a connection flood,
//! and path-scoped grants.

use crate::harness::{plugin, repo, toka};
use crate::serve::Server;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// A key directory with one key, and tokens issued from it.
struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn new() -> Keys {
        let dir = tempfile::tempdir().expect("tempdir");
        toka([
            "token",
            "keygen",
            "--keys",
            &dir.path().join("keys").display().to_string(),
        ])
        .run()
        .assert_code(0)
        .assert_stdout_has("created key 1");
        Keys { dir }
    }

    fn keys(&self) -> String {
        self.dir.path().join("keys").display().to_string()
    }

    fn revocations(&self) -> String {
        self.dir.path().join("revoked").display().to_string()
    }

    /// `token issue` with `args` after the key directory.
    fn issue(&self, args: &[&str]) -> String {
        let mut all = vec!["token", "issue", "--keys"];
        let keys = self.keys();
        all.push(&keys);
        all.extend_from_slice(args);
        let r = toka(all).run();
        r.assert_code(0);
        r.stdout.trim().to_string()
    }

    /// Starts `serve` on `manifests` with tokens (and `extra` flags).
    fn serve(&self, manifests: &Path, extra: &[&str]) -> Server {
        std::fs::write(self.revocations(), "").expect("revocation file");
        let (keys, revocations) = (self.keys(), self.revocations());
        let mut flags = vec![
            "--auth-keys",
            keys.as_str(),
            "--revocations",
            revocations.as_str(),
        ];
        flags.extend_from_slice(extra);
        Server::start_with_env(manifests, &flags, &[])
    }
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

/// (status, body, headers) of a request with curl.
fn request(
    s: &Server,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[&str],
) -> (u16, String, String) {
    let mut cmd = std::process::Command::new("curl");
    cmd.args([
        "-s",
        "--max-time",
        "20",
        "-D",
        "/dev/stderr",
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
        .arg(format!("{}{path}", s.base()))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        body.to_string(),
        String::from_utf8_lossy(&out.stderr).to_lowercase(),
    )
}

fn manifests() -> std::path::PathBuf {
    repo().join("manifests")
}

#[test]
fn tokens_end_to_end() {
    let k = Keys::new();
    let hello = k.issue(&["--tool", "hello", "--subject", "ci-bot"]);
    let operator = k.issue(&["--tool", "*", "--subject", "operator"]);
    let audit = k.dir.path().join("audit.jsonl");
    let audit_flag = audit.display().to_string();
    let s = k.serve(&manifests(), &["--audit-log", &audit_flag]);

    // No token: 401 with the challenge and the metadata URL.
    let (code, body, headers) = request(&s, "GET", "/v1/tools", None, &[]);
    assert_eq!(code, 401, "{body}");
    assert!(
        headers.contains("www-authenticate: bearer")
            && headers.contains("resource_metadata=\"http://"),
        "{headers}"
    );
    // Health and readiness stay open for probes.
    assert_eq!(request(&s, "GET", "/health", None, &[]).0, 200);
    assert_eq!(request(&s, "GET", "/ready", None, &[]).0, 200);

    // A scoped token: its tool works, another is 403, the list is filtered.
    let (code, body, _) = request(&s, "GET", "/v1/tools", None, &[&bearer(&hello)]);
    assert_eq!(code, 200);
    let tools: serde_json::Value = serde_json::from_str(&body).expect("json");
    let names: Vec<&str> = tools
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["hello"], "only the token's tools are listed");
    let (code, body, _) = request(
        &s,
        "POST",
        "/v1/tools/hello/invoke",
        Some(r#"{"name":"Ada"}"#),
        &[&bearer(&hello)],
    );
    assert_eq!(code, 200, "{body}");
    let (code, body, _) = request(
        &s,
        "POST",
        "/v1/tools/date-validator/invoke",
        Some(r#"{"date":"2026-11-26"}"#),
        &[&bearer(&hello)],
    );
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("does not allow tool `date-validator`"),
        "{body}"
    );
    // The operator's endpoints need a token for every tool.
    assert_eq!(
        request(&s, "GET", "/status", None, &[&bearer(&hello)]).0,
        403
    );
    assert_eq!(
        request(&s, "GET", "/status", None, &[&bearer(&operator)]).0,
        200
    );
    assert_eq!(
        request(&s, "GET", "/metrics", None, &[&bearer(&operator)]).0,
        200
    );
    // Never in the URL.
    let (code, _, _) = request(
        &s,
        "GET",
        &format!("/v1/tools?access_token={hello}"),
        None,
        &[],
    );
    assert_eq!(code, 400);

    // Attenuation narrows, offline, and cannot widen.
    let both = k.issue(&[
        "--tool",
        "hello",
        "--tool",
        "date-validator",
        "--subject",
        "two",
    ]);
    let narrowed = toka(["token", "attenuate", &both, "--tool", "date-validator"]).run();
    narrowed.assert_code(0);
    let narrowed = narrowed.stdout.trim().to_string();
    let (code, _, _) = request(
        &s,
        "POST",
        "/v1/tools/hello/invoke",
        Some(r#"{"name":"Ada"}"#),
        &[&bearer(&narrowed)],
    );
    assert_eq!(code, 403, "the narrowed token lost `hello`");
    let (code, _, _) = request(
        &s,
        "POST",
        "/v1/tools/date-validator/invoke",
        Some(r#"{"date":"2026-11-26"}"#),
        &[&bearer(&narrowed)],
    );
    assert_eq!(code, 200);
    toka(["token", "attenuate", &narrowed, "--tool", "hello"])
        .run()
        .assert_code(125);
    let info = toka(["token", "inspect", &narrowed]).run();
    info.assert_code(0);
    let info = info.json();
    assert_eq!(info["subject"], "two");
    assert_eq!(info["key_id"], 1);
    assert!(
        info["revocation_ids"]
            .as_array()
            .is_some_and(|r| r.len() == 2)
    );

    // Tampered, foreign-key and expired tokens: 401.
    let mut tampered = hello.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let foreign = {
        let other = Keys::new();
        other.issue(&["--tool", "hello"])
    };
    let expiring = k.issue(&["--tool", "hello", "--ttl", "1s"]);
    std::thread::sleep(Duration::from_millis(1500));
    for (what, token) in [
        ("tampered", &tampered),
        ("foreign", &foreign),
        ("expired", &expiring),
    ] {
        let (code, body, headers) = request(&s, "GET", "/v1/tools", None, &[&bearer(token)]);
        assert_eq!(code, 401, "{what}: {body}");
        assert!(
            headers.contains("error=\"invalid_token\""),
            "{what}: {headers}"
        );
    }

    // Revocation, without a restart: the token and what was attenuated from
    // it, but not its sibling.
    let child = toka(["token", "attenuate", &both, "--ttl", "10m"]).run();
    child.assert_code(0);
    let child = child.stdout.trim().to_string();
    toka(["token", "revoke", &both, "--revocations", &k.revocations()])
        .run()
        .assert_code(0);
    let refused = |token: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (code, _, _) = request(&s, "GET", "/v1/tools", None, &[&bearer(token)]);
            if code == 401 || Instant::now() > deadline {
                return code == 401;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert!(refused(&both), "revoked within seconds");
    assert!(refused(&child), "and what was attenuated from it");
    assert!(refused(&narrowed), "narrowed earlier from it, too");
    assert_eq!(
        request(&s, "GET", "/v1/tools", None, &[&bearer(&hello)]).0,
        200
    );

    // Key rotation: a second key signs new tokens, old ones keep working
    // until the old key is removed.
    toka(["token", "keygen", "--keys", &k.keys()])
        .run()
        .assert_code(0)
        .assert_stdout_has("created key 2");
    let newer = k.issue(&["--tool", "hello"]);
    assert_eq!(toka(["token", "inspect", &newer]).run().json()["key_id"], 2);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        request(&s, "GET", "/v1/tools", None, &[&bearer(&newer)]).0,
        200
    );
    assert_eq!(
        request(&s, "GET", "/v1/tools", None, &[&bearer(&hello)]).0,
        200
    );
    for f in ["1.private", "1.public"] {
        std::fs::remove_file(Path::new(&k.keys()).join(f)).expect("remove key 1");
    }
    assert!(refused(&hello), "the old key's tokens end with it");
    assert_eq!(
        request(&s, "GET", "/v1/tools", None, &[&bearer(&newer)]).0,
        200
    );

    // The audit log names the token's subject and id, never the token.
    drop(s);
    let log = std::fs::read_to_string(&audit).expect("audit log");
    assert!(!log.contains(&hello), "no token in the audit log");
    assert!(
        log.lines()
            .any(|l| l.contains("\"subject\":\"ci-bot\"") && l.contains("\"token\":\"")),
        "{log}"
    );
}

#[test]
fn one_noisy_token_is_limited_while_another_is_served() {
    let k = Keys::new();
    let noisy = k.issue(&["--tool", "hello", "--subject", "noisy"]);
    let quiet = k.issue(&["--tool", "hello", "--subject", "quiet"]);
    let s = k.serve(&manifests(), &["--rate-limit", "2/s", "--rate-burst", "3"]);
    let mut limited = None;
    for _ in 0..10 {
        let (code, _, headers) = request(&s, "GET", "/v1/tools", None, &[&bearer(&noisy)]);
        if code == 429 {
            limited = Some(headers);
            break;
        }
    }
    let headers = limited.expect("the noisy token hits its limit");
    assert!(headers.contains("retry-after: "), "{headers}");
    assert_eq!(
        request(&s, "GET", "/v1/tools", None, &[&bearer(&quiet)]).0,
        200,
        "another token is not slowed"
    );
}

#[test]
fn browser_requests_and_non_json_bodies_are_refused() {
    let s = Server::start_with_env(&manifests(), &[], &[]);
    let (code, body, _) = request(
        &s,
        "POST",
        "/v1/tools/hello/invoke",
        Some(r#"{"name":"x"}"#),
        &["Origin: https://evil.example"],
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("\"kind\":\"denied\""), "{body}");
    let own = format!("Origin: {}", s.base());
    let (code, _, _) = request(
        &s,
        "POST",
        "/v1/tools/hello/invoke",
        Some(r#"{"name":"x"}"#),
        &[&own],
    );
    assert_eq!(code, 200, "the server's own origin is fine");
    // text/plain is what a cross-site form may send without a preflight.
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
            "-H",
            "Content-Type: text/plain",
        ])
        .args(["--data-binary", r#"{"name":"x"}"#])
        .arg(format!("{}/v1/tools/hello/invoke", s.base()))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("415"), "{text}");
    assert!(
        text.contains("\"kind\":\"unsupported-media-type\""),
        "{text}"
    );
    // A declared body over --max-body is refused before it is read, and
    // every error has the one JSON shape, the router's own included.
    for (method, path, headers, want) in [
        (
            "POST",
            "/v1/tools/hello/invoke",
            vec!["content-type: application/json", "content-length: 99999999"],
            413,
        ),
        ("GET", "/no/such/endpoint", vec![], 404),
        ("DELETE", "/health", vec![], 405),
    ] {
        let mut cmd = std::process::Command::new("curl");
        cmd.args([
            "-s",
            "--max-time",
            "5",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
        ]);
        for h in headers {
            cmd.args(["-H", h]);
        }
        let out = cmd
            .arg(format!("{}{path}", s.base()))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
        assert_eq!(code, want.to_string(), "{method} {path}: {text}");
        let v: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {body}"));
        assert!(
            v["error"]["kind"].is_string() && v["error"]["message"].is_string(),
            "{v}"
        );
    }
    let big_header = format!("X-Padding: {}", "x".repeat(20_000));
    let (code, body, _) = request(&s, "GET", "/health", None, &[&big_header]);
    assert_eq!(code, 431, "{body}");
    assert!(body.contains("\"kind\":\"too-large\""), "{body}");
}

#[test]
fn a_public_address_needs_tokens() {
    toka(["serve", "--addr", "0.0.0.0:0", "--manifests", "manifests"])
        .run()
        .assert_code(125)
        .assert_stderr_has("without tokens")
        .assert_stderr_has("toka-host token keygen --keys DIR");
    toka(["serve", "--manifests", "/does/not/exist"])
        .run()
        .assert_code(125)
        .assert_stderr_has("cannot read the manifests directory /does/not/exist");
}

#[test]
fn a_flood_of_half_open_connections_unloads_nothing() {
    let manifests = manifests();
    // Few descriptors, as on a small container: more connections than the
    // process may open files.
    let s = Server::start_limited(
        &manifests,
        &["--header-timeout", "3s", "--reload-interval", "100ms"],
        256,
    );
    let tools_before = tool_count(&s);
    assert!(tools_before >= 10, "{tools_before}");
    let addr = s.base().trim_start_matches("http://").to_string();
    let mut flood = Vec::new();
    for _ in 0..400 {
        if let Ok(mut c) = std::net::TcpStream::connect(&addr) {
            let _ = c.write_all(b"GET /health HTTP/1.1\r\nHost: ");
            flood.push(c);
        }
    }
    // Hold them while the reloader runs many scans.
    std::thread::sleep(Duration::from_secs(2));
    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut answered = false;
    while Instant::now() < deadline {
        if request(&s, "GET", "/health", None, &[]).0 == 200 {
            answered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        answered,
        "the server answers within seconds after the flood"
    );
    assert_eq!(tool_count(&s), tools_before, "every tool is still loaded");
    let log = s.log();
    assert!(!log.contains("removed "), "{log}");
}

fn tool_count(s: &Server) -> usize {
    let (code, body, _) = request(s, "GET", "/v1/tools", None, &[]);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0)
}

#[test]
fn a_manifest_reaching_outside_the_approved_paths_is_refused_at_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("data")).expect("data");
    let reader = |name: &str, path: &str| {
        format!(
            "metadata: {{ name: {name}, version: 1.0.0, description: reads }}\n\
             spec:\n  executable: {{ type: component, path: {} }}\n\
             \x20 capabilities: {{ required: [filesystem-read] }}\n\
             \x20 security:\n    sandbox: {{ readonly_paths: ['{path}::/data'] }}\n",
            plugin("file-reader")
        )
    };
    std::fs::write(dir.path().join("inside.yaml"), reader("inside", "./data")).expect("inside");
    let s = Server::start_with_env(dir.path(), &["--grant", "filesystem-read"], &[]);
    // Dropped in later, asking for /etc: refused at load, and /status says
    // which grant would allow it.
    std::fs::write(dir.path().join("greedy.yaml"), reader("greedy", "/etc")).expect("greedy");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let (_, v) = s.json("GET", "/status", None);
        if v["errors"].as_array().is_some_and(|e| !e.is_empty()) || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let error = status["errors"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("/etc") && error.contains("--grant filesystem-read=/etc"),
        "{status}"
    );
    let (_, tools) = s.json("GET", "/v1/tools", None);
    let names: Vec<&str> = tools
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["inside"], "{tools}");
    assert!(s.log().contains("loaded inside 1.0.0"), "{}", s.log());
    assert!(
        s.log().contains("reads "),
        "effective paths are logged: {}",
        s.log()
    );
    // `run` takes the same forms.
    let m = dir.path().join("greedy.yaml").display().to_string();
    toka([
        "run",
        &m,
        "--grant",
        "filesystem-read",
        "--param",
        "path=hostname",
    ])
    .run()
    .assert_code(126)
    .assert_stderr_has("--grant filesystem-read=/etc");
    toka([
        "run",
        &m,
        "--grant",
        "filesystem-read=/etc",
        "--param",
        "path=hostname",
    ])
    .run()
    .assert_code(0);
}
