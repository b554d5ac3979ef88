//! Requests to an in-process `toka-host serve` (`toka_host::serve_in_process`)
//! with the bundled tools of `manifests/`: MCP messages POSTed to `/mcp`
//! (decode and dispatch) and bodies POSTed to `/v1`, through the same door,
//! call path and sandboxes a client reaches over HTTP (no socket: the
//! routes answer in memory).
//!
//! The first byte of an input picks where and how the rest is sent: `S` to
//! `/mcp` in the stateless 2026-07-28 form (`MCP-Protocol-Version:
//! 2026-07-28`, `MCP-Method` and `MCP-Name` from the body), `L` to `/mcp` in
//! one 2025-11-25 session opened at start, `I` as `NAME\nBODY` to
//! `/v1/tools/NAME/invoke`, `A` to `/v1/agents`, anything else to `/mcp`
//! with no protocol header.
//!
//! Invariants, beyond "no panic": the server answers every input (the body
//! ends; no 5xx but a call's 504 over its time limit and 503 when busy on
//! `/v1`, none at all on `/mcp`, where a limit is a tool result); a JSON
//! answer is JSON; on `/mcp` every message answered is an object with
//! `jsonrpc: "2.0"` and exactly one of `result` and `error`, and a request
//! answered 200 has an answer with its `id`; an error (a 4xx body, a
//! JSON-RPC `error`) repeats no 48-byte run of the body (a tool's own result
//! may: `hello` greets by the name it is given).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;
use toka_host::server::{Answer, EmbedError, InProcess};

const ADDR: &str = "127.0.0.1:7";
const ACCEPT: &str = "application/json, text/event-stream";

struct Server {
    runtime: tokio::runtime::Runtime,
    server: InProcess,
    session: String,
}

static SERVER: OnceLock<Server> = OnceLock::new();

/// Starts the server once, on a copy of `manifests/` without the Python
/// and JavaScript tools: their interpreters take many minutes to compile
/// with the fuzz build's coverage-instrumented Cranelift, and they reach
/// the same call path as the rest (the `mcp` tests call them). The copy
/// sits beside links to the repo's `plugins/`, `scripts/` and
/// `manifests/data` and `manifests/scratch`, so the manifests' relative paths hold. Components
/// are compiled into a cache under the fuzz crate's target/.
fn start() -> Server {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let work = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/serve-request");
    let manifests = work.join("manifests");
    let _ = std::fs::remove_dir_all(&manifests);
    std::fs::create_dir_all(&manifests).expect("a manifests directory");
    for entry in std::fs::read_dir(root.join("manifests")).expect("the repo's manifests") {
        let path = entry.expect("a directory entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".yaml") && !name.ends_with("-py.yaml") && !name.ends_with("-js.yaml") {
            std::fs::copy(&path, manifests.join(name)).expect("a manifest copied");
        }
    }
    for (from, to) in [
        (root.join("plugins"), work.join("plugins")),
        (root.join("scripts"), work.join("scripts")),
        (root.join("manifests/data"), manifests.join("data")),
        (root.join("manifests/scratch"), manifests.join("scratch")),
    ] {
        if std::fs::symlink_metadata(&to).is_err() {
            std::os::unix::fs::symlink(&from, &to).expect("a link into the repo");
        }
    }
    let manifests = manifests.to_str().expect("a UTF-8 path").to_owned();
    let cache = work.join("compile-cache");
    let cache = cache.to_str().expect("a UTF-8 path");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let server = runtime
        .block_on(toka_host::serve_in_process(&[
            "--addr",
            ADDR,
            "--manifests",
            &manifests,
            "--cache-dir",
            cache,
            // Agent runs the fuzzer starts stay in this process.
            "--state",
            "memory",
            // A tool the fuzzer makes spin ends in a limit error well inside
            // libFuzzer's -timeout.
            "--timeout",
            "2s",
            "--max-concurrent",
            "4",
        ]))
        .unwrap_or_else(|code| panic!("serve refused the fuzz flags (exit {code})"));
    assert!(
        server.tools() > 0,
        "no bundled tool loaded from {manifests}"
    );
    let init = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"fuzz","version":"0"}}}"#;
    let answer = runtime
        .block_on(server.request(
            "POST",
            "/mcp",
            &json_headers(None, None),
            init.to_vec(),
            PATIENCE,
        ))
        .expect("initialize answered");
    let session = answer
        .header("mcp-session-id")
        .expect("a session id")
        .to_owned();
    let initialized = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    runtime
        .block_on(server.request(
            "POST",
            "/mcp",
            &json_headers(Some("2025-11-25"), Some(&session)),
            initialized.to_vec(),
            PATIENCE,
        ))
        .expect("initialized answered");
    Server {
        runtime,
        server,
        session,
    }
}

