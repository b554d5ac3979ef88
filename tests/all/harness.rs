//! Drives the real `toka-host` binary: spawns it with a clean environment,
//! feeds stdin, collects stdout/stderr, and kills it if it outlives a
//! watchdog (a hung host must fail its test, not the whole suite).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The watchdog: far above any limit the tests set.
const WATCHDOG: Duration = Duration::from_secs(60);

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Largest resident set of the toka-host process seen while it ran, KiB.
    pub peak_rss_kib: u64,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON value ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn assert_stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\nstderr:\n{}\nstdout:\n{}",
            self.stderr,
            self.stdout
        );
        self
    }

    #[track_caller]
    pub fn assert_stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// Path of a built plugin, e.g. `plugin("hello")` → plugins/build/hello.wasm.
pub fn plugin(name: &str) -> String {
    let p = repo().join("plugins/build").join(format!("{name}.wasm"));
    assert!(
        p.is_file(),
        "{} is missing: build the plugins first with scripts/build-plugins.sh",
        p.display()
    );
    p.display().to_string()
}

/// A compile cache shared by the tests that do not test the cache itself.
pub fn shared_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("toka-test-cache")
}

/// Compiles the big interpreter-carrying components (Python, JavaScript:
/// several seconds each) into the shared cache once, before any test uses
/// them, so that parallel tests do not all compile them at once on a cold
/// cache and run into their watchdogs.
pub fn warm_shared_cache() {
    static WARM: std::sync::Once = std::sync::Once::new();
    WARM.call_once(|| {
        let runs: [&[&str]; 4] = [
            &["run", "text-stats-py", "--param", "text=warm"],
            &["run", "text-stats-js", "--param", "text=warm"],
            &["exec", "--lang", "python", "pass"],
            &["exec", "--lang", "js", "0"],
        ];
        for args in runs {
            let _ = Command::new(env!("CARGO_BIN_EXE_toka-host"))
                .args(args)
                .current_dir(repo())
                .env("TOKA_CACHE_DIR", shared_cache())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    });
}

/// Builder for one run.
pub struct Toka {
    args: Vec<String>,
    stdin: Vec<u8>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    cache: Option<PathBuf>,
}

pub fn toka<I, S>(args: I) -> Toka
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    Toka {
        args: args.into_iter().map(|a| a.as_ref().to_string()).collect(),
        stdin: Vec::new(),
        env: Vec::new(),
        cwd: repo(),
        cache: Some(shared_cache()),
    }
}

impl Toka {
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = bytes.into();
        self
    }

    /// Run in `dir` instead of the repository's root.
    pub fn cwd(mut self, dir: &std::path::Path) -> Self {
        self.cwd = dir.to_path_buf();
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Use this cache directory instead of the shared one (`None`: no
    /// `TOKA_CACHE_DIR`, so the host's default applies).
    pub fn cache(mut self, dir: Option<PathBuf>) -> Self {
        self.cache = dir;
        self
    }

    pub fn run(self) -> Run {
        if self.cache.as_ref() == Some(&shared_cache()) {
            warm_shared_cache();
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_toka-host"));
        cmd.args(&self.args)
            .current_dir(&self.cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(c) = &self.cache {
            cmd.env("TOKA_CACHE_DIR", c);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn toka-host");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = self.stdin.clone();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let mut out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let out_t = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = out.read_to_end(&mut b);
            b
        });
        let err_t = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = err.read_to_end(&mut b);
            b
        });
        let start = Instant::now();
        let status_file = format!("/proc/{}/status", child.id());
        let mut peak_rss_kib = 0;
        let status = loop {
            if let Ok(status) = std::fs::read_to_string(&status_file)
                && let Some(kib) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_rss_kib = peak_rss_kib.max(kib);
            }
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if start.elapsed() > WATCHDOG {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "toka-host {:?} did not finish within {WATCHDOG:?}",
                    self.args
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let _ = writer.join();
        let stdout = String::from_utf8_lossy(&out_t.join().expect("stdout thread")).into_owned();
        let stderr = String::from_utf8_lossy(&err_t.join().expect("stderr thread")).into_owned();
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr,
            peak_rss_kib,
        }
    }
}

/// After something hostile, a normal call in the same test still works.
#[track_caller]
pub fn hello_still_works() {
    toka(["run", "hello", "--param", "name=Ada"])
        .run()
        .assert_code(0)
        .assert_stdout_has(r#"{"greeting":"Hello, Ada!"}"#);
}

/// A scratch directory with a file the host can read but the guest must
/// not: returns (dir, path of the secret, the secret's content).
pub fn secret_outside() -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret.txt");
    let content = format!("top secret {}", std::process::id());
    std::fs::write(&secret, &content).expect("write secret");
    // The denial below is only meaningful if the host could read it.
    assert_eq!(
        std::fs::read_to_string(&secret).expect("host reads it"),
        content
    );
    (dir, secret, content)
}

/// CPU seconds (user + system) process `pid` used during `window` (0 if
/// it is gone).
pub fn cpu_seconds(pid: u32, window: Duration) -> f64 {
    let ticks = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, r)| r)
            .split_whitespace()
            .collect();
        let n = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        n(11) + n(12)
    };
    let before = ticks();
    std::thread::sleep(window);
    (ticks() - before) / 100.0
}
