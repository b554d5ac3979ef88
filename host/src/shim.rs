//! The subprocess shim: runs shell, Python and external tools as real
//! processes under the same policy language as wasm tools.
//!
//! One call: check the file against its pinned hash and run a private copy
//! of exactly those bytes; resolve the interpreter from the allowlist
//! (absolute paths found once, never `PATH`); pass parameters as separate
//! argv entries and the JSON input on stdin (never a shell string); clear the
//! environment; work in a fresh private directory; and confine the process
//! tree with Landlock, a new network namespace, rlimits, `no_new_privs` and a
//! pids cgroup ([`isolate`]). When the tool exits, times out or floods its
//! output, every process it left behind is killed and reaped.

pub mod isolate;

use crate::manifest::{ExecutableKind, OutputFormat, Sha256Hex, ToolSpec};
use crate::outcome::{CallError, LimitExceeded, Outcome, Output, ToolErrorKind, Usage};
use crate::policy::Policy;
use crate::sandbox::{EventSink, HostEvent, LogLevel, OutputBudget};
use isolate::{ChildSetup, FsRules, PidsCgroup, Rlimits, Support};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Where interpreters are looked for, once, in this order. Never `PATH`,
/// never a version manager's shims.
pub const INTERPRETER_DIRS: [&str; 3] = ["/usr/bin", "/bin", "/usr/local/bin"];
/// Interpreters allowed by default.
pub const DEFAULT_INTERPRETERS: [&str; 3] = ["bash", "sh", "python3"];
/// Processes one call's tree may hold at once, unless configured.
pub const DEFAULT_MAX_PROCESSES: u32 = 64;
/// `PATH` inside the tool: system directories only.
const TOOL_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The interpreter allowlist, resolved to absolute, canonical paths.
#[derive(Debug, Clone)]
pub struct Interpreters(BTreeMap<String, PathBuf>);

impl Interpreters {
    /// Finds the default interpreters in [`INTERPRETER_DIRS`].
    pub fn system() -> Interpreters {
        let mut map = BTreeMap::new();
        for name in DEFAULT_INTERPRETERS {
            for dir in INTERPRETER_DIRS {
                let candidate = Path::new(dir).join(name);
                if let Ok(real) = candidate.canonicalize()
                    && real.is_file()
                {
                    map.insert(name.to_string(), real);
                    break;
                }
            }
        }
        Interpreters(map)
    }

    /// Adds or replaces `name` with the program at `path` (absolute).
    ///
    /// # Errors
    ///
    /// When `path` is relative or not an executable file.
    pub fn with(mut self, name: &str, path: &Path) -> Result<Interpreters, String> {
        if !path.is_absolute() {
            return Err(format!(
                "interpreter `{name}`: {} is not an absolute path; interpreters are never looked up through PATH",
                path.display()
            ));
        }
        let real = path
            .canonicalize()
            .map_err(|e| format!("interpreter `{name}`: {}: {e}", path.display()))?;
        let executable = std::fs::metadata(&real)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        if !executable {
            return Err(format!(
                "interpreter `{name}`: {} is not an executable file",
                real.display()
            ));
        }
        self.0.insert(name.to_string(), real);
        Ok(self)
    }

    /// The resolved path of `name`.
    pub fn get(&self, name: &str) -> Option<&Path> {
        self.0.get(name).map(PathBuf::as_path)
    }