/// A call is limited to 2 s; what takes longer than this never ends.
const PATIENCE: Duration = Duration::from_secs(8);

fn json_headers<'a>(version: Option<&'a str>, session: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![
        ("host", ADDR),
        ("content-type", "application/json"),
        ("accept", ACCEPT),
    ];
    if let Some(v) = version {
        h.push(("mcp-protocol-version", v));
    }
    if let Some(s) = session {
        h.push(("mcp-session-id", s));
    }
    h
}

fuzz_target!(init: { SERVER.get_or_init(start); }, |data: &[u8]| {
    let Some((&form, body)) = data.split_first() else {
        return;
    };
    let s = SERVER.get_or_init(start);
    let (path, body) = match form {
        b'I' => {
            let (name, body) = match body.iter().position(|&b| b == b'\n') {
                Some(at) => (&body[..at], &body[at + 1..]),
                None => (body, &[][..]),
            };
            // A name that is no path segment is the client's HTTP mistake,
            // refused before any request exists.
            let Ok(name) = std::str::from_utf8(name) else {
                return;
            };
            (format!("/v1/tools/{name}/invoke"), body)
        }
        b'A' => ("/v1/agents".to_owned(), body),
        _ => ("/mcp".to_owned(), body),
    };
    let ask = |body: &[u8]| s.runtime.block_on(send(s, form, &path, body));
    let answer = match ask(body) {
        Ok(a) => a,
        Err(EmbedError::Request(_)) => return,
        Err(e) => panic!("no answer to {path}: {e}"),
    };
    // The body of the answer to `body` changed, for the echo check.
    let again = |body: &[u8]| ask(body).ok().map(|a| String::from_utf8_lossy(&a.body).into_owned());
    if path == "/mcp" {
        check_mcp(body, &answer, &again);
    } else {
        check_v1(&path, body, &answer, &again);
    }
});

/// `body` POSTed to `path` with the headers of `form`.
async fn send(s: &Server, form: u8, path: &str, body: &[u8]) -> Result<Answer, EmbedError> {
    let mut headers = match form {
        b'S' => json_headers(Some("2026-07-28"), None),
        b'L' => json_headers(Some("2025-11-25"), Some(&s.session)),
        _ => json_headers(None, None),
    };
    let routed = routing(body);
    // A 2026-07-28 client names the method (and tool) in headers too.
    if form == b'S' {
        if let Some(m) = &routed.0 {
            headers.push(("mcp-method", m));
        }
        if let Some(n) = &routed.1 {
            headers.push(("mcp-name", n));
        }
    }
    s.server
        .request("POST", path, &headers, body.to_vec(), PATIENCE)
        .await
}

fn check_v1(path: &str, body: &[u8], answer: &Answer, again: &Again) {
    assert!(
        answer.status < 500 || answer.status == 503 || answer.status == 504,
        "status {}: {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    if answer
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        if let Err(e) = serde_json::from_slice::<Value>(&answer.body) {
            panic!(
                "a JSON answer that is not JSON ({e}): {}",
                String::from_utf8_lossy(&answer.body)
            );
        }
    }
    if answer.status >= 400 {
        // The error's message (the rest of a call's answer is ours: tool,
        // digest, usage, the tool's own logs), without the path asked for
        // (the client's own URL, which a 404 names).
        let view = |text: &str| message_of(text).replace(path, "<path>");
        let message = view(&String::from_utf8_lossy(&answer.body));
        assert_no_echo(body, &message, &|b: &[u8]| again(b).map(|t| view(&t)));
    }
}

/// The `error.message` of a `/v1` answer, or the whole text if it has none.
fn message_of(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| text.to_owned())
}

/// The `method` and `params.name` of a body, when they are header-safe text.
fn routing(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (None, None);
    };
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|t| t.bytes().all(|b| (0x20..0x7f).contains(&b)))
            .map(str::to_owned)
    };
    (text(v.get("method")), text(v.pointer("/params/name")))
}

