//! Plugins in any language: `text-stats` written in Rust, Python, JavaScript
//! and C answers identically through `run` and through `serve`; Python,
//! JavaScript and C code is confined like Rust code and trips the same
//! limits; `exec` runs dynamic Python and JavaScript in the sandbox.

use crate::harness::{hello_still_works, plugin, repo, toka};
use crate::serve::Server;
use serde_json::{Value, json};

const TOOLS: [&str; 4] = [
    "text-stats",
    "text-stats-py",
    "text-stats-js",
    "text-stats-c",
];

fn inputs() -> Vec<Value> {
    let mut long = String::new();
    for i in 0..3000 {
        long.push_str(["alpha ", "Beta ", "gamma\n", "delta, ", "ALPHA "][i % 5]);
        long.push_str(&format!("w{} ", i % 37));
    }
    vec![
        json!({ "text": "The cat and the hat.\nThe end", "top": 3 }),
        json!({ "text": "Ünïcode café, CAFE cafe!\r\nline two\n\nx 🦀 émoji", "top": 2 }),
        json!({ "text": "" }),
        json!({ "text": "a\n" }),
        json!({ "text": "\n\n\n" }),
        json!({ "text": "tab\there \"quoted\" \\ back\u{0} nul / slash it's don't 2026-11-26" }),
        json!({ "text": long, "top": 50 }),
        json!({ "text": "b a c b a b", "top": 1, "ignored": { "nested": [1, "two", null] } }),
    ]
}

fn run_tool(tool: &str, input: &Value) -> (i32, Value, String) {
    let r = toka(["run", tool, "--input", &input.to_string()]).run();
    let out = serde_json::from_str(r.stdout.trim()).unwrap_or(Value::Null);
    (r.code, out, r.stderr)
}

#[test]
fn text_stats_answers_the_same_in_four_languages() {
    // The Rust answer, checked by hand once.
    let (code, rust, _) = run_tool("text-stats", &inputs()[0]);
    assert_eq!(code, 0);
    assert_eq!(
        rust,
        json!({
            "bytes": 28, "characters": 28, "lines": 2, "words": 7, "unique_words": 5,
            "top_words": [
                { "word": "the", "count": 3 }, { "word": "and", "count": 1 }, { "word": "cat", "count": 1 }
            ],
        })
    );
    let (_, unicode, _) = run_tool("text-stats", &inputs()[1]);
    assert_eq!(
        (unicode["bytes"].as_u64(), unicode["characters"].as_u64()),
        (Some(52), Some(45))
    );

    for input in inputs() {
        let (code, expected, stderr) = run_tool("text-stats", &input);
        assert_eq!(code, 0, "{stderr}");
        for tool in &TOOLS[1..] {
            let (code, out, stderr) = run_tool(tool, &input);
            assert_eq!(code, 0, "{tool}: {stderr}");
            assert_eq!(out, expected, "{tool} disagrees with Rust on {input}");
        }
    }

    // Errors too: the same case and message from each tool's own check
    // (through a manifest whose schema takes any object, so the host's
    // schema check does not answer first)...
    let loose = tempfile::tempdir().expect("tempdir");
    for (input, message) in [
        (
            json!({ "text": "x", "top": 0 }),
            "`top` must be an integer from 1 to 50",
        ),
        (
            json!({ "text": "x", "top": 51 }),
            "`top` must be an integer from 1 to 50",
        ),
    ] {
        for tool in TOOLS {
            let (code, _, stderr) = run_tool(&loose_manifest(loose.path(), tool), &input);
            assert_eq!(code, 1, "{tool}: {stderr}");
            assert!(
                stderr.contains("(InvalidInput)") && stderr.contains(message),
                "{tool}: {stderr}"
            );
        }
        // ...and through the manifest, or from the .wasm with the schema its
        // own describe() gives, the host refuses it first, the same for all
        // four, from the schema's `minimum` and `maximum`.
        for tool in TOOLS {
            for target in [tool.to_string(), plugin(tool)] {
                let (code, _, stderr) = run_tool(&target, &input);
                assert_eq!(code, 125, "{target}: {stderr}");
                assert!(
                    stderr.contains("input property `top`"),
                    "{target}: {stderr}"
                );
            }
        }
    }
    // A missing `text` is caught by the host's schema check for all four;
    // the tools' own check, past a schema that takes any object, agrees.
    for tool in TOOLS {
        let r = toka([
            "run",
            &loose_manifest(loose.path(), tool),
            "--input",
            r#"{"nope":1}"#,
        ])
        .run();
        r.assert_code(1)
            .assert_stderr_has("`text` (a string) is required");
    }
}