    /// The allowed names.
    pub fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// How the shim runs.
#[derive(Debug, Clone)]
pub struct ShimOptions {
    /// The interpreter allowlist.
    pub interpreters: Interpreters,
    /// Run even where Landlock, the pids cgroup or a network namespace is
    /// unavailable (with a loud warning).
    pub allow_weaker_sandbox: bool,
    /// Processes the tree may hold at once.
    pub max_processes: u32,
}

impl Default for ShimOptions {
    fn default() -> Self {
        ShimOptions {
            interpreters: Interpreters::system(),
            allow_weaker_sandbox: false,
            max_processes: DEFAULT_MAX_PROCESSES,
        }
    }
}

/// Why a subprocess tool was not run.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// The file differs from what was vetted.
    #[error(
        "tool `{tool}`: {}",
        crate::manifest::pin_mismatch(manifest, path, actual, expected)
    )]
    HashMismatch {
        /// The tool.
        tool: String,
        /// The file.
        path: PathBuf,
        /// The manifest.
        manifest: PathBuf,
        /// The pin.
        expected: Sha256Hex,
        /// What the file has.
        actual: Sha256Hex,
    },
    /// The interpreter is not on the allowlist or not installed.
    #[error(
        "tool `{tool}` needs interpreter `{name}`, which is not allowed or not installed (allowed here: {allowed}); install it under /usr/bin or allow it with --interpreter {name}=/absolute/path"
    )]
    Interpreter {
        /// The tool.
        tool: String,
        /// The interpreter.
        name: String,
        /// What is allowed.
        allowed: String,
    },
    /// Part of the isolation is unavailable and the operator did not accept
    /// a weaker sandbox.
    #[error(
        "refusing to run `{tool}`: {what}; the tool would run less isolated than its policy says. Fix the host, or pass --allow-weaker-sandbox to run it anyway"
    )]
    Weaker {
        /// The tool.
        tool: String,
        /// What is missing.
        what: String,
    },
    /// The input cannot be turned into arguments.
    #[error("{0}")]
    Input(String),
    /// The process could not be prepared or started.
    #[error("cannot start `{tool}`: {message}")]
    Spawn {
        /// The tool.
        tool: String,
        /// What failed.
        message: String,
    },
}

