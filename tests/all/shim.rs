//! Shell and Python tools through the subprocess shim: hostile scripts are
//! contained, each followed by a normal call that still works.

use crate::harness::{Run, hello_still_works, repo, secret_outside, toka};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A tool written into a scratch directory: the script, its manifest with
/// the right pin, and the directory (kept alive by the struct).
struct Tool {
    dir: tempfile::TempDir,
    manifest: PathBuf,
}

impl Tool {
    /// `kind` is `shell` or `python`; `caps` and `sandbox` are YAML flow
    /// text for `spec.capabilities.required` and `spec.security.sandbox`.
    fn new(kind: &str, script: &str, caps: &str, sandbox: &str) -> Tool {
        let dir = tempfile::tempdir().expect("tempdir");
        let ext = if kind == "python" { "py" } else { "sh" };
        let file = dir.path().join(format!("tool.{ext}"));
        std::fs::write(&file, script).expect("write script");
        let digest = sha256(&std::fs::read(&file).expect("read"));
        let manifest = dir.path().join("tool.yaml");
        std::fs::write(
            &manifest,
            format!(
                "metadata: {{ name: hostile, version: 1.0.0, description: a test tool }}\n\
                 spec:\n  executable: {{ type: {kind}, path: tool.{ext}, sha256: {digest} }}\n\
                 \x20 capabilities: {{ required: [{caps}] }}\n\
                 \x20 security:\n    sandbox: {sandbox}\n"
            ),
        )
        .expect("write manifest");
        Tool { dir, manifest }
    }

    fn path(&self) -> String {
        self.manifest.display().to_string()
    }

    fn run(&self, extra: &[&str]) -> Run {
        let mut args = vec!["run".to_string(), self.path()];
        args.extend(extra.iter().map(|s| s.to_string()));
        toka(&args).run()
    }
}

fn sha256(bytes: &[u8]) -> String {
    toka_spec::manifest::Sha256Hex::of(bytes).to_string()
}