/// A manifest for `tool`'s .wasm whose schema takes any object, so that the
/// tool's own input check answers rather than the host's.
fn loose_manifest(dir: &std::path::Path, tool: &str) -> String {
    let file = dir.join(format!("{tool}.yaml"));
    std::fs::write(
        &file,
        format!(
            "metadata: {{ name: {tool}, version: 1.0.0, description: any object }}\n\
             spec:\n  executable: {{ type: component, path: {} }}\n\
             \x20 security: {{ sandbox: {{ fuel: 2000000000, memory_limit: 64MiB, timeout: 5s }} }}\n",
            plugin(tool)
        ),
    )
    .expect("manifest");
    file.display().to_string()
}

#[test]
fn text_stats_answers_the_same_through_serve() {
    let s = Server::start_with_env(&repo().join("manifests"), &[], &[]);
    let (code, tools) = s.json("GET", "/v1/tools", None);
    assert_eq!(code, 200);
    for tool in TOOLS {
        let listed = tools
            .as_array()
            .and_then(|a| a.iter().find(|t| t["name"] == tool))
            .unwrap_or_else(|| panic!("{tool} not served: {tools}\n{}", s.log()));
        assert_eq!(listed["input_schema"]["required"][0], "text");
    }
    for input in inputs() {
        let mut answers = Vec::new();
        for tool in TOOLS {
            let (code, v) = s.json(
                "POST",
                &format!("/v1/tools/{tool}/invoke"),
                Some(&input.to_string()),
            );
            assert_eq!(code, 200, "{tool}: {v}");
            answers.push(v["output"].clone());
        }
        assert!(
            answers.windows(2).all(|w| w[0] == w[1]),
            "{input}: {answers:?}"
        );
    }
}

/// A loopback listener that records whether anyone connected.
fn listener() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_nonblocking(true).expect("nonblocking");
    let port = l.local_addr().expect("addr").port();
    (l, port)
}