/// Runs one call of the subprocess tool `spec` under `policy`, with JSON
/// `input` (an object). Warnings about a weaker sandbox go to `events`.
///
/// # Errors
///
/// [`ShimError`] when the tool is refused before it starts; everything that
/// happens once it runs is in the [`Outcome`].
pub async fn run(
    spec: &ToolSpec,
    policy: &Policy,
    input: &str,
    options: &ShimOptions,
    events: &EventSink,
) -> Result<Outcome, ShimError> {
    let tool = spec.name.to_string();
    let exe = &spec.executable;
    let spawn_err = |message: String| ShimError::Spawn {
        tool: tool.clone(),
        message,
    };
    let bytes =
        std::fs::read(&exe.path).map_err(|e| spawn_err(format!("{}: {e}", exe.path.display())))?;
    let actual = Sha256Hex::of(&bytes);
    if let Some(expected) = &exe.sha256
        && *expected != actual
    {
        return Err(ShimError::HashMismatch {
            tool,
            path: exe.path.clone(),
            manifest: spec.manifest.clone(),
            expected: expected.clone(),
            actual,
        });
    }
    let interpreter = match exe.kind {
        ExecutableKind::Shell | ExecutableKind::Python => {
            let name = exe.interpreter.clone().unwrap_or_else(|| {
                if exe.kind == ExecutableKind::Python {
                    "python3"
                } else {
                    "bash"
                }
                .to_string()
            });
            let path = options
                .interpreters
                .get(&name)
                .ok_or_else(|| ShimError::Interpreter {
                    tool: tool.clone(),
                    name: name.clone(),
                    allowed: options.interpreters.names().join(", "),
                })?;
            Some(path.to_path_buf())
        }
        _ => None,
    };
    let args = input_args(input)?;

    let weaker = |what: String| -> Result<(), ShimError> {
        if options.allow_weaker_sandbox {
            (events)(
                &tool,
                HostEvent::Log {
                    level: LogLevel::Warn,
                    message: &format!(
                        "WEAKER SANDBOX: {what}; running anyway because --allow-weaker-sandbox was given"
                    ),
                },
            );
            Ok(())
        } else {
            Err(ShimError::Weaker {
                tool: tool.clone(),
                what: what.clone(),
            })
        }
    };
    let support = Support::probe();
    if support.landlock_abi == 0 {
        weaker("this kernel does not offer Landlock, so file access cannot be confined".into())?;
    }

    // A private directory holding the vetted bytes: the interpreter runs the
    // copy, so swapping the file after the hash check changes nothing.
    let work = tempfile::Builder::new()
        .prefix("toka-shim-")
        .tempdir_in(work_root())
        .map_err(|e| spawn_err(format!("cannot create a work directory: {e}")))?;
    let file_name = exe
        .path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "tool".into());
    let copy = work.path().join(&file_name);
    std::fs::write(&copy, &bytes)
        .and_then(|()| std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o500)))
        .map_err(|e| spawn_err(format!("cannot copy the tool: {e}")))?;
    let workdir = work.path().join("work");
    std::fs::create_dir(&workdir)
        .map_err(|e| spawn_err(format!("cannot create the work directory: {e}")))?;

    let (program, mut argv) = match &interpreter {
        Some(i) => (i.clone(), vec![copy.clone().into_os_string()]),
        None => (copy.clone(), Vec::new()),
    };
    argv.extend(args.into_iter().map(Into::into));

    let readonly: Vec<PathBuf> = policy
        .preopens
        .iter()
        .filter(|p| !p.writable)
        .map(|p| p.host.clone())
        .collect();
    let writable: Vec<PathBuf> = policy
        .preopens
        .iter()
        .filter(|p| p.writable)
        .map(|p| p.host.clone())
        .collect();
    let join = |v: &[PathBuf]| {
        v.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    };
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), TOOL_PATH.into()),
        ("HOME".into(), workdir.display().to_string()),
        ("TMPDIR".into(), workdir.display().to_string()),
        ("LANG".into(), "C.UTF-8".into()),
        ("TOKA_TOOL".into(), tool.clone()),
        ("TOKA_WORKDIR".into(), workdir.display().to_string()),
        ("TOKA_READONLY_DIRS".into(), join(&readonly)),
        ("TOKA_WRITABLE_DIRS".into(), join(&writable)),
    ];
    for (k, v) in &policy.env {
        env.retain(|(existing, _)| existing != k);
        env.push((k.clone(), v.clone()));
    }

    let may_exec = policy
        .capabilities
        .contains(&crate::manifest::Capability::ProcessExecution);
    let mut rules = FsRules::default();
    for lib in ["/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/libexec"] {
        rules.read_exec.push(lib.into());
    }
    if let Some(i) = &interpreter {
        rules.read_exec.push(i.clone());
        rules.read.push(copy.clone());
    } else {
        rules.read_exec.push(copy.clone());
    }
    if may_exec {
        for dir in ["/usr", "/bin", "/sbin"] {
            rules.read_exec.push(dir.into());
        }
    } else {
        for dir in ["/usr", "/bin", "/sbin"] {
            rules.read.push(dir.into());
        }
    }
    for f in [
        "/etc/ld.so.cache",
        "/etc/ld.so.conf",
        "/etc/ld.so.conf.d",
        "/etc/localtime",
        "/etc/alternatives",
        "/dev/urandom",
        "/dev/random",
    ] {
        rules.read.push(f.into());
    }
    rules.read.extend(readonly.iter().cloned());
    rules.read_write.push(workdir.clone());
    rules.read_write.extend(writable.iter().cloned());
    rules.read_write.push("/dev/null".into());
    rules.read_write.push("/dev/zero".into());
    let network = !policy.network.rules.is_empty();
    rules.connect_ports = if network {
        let ports: Option<Vec<u16>> = policy.network.rules.iter().map(|r| r.port).collect();
        ports
    } else {
        Some(Vec::new())
    };
    let landlock = if support.landlock_abi > 0 {
        Some(isolate::landlock_ruleset(&rules).map_err(spawn_err)?)
    } else {
        None
    };

    let netns_fd = if network {
        None
    } else {
        match isolate::empty_netns() {
            Ok(fd) => Some(fd),
            Err(why) => {
                weaker(format!("the tool cannot be cut off the network ({why})"))?;
                None
            }
        }
    };

    static CALLS: AtomicU64 = AtomicU64::new(0);
    let cg_name = format!(
        "call-{}-{}",
        std::process::id(),
        CALLS.fetch_add(1, Ordering::Relaxed)
    );
    let cgroup = match PidsCgroup::create(&cg_name, options.max_processes) {
        Ok(cg) => Some(cg),
        Err(why) => {
            weaker(format!("no process-count limit is possible ({why})"))?;
            None
        }
    };

    let limits = policy.limits;
    let cpu_share = f64::from(limits.cpu_percent.unwrap_or(100)) / 100.0;
    let cpu_secs = (limits.timeout.as_secs_f64() * cpu_share).ceil().max(1.0) as u64;
    let setup = ChildSetup {
        rlimits: Rlimits {
            cpu_secs,
            address_space: limits.memory.max(64 << 20),
            file_size: limits.output.max(64 << 20),
            open_files: 256,
            processes: u64::from(options.max_processes),
        },
        cgroup_procs_fd: cgroup.as_ref().map(PidsCgroup::procs_fd),
        netns_fd,
        landlock,
        last_cap: isolate::last_cap(),
    };

    let mut cmd = Command::new(&program);
    cmd.args(&argv)
        .env_clear()
        .envs(env)
        .current_dir(&workdir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut setup = Some(setup);
    // SAFETY: the closure runs in the forked child before exec and only
    // makes system calls on values prepared above (see `ChildSetup::apply`).
    unsafe {
        cmd.pre_exec(move || match setup.as_mut() {
            Some(s) => s.apply(),
            None => Err(std::io::Error::from_raw_os_error(libc::EINVAL)),
        });
    }

    static SUBREAPER: std::sync::Once = std::sync::Once::new();
    SUBREAPER.call_once(isolate::become_subreaper);
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            if let Some(cg) = cgroup {
                cg.kill_all(0);
            }
            let hint = if e.raw_os_error() == Some(libc::EPERM) {
                " (creating a network namespace or a cgroup needs root or CAP_SYS_ADMIN)"
            } else {
                ""
            };
            return Err(spawn_err(format!("{e}{hint}")));
        }
    };
    let pid = child.id() as i32;
    isolate::track_main(pid, true);

    let budget = OutputBudget::new(limits.output);
    let over = Arc::new(tokio::sync::Notify::new());
    let drain = |pipe: Option<std::io::Result<Box<dyn AsyncRead + Send + Unpin>>>| {
        let budget = budget.clone();
        let over = over.clone();
        tokio::spawn(async move {
            let mut out = Vec::new();
            let Some(Ok(mut pipe)) = pipe else { return out };
            let mut chunk = vec![0u8; 16 * 1024];
            loop {
                match pipe.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => match budget.charge(n) {
                        Ok(()) => out.extend_from_slice(&chunk[..n]),
                        Err(fits) => {
                            out.extend_from_slice(&chunk[..fits]);
                            over.notify_one();
                            break;
                        }
                    },
                }
            }
            out
        })
    };
    let stdout_reader = drain(child.stdout.take().map(|p| {
        tokio::process::ChildStdout::from_std(p)
            .map(|p| Box::new(p) as Box<dyn AsyncRead + Send + Unpin>)
    }));
    let stderr_reader = drain(child.stderr.take().map(|p| {
        tokio::process::ChildStderr::from_std(p)
            .map(|p| Box::new(p) as Box<dyn AsyncRead + Send + Unpin>)
    }));
    if let Some(Ok(mut stdin)) = child.stdin.take().map(tokio::process::ChildStdin::from_std) {
        let input = input.as_bytes().to_vec();
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }
    let exit = isolate::ExitWatch::new(pid);

    enum End {
        Exited,
        Timeout,
        Output,
    }
    let end = tokio::select! {
        () = exit.exited() => End::Exited,
        () = tokio::time::sleep(limits.timeout) => End::Timeout,
        () = over.notified() => End::Output,
    };

    // Whatever happened, nothing the tool started outlives the call: the
    // cgroup holds the whole tree (even what left the process group), and
    // the process group is the fallback where there is no cgroup.
    if let Some(cg) = cgroup {
        cg.kill_all(pid);
    }
    // SAFETY: the group id is the child's pid (process_group(0)).
    unsafe {
        libc::killpg(pid, libc::SIGKILL);
    }
    if !matches!(end, End::Exited) {
        let _ = tokio::time::timeout(Duration::from_secs(5), exit.exited()).await;
    }
    let reaped = exit.reap();
    let (status, maxrss) = match reaped {
        Some((s, m)) => (Some(s), m),
        None => (None, 0),
    };
    isolate::track_main(pid, false);
    isolate::reap_orphans();
    let wall_time = start.elapsed();
    let stdout = stdout_reader.await.unwrap_or_default();
    let stderr = stderr_reader.await.unwrap_or_default();
    for line in String::from_utf8_lossy(&stderr).lines() {
        (events)(
            &tool,
            HostEvent::Log {
                level: LogLevel::Info,
                message: line,
            },
        );
    }
    drop(work);

    let usage = Usage {
        fuel_consumed: 0,
        peak_memory: u64::try_from(maxrss).unwrap_or(0).saturating_mul(1024),
        wall_time,
        output_bytes: budget.used(),
    };
    let limit = |limit| {
        Err(CallError::Limit {
            tool: tool.clone(),
            limit,
        })
    };
    let result = match (end, status) {
        (End::Timeout, _) => limit(LimitExceeded::Timeout {
            limit: limits.timeout,
        }),
        (End::Output, _) => limit(LimitExceeded::Output {
            limit: limits.output,
        }),
        (End::Exited, None) => limit(LimitExceeded::Timeout {
            limit: limits.timeout,
        }),
        (End::Exited, Some(s)) if libc::WIFEXITED(s) && libc::WEXITSTATUS(s) == 0 => {
            let text = String::from_utf8_lossy(&stdout).into_owned();
            match exe.output {
                OutputFormat::Text => Ok(Output::Text(text)),
                OutputFormat::Json => match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(v) => Ok(Output::Tool(v.to_string())),
                    Err(e) => Err(CallError::BadResult {
                        tool: tool.clone(),
                        message: e.to_string(),
                    }),
                },
            }
        }
        (End::Exited, Some(s)) if libc::WIFEXITED(s) => {
            let tail = tail(&stderr, 400);
            Err(CallError::Tool {
                tool: tool.clone(),
                kind: ToolErrorKind::Failed,
                message: format!(
                    "exited with code {}{}",
                    libc::WEXITSTATUS(s),
                    if tail.is_empty() {
                        String::new()
                    } else {
                        format!(": {tail}")
                    }
                ),
            })
        }
        (End::Exited, Some(s)) => {
            let sig = libc::WTERMSIG(s);
            if sig == libc::SIGXCPU || (sig == libc::SIGKILL && wall_time.as_secs() >= cpu_secs) {
                limit(LimitExceeded::Cpu {
                    limit: Duration::from_secs(cpu_secs),
                })
            } else {
                Err(CallError::Trap {
                    tool: tool.clone(),
                    message: format!(
                        "killed by signal {sig}{}",
                        match sig {
                            libc::SIGSEGV => " (SIGSEGV: it crashed, or hit the memory limit)",
                            libc::SIGABRT => " (SIGABRT)",
                            libc::SIGKILL => " (SIGKILL)",
                            _ => "",
                        }
                    ),
                })
            }
        }
    };
    Ok(Outcome { result, usage })
}