fn check_mcp(body: &[u8], answer: &Answer, again: &Again) {
    assert!(
        answer.status < 500,
        "status {}: {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    let messages = messages(answer);
    // A JSON-RPC answer repeats the request's id by design: its errors are
    // checked one by one below.
    if answer.status >= 400 && messages.is_empty() {
        assert_no_echo(body, &String::from_utf8_lossy(&answer.body), again);
    }
    let request: Option<Value> = serde_json::from_slice(body).ok();
    for m in &messages {
        let Some(o) = m.as_object() else {
            panic!("an answer that is not an object: {m}");
        };
        // Server-sent requests and notifications (progress, log messages)
        // may come before the answer on an event stream.
        if o.contains_key("method") {
            continue;
        }
        assert_eq!(o.get("jsonrpc"), Some(&Value::from("2.0")), "{m}");
        assert!(
            o.contains_key("result") != o.contains_key("error"),
            "not exactly one of result and error: {m}"
        );
        // Only the errors Toka writes itself (a body that is no MCP
        // message, a transport refusal: -32700 and -32600 with no id, and
        // tool errors): rmcp's name what they refused, an unknown method
        // (-32601) or a `_meta` protocolVersion that disagrees with the
        // header (-32020), in full (docs/RELIABILITY.md, finding 17).
        let toka_wrote = |e: &&Value| {
            matches!(e["code"].as_i64(), Some(-32700 | -32600)) && o.get("id") == Some(&Value::Null)
        };
        if let Some(e) = o.get("error").filter(toka_wrote) {
            assert_no_echo(body, &e.to_string(), again);
        }
    }
    // One request in, its answer (with its id) out, when it was answered
    // as a request: 200 with a body.
    if let Some(Value::Object(r)) = &request {
        if let (Some(id), true, 200) = (r.get("id"), r.contains_key("method"), answer.status) {
            if id.is_string() || id.is_i64() || id.is_u64() {
                assert!(
                    messages.iter().any(|m| m.get("id") == Some(id)
                        && !m.as_object().is_some_and(|o| o.contains_key("method"))),
                    "no answer with id {id}: {}",
                    String::from_utf8_lossy(&answer.body)
                );
            }
        }
    }
}

/// The JSON-RPC messages of an answer: a JSON body, or an event stream's
/// `data:` lines.
fn messages(answer: &Answer) -> Vec<Value> {
    let ct = answer.header("content-type").unwrap_or("");
    let text = String::from_utf8_lossy(&answer.body);
    if ct.starts_with("application/json") {
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("a JSON answer that is not JSON ({e}): {text}"));
        match v {
            Value::Array(a) => a,
            v => vec![v],
        }
    } else if ct.starts_with("text/event-stream") {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| {
                serde_json::from_str(d)
                    .unwrap_or_else(|e| panic!("an event that is not JSON ({e}): {d}"))
            })
            .collect()
    } else {
        Vec::new()
    }
}

/// Asks again with a changed body and gives the answer's body.
type Again<'a> = dyn Fn(&[u8]) -> Option<String> + 'a;

/// An error repeats no 48-byte run of the body. A run the error still holds
/// when that run is blanked out of the body is our own words (the fuzzer
/// learns them from the comparisons of this check and copies them into its
/// inputs), not an echo.
fn assert_no_echo(body: &[u8], error: &str, again: &Again) {
    // The echo check still finds its own false positives within minutes
    // (our words the fuzzer copies into JSON where blanking them changes
    // what the body means); CI's 30 s smoke (`scripts/fuzz.sh --smoke`)
    // leaves it to the longer runs and checks the other invariants.
    if std::env::var_os("TOKA_FUZZ_SMOKE").is_some() {
        return;
    }
    // An unknown key is named (that is how a typo is found), cut to 64
    // characters and `…` (finding 13); values never are.
    let unnamed = toka_fuzz::without_named_key(error, "<key>");
    // Measured on the message itself, not on its JSON (where a `"` of the
    // key takes two characters).
    let message = message_of(error);
    assert!(
        // `unknown field `, the key's 64 characters and `…`.
        message.chars().count()
            <= toka_fuzz::without_named_key(&message, "").chars().count()
                + "unknown field `".len()
                + 65,
        "an unknown key named in full: {error}"
    );
    let error = &unnamed;
    let Some(run) = toka_fuzz::echoed_bytes(body, error.as_bytes(), 48) else {
        return;
    };
    // Blanked, or (when blanking changes what the body means: a JSON escape
    // made `\uQQQQ`) cut out.
    let holds = |changed: Vec<u8>| {
        again(&changed)
            .map(|a| toka_fuzz::without_named_key(&a, "<key>"))
            .is_some_and(|a| a.as_bytes().windows(run.len()).any(|w| w == run))
    };
    let ours = holds(toka_fuzz::blank_run(body, run)) || holds(toka_fuzz::cut_run(body, run));
    assert!(
        ours,
        "an error repeats the body ({:?}): {error}",
        String::from_utf8_lossy(run)
    );
}