fn nobody_connected(l: &std::net::TcpListener) -> bool {
    matches!(l.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

fn exec(lang: &str, code: &str, extra: &[&str]) -> crate::harness::Run {
    let mut args = vec!["exec", "--lang", lang, code];
    args.extend_from_slice(extra);
    toka(args).env("HOST_SECRET", "hunter2").run()
}

#[test]
fn python_code_is_confined_like_rust() {
    let data = tempfile::tempdir().expect("data");
    std::fs::write(data.path().join("granted.txt"), "granted content").expect("write");
    let (l, port) = listener();
    let code = format!(
        r#"
import json, os
r = {{}}
def attempt(name, f):
    try:
        r[name] = ["ok", f()]
    except BaseException as e:
        r[name] = ["denied", type(e).__name__]
attempt("passwd", lambda: open("/etc/passwd").read())
attempt("proc", lambda: open("/proc/self/environ").read())
attempt("root", lambda: os.listdir("/"))
attempt("granted", lambda: open("/data/granted.txt").read())
attempt("write", lambda: open("/data/new.txt", "w").write("x"))
def connect():
    import socket
    s = socket.create_connection(("127.0.0.1", {port}), timeout=2)
    return "connected"
attempt("net", connect)
r["env"] = dict(os.environ)
print(json.dumps(r))
"#
    );
    let dir_grant = format!("{}::/data", data.path().display());
    let r = exec(
        "python",
        &code,
        &["--ro-dir", &dir_grant, "--env", "GRANTED=yes"],
    );
    r.assert_code(0);
    let v: Value = serde_json::from_str(r.stdout.trim()).expect("json");
    assert_eq!(v["passwd"][0], "denied", "{v}");
    assert_eq!(v["proc"][0], "denied", "{v}");
    assert_eq!(v["root"][0], "denied", "{v}");
    assert_eq!(
        v["granted"],
        json!(["ok", "granted content"]),
        "the grant works: {v}"
    );
    assert_eq!(v["write"][0], "denied", "read-only grant: {v}");
    assert_eq!(v["net"][0], "denied", "{v}");
    assert_eq!(
        v["env"],
        json!({ "GRANTED": "yes" }),
        "only what was granted: {v}"
    );
    assert!(nobody_connected(&l));
    assert!(!data.path().join("new.txt").exists());
}

#[test]
fn javascript_code_is_confined_like_rust() {
    let (l, port) = listener();
    let code = r#"
const r = {
  require: typeof require, process: typeof process, Deno: typeof Deno,
  fs: typeof globalThis.fs, env: typeof globalThis.env,
};
r.globals = Object.getOwnPropertyNames(globalThis).filter((n) => /env|socket|process|require|^fs$|readfile|spawn/i.test(n));
console.log(JSON.stringify(r));
"#;
    let r = exec("js", code, &[]);
    r.assert_code(0);
    let v: Value = serde_json::from_str(r.stdout.trim()).expect("json");
    assert_eq!(v["require"], "undefined");
    assert_eq!(v["process"], "undefined");
    assert_eq!(v["Deno"], "undefined");
    assert_eq!(
        v["globals"],
        json!([]),
        "no file, env, socket or process API: {v}"
    );
    // `fetch` exists, but the engine has no wasi:http to reach: it traps.
    let r = exec("js", &format!("fetch('http://127.0.0.1:{port}/')"), &[]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(nobody_connected(&l), "fetch reached the network");
}

#[test]
fn c_code_is_confined_like_rust() {
    let probe = plugin("c-probe");
    let data = tempfile::tempdir().expect("data");
    std::fs::write(data.path().join("granted.txt"), "granted content").expect("write");
    let grant = format!("{}::/data", data.path().display());
    // (grant the data dir?, operation, path, exit code, what it prints)
    for (granted, op, path, code, says) in [
        (false, "read", "/etc/passwd", 1, "denied:"),
        (true, "read", "/data/../../etc/passwd", 1, "denied:"),
        (true, "read", "/data/granted.txt", 0, "ok: granted content"),
        (true, "write", "/data/new.txt", 1, "denied:"),
    ] {
        let mut args = vec!["run", probe.as_str()];
        if granted {
            args.extend(["--ro-dir", grant.as_str()]);
        }
        args.extend(["--", op, path]);
        toka(args).run().assert_code(code).assert_stdout_has(says);
    }
    assert!(!data.path().join("new.txt").exists());
    let r = toka(["run", &probe, "--env", "GRANTED=yes", "--", "env"])
        .env("HOST_SECRET", "hunter2")
        .run();
    r.assert_code(0);
    assert_eq!(r.stdout, "GRANTED=yes\n");

    // C through preview1 has no socket API at all: neither the tool nor the
    // probe imports wasi:sockets, so there is nothing to grant or to escape.
    let engine = wasmtime::Engine::default();
    for file in ["text-stats-c", "c-probe"] {
        let c =
            wasmtime::component::Component::from_file(&engine, plugin(file)).expect("component");
        let imports: Vec<String> = c
            .component_type()
            .imports(&engine)
            .map(|(n, _)| n.to_string())
            .collect();
        assert!(
            imports.iter().all(|i| !i.starts_with("wasi:sockets")),
            "{file}: {imports:?}"
        );
        assert!(
            imports.iter().any(|i| i.starts_with("wasi:filesystem")),
            "{file}: {imports:?}"
        );
    }
}

#[test]
fn limits_trip_in_every_language() {
    let cases: [(&str, &str, &[&str], &str); 7] = [
        (
            "python",
            "while True: pass",
            &["--timeout", "1s"],
            "timeout of 1s exceeded",
        ),
        (
            "python",
            "while True: pass",
            &["--fuel", "200000000"],
            "fuel limit of 200000000 exceeded",
        ),
        (
            "python",
            "b = bytearray(512 * 1024 * 1024)",
            &["--memory", "64MiB"],
            "memory limit of 64MiB exceeded",
        ),
        (
            "python",
            "print('x' * 100, end='', flush=True)\nwhile True: print('flood ' * 1000)",
            &["--max-output", "1MiB"],
            "output limit of 1MiB exceeded",
        ),
        (
            "js",
            "for (;;) {}",
            &["--timeout", "1s"],
            "timeout of 1s exceeded",
        ),
        (
            "js",
            "for (;;) {}",
            &["--fuel", "200000000"],
            "fuel limit of 200000000 exceeded",
        ),
        (
            "js",
            "const a = []; for (;;) a.push(new Array(1e6).fill(1));",
            &["--memory", "64MiB"],
            "memory limit of 64MiB exceeded",
        ),
    ];
    for (lang, code, flags, message) in cases {
        let r = exec(lang, code, flags);
        r.assert_code(124)
            .assert_stderr_has(&format!("`{lang}` stopped: {message}"));
    }
    let probe = plugin("c-probe");
    toka(["run", &probe, "--fuel", "100000000", "--", "spin"])
        .run()
        .assert_code(124)
        .assert_stderr_has("fuel limit of 100000000 exceeded");
    toka(["run", &probe, "--memory", "16MiB", "--", "grow"])
        .run()
        .assert_code(124)
        .assert_stderr_has("memory limit of 16MiB exceeded");
    // And the tools as registered, under their manifests' limits.
    let big = tempfile::NamedTempFile::new().expect("input");
    std::fs::write(
        big.path(),
        json!({ "text": "word ".repeat(300_000) }).to_string(),
    )
    .expect("write");
    let big = format!("@{}", big.path().display());
    for tool in TOOLS {
        let r = toka(["run", tool, "--input", &big, "--fuel", "1000000"]).run();
        r.assert_code(124)
            .assert_stderr_has("fuel limit of 1000000 exceeded");
    }
    hello_still_works();
}

#[test]
fn exec_runs_python_and_javascript() {
    exec("python", "print('Hello from Python')", &[])
        .assert_code(0)
        .assert_stdout_has("Hello from Python\n");
    exec("js", "console.log('Hello from JavaScript', 6 * 7)", &[])
        .assert_code(0)
        .assert_stdout_has("Hello from JavaScript 42\n");

    let script = tempfile::NamedTempFile::new().expect("script");
    std::fs::write(
        script.path(),
        "import sys\nprint(sum(range(10)))\nsys.exit(3)\n",
    )
    .expect("write");
    let path = script.path().display().to_string();
    let r = toka(["exec", "--lang", "python", "--file", &path]).run();
    r.assert_code(1).assert_stdout_has("45\n");

    exec("python", "raise ValueError('boom')", &[])
        .assert_code(1)
        .assert_stderr_has("ValueError: boom");
    exec("js", "throw new TypeError('bang')", &[])
        .assert_code(1)
        .assert_stderr_has("TypeError: bang");
    let r = toka([
        "exec",
        "--lang",
        "python",
        "import sys; print(sys.stdin.read().upper())",
    ])
    .stdin("piped in")
    .run();
    r.assert_code(0).assert_stdout_has("PIPED IN");

    let r = toka(["exec", "--lang", "python", "--json", "print('hi')"]).run();
    r.assert_code(0);
    let v = r.json();
    assert_eq!(
        (v["stdout"].as_str(), v["exit_code"].as_i64()),
        (Some("hi\n"), Some(0))
    );
    assert!(v["usage"]["fuel_consumed"].as_u64().expect("fuel") > 0);

    toka([
        "exec",
        "--lang",
        "python",
        "--runtimes",
        "/nonexistent",
        "print(1)",
    ])
    .run()
    .assert_code(127)
    .assert_stderr_has("the python runtime is not built: no python-exec.wasm in /nonexistent");
    toka(["exec", "--lang", "ruby", "1"]).run().assert_code(125);
    toka(["exec", "--lang", "python"]).run().assert_code(125);
}