/// Where per-call work directories go: `/dev/shm` (tmpfs: creating and
/// removing a directory there costs a fraction of a disk filesystem) when it
/// is a writable directory, else the system's temporary directory.
fn work_root() -> PathBuf {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let writable = std::fs::metadata(shm)
            .map(|m| m.is_dir() && m.permissions().mode() & 0o002 != 0)
            .unwrap_or(false);
        if writable {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    })
    .clone()
}

/// Turns a JSON object into `--key value` arguments, sorted by key.
/// Strings go as they are; other values as JSON text; `null` and `false`
/// are left out, and `true` is a bare `--key`.
///
/// # Errors
///
/// When the input is not a JSON object.
pub fn input_args(input: &str) -> Result<Vec<String>, ShimError> {
    let value: serde_json::Value = serde_json::from_str(input)
        .map_err(|e| ShimError::Input(format!("the input is not JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| ShimError::Input("the input must be a JSON object".into()))?;
    let mut args = Vec::new();
    for (k, v) in obj {
        match v {
            serde_json::Value::Null | serde_json::Value::Bool(false) => {}
            serde_json::Value::Bool(true) => args.push(format!("--{k}")),
            serde_json::Value::String(s) => {
                args.push(format!("--{k}"));
                args.push(s.clone());
            }
            other => {
                args.push(format!("--{k}"));
                args.push(other.to_string());
            }
        }
    }
    Ok(args)
}

fn tail(bytes: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim();
    if s.len() <= max {
        s.to_string()
    } else {
        let mut start = s.len() - max;
        while !s.is_char_boundary(start) {
            start += 1;
        }
        format!("…{}", &s[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_separate_and_literal() {
        let args = input_args(r#"{"name":"; rm -rf / $(id) `id` \"q\"\nx","n":3,"flag":true,"off":false,"nothing":null,"list":[1,2]}"#).unwrap();
        assert_eq!(
            args,
            [
                "--flag",
                "--list",
                "[1,2]",
                "--n",
                "3",
                "--name",
                "; rm -rf / $(id) `id` \"q\"\nx",
            ]
        );
        assert!(input_args("[1]").is_err());
    }

    #[test]
    fn interpreters_are_absolute() {
        let i = Interpreters::system();
        let bash = i.get("bash").expect("bash is installed");
        assert!(bash.is_absolute());
        assert!(i.clone().with("x", Path::new("bash")).is_err());
        assert!(i.with("x", Path::new("/nonexistent")).is_err());
    }
}