/// After something hostile: a normal shim call and a normal wasm call work.
#[track_caller]
fn still_works() {
    let t = Tool::new("shell", "echo \"ok $1 $2\"\n", "", "{}");
    t.run(&["--param", "x=1"])
        .assert_code(0)
        .assert_stdout_has("ok --x 1");
    hello_still_works();
}

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(marker) {
                found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[test]
fn infinite_loop_is_killed_at_the_timeout() {
    let t = Tool::new("shell", "while :; do :; done\n", "", "{ timeout: 500ms }");
    let start = Instant::now();
    t.run(&[])
        .assert_code(124)
        .assert_stderr_has("timeout of 500ms exceeded");
    assert!(start.elapsed() < Duration::from_secs(20));
    still_works();
}

#[test]
fn fork_bomb_is_contained_and_every_process_killed() {
    let marker = format!("31{}", std::process::id());
    let t = Tool::new(
        "shell",
        &format!("for i in $(seq 1 3000); do sleep {marker} & done\nwait\n"),
        "process-execution",
        "{ timeout: 3s }",
    );
    let start = Instant::now();
    let run = t.run(&["--grant", "process-execution"]);
    run.assert_code(124);
    // Bash retries a failed fork: the pids limit shows up as retries.
    run.assert_stderr_has("Resource temporarily unavailable");
    assert!(start.elapsed() < Duration::from_secs(30));
    let left = processes_with(&format!("sleep {marker}"));
    assert!(left.is_empty(), "left behind: {left:?}");
    still_works();
}

#[test]
fn memory_hog_is_stopped() {
    let t = Tool::new(
        "python",
        "hoard = bytearray(4 * 1024 ** 3)\nprint(len(hoard))\n",
        "",
        "{ memory_limit: 128MiB, timeout: 10s }",
    );
    let run = t.run(&[]);
    run.assert_code(1).assert_stderr_has("MemoryError");
    still_works();
}

#[test]
fn files_outside_the_grant_are_unreadable() {
    let (_dir, secret, content) = secret_outside();
    let shadow_first = std::fs::read_to_string("/etc/shadow").unwrap_or_default();
    let granted = tempfile::tempdir().expect("tempdir");
    std::fs::write(granted.path().join("ok.txt"), "granted content").expect("write");
    let t = Tool::new(
        "shell",
        "for f in \"$2\" /etc/shadow \"/proc/$PPID/environ\" /proc/self/environ \"$TOKA_READONLY_DIRS/ok.txt\"; do\n\
         \x20 line=''\n\
         \x20 if exec 4<\"$f\"; then IFS= read -r -d '' line <&4; exec 4<&-; echo \"READ $f: $line\"; else echo \"DENIED $f\"; fi\n\
         done\n",
        "filesystem-read",
        &format!("{{ readonly_paths: ['{}'] }}", granted.path().display()),
    );
    // The granted directory is outside the manifest's: approve it by path.
    let reach = format!("filesystem-read={}", granted.path().display());
    let run = toka([
        "run",
        &t.path(),
        "--grant",
        &reach,
        "--param",
        &format!("path={}", secret.display()),
    ])
    .env("TOKA_TEST_SECRET", "hunter2")
    .run();
    run.assert_code(0);
    assert!(
        run.stdout.contains("READ") && run.stdout.contains("granted content"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains(&content),
        "secret leaked: {}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("hunter2"),
        "host environment leaked: {}",
        run.stdout
    );
    if !shadow_first.is_empty() {
        assert!(
            !run.stdout
                .contains(shadow_first.lines().next().unwrap_or("root:"))
        );
    }
    assert_eq!(run.stdout.matches("DENIED").count(), 4, "{}", run.stdout);
    still_works();
}

#[test]
fn writes_only_inside_the_writable_dir() {
    let (dir, _, _) = secret_outside();
    let outside = dir.path().join("planted.txt");
    let writable = tempfile::tempdir().expect("tempdir");
    let t = Tool::new(
        "shell",
        "echo inside > \"$TOKA_WRITABLE_DIRS/inside.txt\" && echo wrote-inside\n\
         echo planted > \"$2\" && echo wrote-outside\n\
         echo home > \"$HOME/scratch.txt\" && echo wrote-home\n\
         echo \"workdir=$TOKA_WORKDIR\"\n",
        "filesystem-write",
        &format!("{{ writable_paths: ['{}'] }}", writable.path().display()),
    );
    let reach = format!("filesystem-write={}", writable.path().display());
    let run = t.run(&[
        "--grant",
        &reach,
        "--param",
        &format!("path={}", outside.display()),
    ]);
    assert!(
        run.stdout.contains("wrote-inside") && run.stdout.contains("wrote-home"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("wrote-outside"), "{}", run.stdout);
    assert!(!outside.exists(), "a file was planted outside the grant");
    assert_eq!(
        std::fs::read_to_string(writable.path().join("inside.txt")).expect("written"),
        "inside\n"
    );
    let workdir = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("workdir="))
        .expect("workdir printed");
    assert!(!Path::new(workdir).exists(), "{workdir} was not removed");
    still_works();
}

#[test]
fn network_is_off_unless_granted_and_then_only_to_allowed_hosts() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    // Same port, another loopback address: not granted.
    let other_host = std::net::TcpListener::bind(("127.0.0.2", port)).expect("bind 127.0.0.2");
    other_host.set_nonblocking(true).expect("nonblocking");
    let script = "if exec 3<>\"/dev/tcp/$2/$4\"; then echo connected; else echo refused; fi\n";
    let connect = |tool: &Tool, grant: bool, host: &str, port: u16| {
        let mut args = vec![
            "--param".to_string(),
            format!("host={host}"),
            "--param".into(),
            format!("port={port}"),
        ];
        if grant {
            args.extend(["--grant".to_string(), "network-access".to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = tool.run(&args);
        run.assert_code(0);
        run.stdout.trim().to_string()
    };
    let would_block = |l: &std::net::TcpListener| matches!(l.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);

    let closed = Tool::new("shell", script, "", "{}");
    assert_eq!(connect(&closed, false, "127.0.0.1", port), "refused");
    assert!(would_block(&listener));

    let open = Tool::new(
        "shell",
        script,
        "network-access",
        &format!("{{ allow_network: true, allowed_hosts: ['127.0.0.1:{port}'] }}"),
    );
    assert_eq!(connect(&open, true, "127.0.0.1", port), "connected");
    assert!(listener.accept().is_ok(), "the granted connection arrived");
    // The granted port on another host, and another port on the granted
    // host, stay closed.
    assert_eq!(connect(&open, true, "127.0.0.2", port), "refused");
    assert!(would_block(&other_host));
    let other_port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let other_port = other_port.local_addr().expect("addr").port();
    assert_eq!(connect(&open, true, "127.0.0.1", other_port), "refused");
    still_works();
}

#[test]
fn background_processes_do_not_outlive_the_call() {
    let marker = format!("41{}", std::process::id());
    let t = Tool::new(
        "shell",
        &format!("sleep {marker} &\nsetsid sleep {marker} &\necho started\n"),
        "process-execution",
        "{}",
    );
    t.run(&["--grant", "process-execution"])
        .assert_code(0)
        .assert_stdout_has("started");
    let left = processes_with(&format!("sleep {marker}"));
    assert!(left.is_empty(), "left behind: {left:?}");
    still_works();
}

#[test]
fn output_flood_is_capped_and_host_memory_bounded() {
    let t = Tool::new(
        "python",
        "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(100):\n    sys.stdout.write(chunk)\n",
        "",
        "{ output_limit: 1MiB, timeout: 20s }",
    );
    let run = t.run(&[]);
    run.assert_code(124)
        .assert_stderr_has("output limit of 1MiB exceeded");
    assert!(
        run.peak_rss_kib < 150 * 1024,
        "host peaked at {} KiB",
        run.peak_rss_kib
    );
    still_works();
}

#[test]
fn parameters_arrive_literally() {
    let hostile = "; rm -rf / $(touch /tmp/pwned) `id` 'single' \"double\"\nsecond line";
    let t = Tool::new(
        "python",
        "import json, sys\nprint(json.dumps({'argv': sys.argv[1:], 'stdin': json.loads(sys.stdin.read())}))\n",
        "",
        "{}",
    );
    let input = serde_json::json!({ "evil": hostile, "n": 3 }).to_string();
    let run = t.run(&["--input", &input, "--json"]);
    run.assert_code(0);
    let v = run.json();
    let out: serde_json::Value =
        serde_json::from_str(v["output"].as_str().expect("text output")).expect("json");
    assert_eq!(
        out["argv"],
        serde_json::json!(["--evil", hostile, "--n", "3"])
    );
    assert_eq!(out["stdin"]["evil"], hostile);
    assert!(!Path::new("/tmp/pwned").exists());
    still_works();
}

#[test]
fn host_secrets_are_absent() {
    let t = Tool::new(
        "shell",
        "compgen -e | sort | tr '\\n' ' '\n",
        "process-execution",
        "{ env: [TOKA_TEST_PASSED] }",
    );
    let run = toka(["run", &t.path(), "--grant", "process-execution"])
        .env("TOKA_TEST_SECRET", "hunter2")
        .env("TOKA_TEST_PASSED", "visible")
        .run();
    run.assert_code(0);
    assert!(!run.stdout.contains("TOKA_TEST_SECRET"), "{}", run.stdout);
    assert!(run.stdout.contains("TOKA_TEST_PASSED"), "{}", run.stdout);
    still_works();
}

#[test]
fn pinned_hash_is_enforced_and_vet_repins() {
    let t = Tool::new("shell", "echo vetted\n", "", "{}");
    t.run(&[]).assert_code(0).assert_stdout_has("vetted");
    let script = t.dir.path().join("tool.sh");
    std::fs::write(&script, "echo tampered\n").expect("tamper");
    let actual = sha256(b"echo tampered\n");
    let vetted = sha256(b"echo vetted\n");
    let run = t.run(&[]);
    run.assert_code(125)
        .assert_stderr_has(&actual)
        .assert_stderr_has(&vetted)
        .assert_stderr_has(&format!("toka-host tools vet {} --write", t.path()));
    assert!(!run.stdout.contains("tampered"));
    // A CI gate: a file that differs from its pin fails `tools vet`.
    toka(["tools", "vet", &t.path()])
        .run()
        .assert_code(125)
        .assert_stdout_has(&actual)
        .assert_stdout_has("differs from the pin");
    toka(["tools", "vet", &t.path(), "--write"])
        .run()
        .assert_code(0)
        .assert_stdout_has("pinned");
    toka(["tools", "vet", &t.path()])
        .run()
        .assert_code(0)
        .assert_stdout_has("matches the pin");
    t.run(&[]).assert_code(0).assert_stdout_has("tampered");
    still_works();
}

#[test]
fn interpreters_come_from_the_allowlist() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("t.sh"), "echo hi\n").expect("write");
    let digest = sha256(b"echo hi\n");
    let manifest = dir.path().join("t.yaml");
    std::fs::write(
        &manifest,
        format!(
            "metadata: {{ name: t, version: 1.0.0, description: t }}\n\
             spec: {{ executable: {{ type: shell, interpreter: zsh, path: t.sh, sha256: {digest} }} }}\n"
        ),
    )
    .expect("write");
    toka(["run", &manifest.display().to_string()])
        .run()
        .assert_code(125)
        .assert_stderr_has("needs interpreter `zsh`, which is not allowed");
    // A fake `bash` early in PATH is never used.
    let fake = dir.path().join("bin");
    std::fs::create_dir(&fake).expect("mkdir");
    std::fs::write(fake.join("bash"), "#!/bin/sh\necho FAKE\n").expect("write");
    std::fs::set_permissions(
        fake.join("bash"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let t = Tool::new("shell", "echo real bash $BASH_VERSION\n", "", "{}");
    toka(["run", &t.path()])
        .env("PATH", &format!("{}:/usr/bin:/bin", fake.display()))
        .run()
        .assert_code(0)
        .assert_stdout_has("real bash");
}

#[test]
fn seed_tools_work() {
    let run = toka(["run", "validate-env", "--json"]).run();
    run.assert_code(0);
    let v = run.json();
    assert_eq!(
        v["output"]["found"]["bash"]
            .as_str()
            .map(|p| p.starts_with('/')),
        Some(true),
        "{v}"
    );

    // setup-toka-testing writes only inside its writable directory: run a
    // copy of its manifest whose writable directory is a scratch folder.
    let scratch = tempfile::tempdir().expect("tempdir");
    let original =
        std::fs::read_to_string(repo().join("manifests/setup-toka-testing.yaml")).expect("read");
    let copy = original
        .replace(
            "../scripts/tools/setup-toka-testing.sh",
            &repo()
                .join("scripts/tools/setup-toka-testing.sh")
                .display()
                .to_string(),
        )
        .replace(
            "[\"./scratch\"]",
            &format!("[\"{}\"]", scratch.path().display()),
        );
    let manifest = scratch.path().join("setup.yaml");
    std::fs::write(&manifest, copy).expect("write");
    let m = manifest.display().to_string();
    let run = toka([
        "run",
        &m,
        "--grant",
        "filesystem-write",
        "--grant",
        "process-execution",
        "--param",
        "name=demo",
    ])
    .run();
    run.assert_code(0).assert_stdout_has("\"workspace\"");
    for sub in ["src", "fixtures", "out", "README.md"] {
        assert!(scratch.path().join("demo").join(sub).exists(), "{sub}");
    }
    toka([
        "run",
        &m,
        "--grant",
        "filesystem-write",
        "--grant",
        "process-execution",
        "--param",
        "name=../escape",
    ])
    .run()
    .assert_code(1);
    assert!(!scratch.path().join("escape").exists());
}

#[test]
fn generated_manifests_are_current() {
    let out = std::process::Command::new("python3")
        .arg(repo().join("scripts/generate-tool-manifests.py"))
        .arg("--check")
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn external_binaries_run_from_their_vetted_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let echo = dir.path().join("echo");
    std::fs::copy("/bin/echo", &echo).expect("copy /bin/echo");
    let digest = sha256(&std::fs::read(&echo).expect("read"));
    let manifest = dir.path().join("echo.yaml");
    std::fs::write(
        &manifest,
        format!(
            "metadata: {{ name: echo, version: 1.0.0, description: echoes }}\n\
             spec: {{ executable: {{ type: external, path: echo, sha256: {digest} }} }}\n"
        ),
    )
    .expect("write");
    toka([
        "run",
        &manifest.display().to_string(),
        "--param",
        "word=$(id)",
    ])
    .run()
    .assert_code(0)
    .assert_stdout_has("--word $(id)");
    still_works();
}

#[test]
fn without_landlock_the_tool_is_refused_unless_the_operator_accepts_less() {
    let t = Tool::new("shell", "echo ran\n", "", "{}");
    toka(["run", &t.path()])
        .env("TOKA_SIMULATE_NO_LANDLOCK", "1")
        .run()
        .assert_code(125)
        .assert_stderr_has("does not offer Landlock")
        .assert_stderr_has("--allow-weaker-sandbox");
    toka(["run", &t.path(), "--allow-weaker-sandbox"])
        .env("TOKA_SIMULATE_NO_LANDLOCK", "1")
        .run()
        .assert_code(0)
        .assert_stdout_has("ran")
        .assert_stderr_has("WEAKER SANDBOX");
}
