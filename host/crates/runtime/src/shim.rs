//! The subprocess shim: runs shell, Python and external tools as real
//! processes under the same policy language as wasm tools.
//!
//! One call: run a private copy of exactly the vetted bytes (checked against
//! their pin when the tool was loaded); resolve the interpreter from the allowlist
//! (absolute paths found once, never `PATH`); pass parameters as separate
//! argv entries and the JSON input on stdin (never a shell string); clear the
//! environment; work in a fresh private directory; and confine the process
//! tree with Landlock, a new network namespace, rlimits, `no_new_privs` and a
//! pids cgroup ([`isolate`]). When the tool exits, times out or floods its
//! output, every process it left behind is killed and reaped.

mod connect_filter;
pub mod isolate;
mod spawn;

use crate::budget::OutputBudget;
use crate::catalog::Script;
use crate::events::{EventSink, HostEvent};
use isolate::{ChildSetup, FsRules, PidsCgroup, Rlimits, Support, system};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use toka_spec::manifest::{Capability, ExecutableKind, OutputFormat, ToolSpec};
use toka_spec::outcome::{CallError, LimitExceeded, LogLevel, Output, ToolErrorKind, Usage};
use toka_spec::policy::Policy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// Runs one call of the subprocess tool `spec` (whose vetted bytes are
/// `script`) under `policy`, with JSON `input` (an object). Warnings about a
/// weaker sandbox go to `events`.
///
/// Everything, including a refusal before the process starts, is in the
/// returned result; only the call path ([`crate::call`]) calls this.
pub async fn run(
    spec: &ToolSpec,
    script: &Script,
    policy: &Policy,
    input: &serde_json::Value,
    options: &ShimOptions,
    events: &EventSink,
) -> (Result<Output, CallError>, Usage) {
    match start(spec, script, policy, input, options, events).await {
        Ok(done) => done,
        Err(refused) => (Err(refused), Usage::default()),
    }
}

async fn start(
    spec: &ToolSpec,
    script: &Script,
    policy: &Policy,
    input: &serde_json::Value,
    options: &ShimOptions,
    events: &EventSink,
) -> Result<(Result<Output, CallError>, Usage), CallError> {
    let tool = spec.name.to_string();
    let exe = &spec.executable;
    let spawn_err = |message: String| CallError::Spawn {
        tool: tool.clone(),
        message,
    };
    let bytes = &script.bytes;
    let interpreter = interpreter_of(spec, options)?;
    let args = input_args(input).map_err(|message| CallError::InvalidInput {
        tool: tool.clone(),
        message,
    })?;
    let weaker = |what: String| -> Result<(), CallError> {
        if !options.allow_weaker_sandbox {
            return Err(CallError::WeakerSandbox {
                tool: tool.clone(),
                what,
            });
        }
        let message = format!(
            "WEAKER SANDBOX: {what}; running anyway because --allow-weaker-sandbox was given"
        );
        (events)(
            &tool,
            HostEvent::Log {
                level: LogLevel::Warn,
                message: &message,
            },
        );
        Ok(())
    };

    // A private directory holding the vetted bytes: the interpreter runs the
    // copy, so swapping the file after the hash check changes nothing.
    let work = tempfile::Builder::new()
        .prefix("toka-shim-")
        .tempdir_in(work_root())
        .map_err(|e| spawn_err(format!("cannot create a work directory: {e}")))?;
    let copy = work.path().join(&script.file_name);
    let workdir = work.path().join("work");
    std::fs::write(&copy, &bytes[..])
        .and_then(|()| std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o500)))
        .and_then(|()| std::fs::create_dir(&workdir))
        .map_err(|e| spawn_err(format!("cannot prepare the work directory: {e}")))?;

    let program = interpreter.clone().unwrap_or_else(|| copy.clone());
    let mut argv: Vec<std::ffi::OsString> = vec![program.clone().into_os_string()];
    if interpreter.is_some() {
        argv.push(copy.clone().into_os_string());
    }
    argv.extend(args.into_iter().map(Into::into));
    let env = tool_env(policy, &tool, &workdir);

    let network = !policy.network.rules.is_empty();
    let landlock = if Support::probe().landlock_abi > 0 {
        let rules = fs_rules(policy, interpreter.as_deref(), &copy, &workdir);
        Some(isolate::landlock_ruleset(&rules).map_err(spawn_err)?)
    } else {
        weaker("this kernel does not offer Landlock, so file access cannot be confined".into())?;
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

    // With network: only the granted (address, port) pairs, enforced by the
    // kernel for the whole tree (Landlock alone could only filter ports).
    let allows_anything = policy
        .network
        .rules
        .iter()
        .any(|r| r.ip.is_none() && r.port.is_none());
    let filter = if network && !allows_anything {
        let made = match cgroup.as_ref().and_then(PidsCgroup::v2_dir) {
            Some(dir) => connect_filter::ConnectFilter::attach_to(dir, &policy.network.rules),
            None => connect_filter::ConnectFilter::create(&cg_name, &policy.network.rules),
        };
        match made {
            Ok(f) => Some(f),
            Err(why) => {
                weaker(format!(
                    "connections cannot be limited to allowed_hosts ({why})"
                ))?;
                None
            }
        }
    } else {
        None
    };

    let limits = policy.limits;
    let cpu_share = f64::from(limits.cpu_percent.unwrap_or(100)) / 100.0;
    let cpu_secs = (limits.timeout.as_secs_f64() * cpu_share).ceil().max(1.0) as u64;
    let mut setup = ChildSetup {
        rlimits: Rlimits {
            cpu_secs,
            address_space: limits.memory.max(64 << 20),
            file_size: limits.output.max(64 << 20),
            open_files: 256,
            processes: u64::from(options.max_processes),
        },
        cgroup_procs_fds: [
            cgroup.as_ref().map(PidsCgroup::procs_fd),
            filter
                .as_ref()
                .and_then(connect_filter::ConnectFilter::procs_fd),
        ],
        netns_fd,
        landlock,
        last_cap: isolate::last_cap(),
    };

    static SUBREAPER: std::sync::Once = std::sync::Once::new();
    SUBREAPER.call_once(isolate::become_subreaper);
    let argv: Vec<&std::ffi::OsStr> = argv.iter().map(|a| a.as_os_str()).collect();
    let start = Instant::now();
    let child = match spawn::spawn(&program, &argv, &env, &workdir, &mut setup) {
        Ok(c) => c,
        Err(e) => {
            if let Some(cg) = cgroup {
                cg.kill_all(0);
            }
            let hint = if e.raw_os_error() == Some(libc::EPERM) {
                " (entering a network namespace, a cgroup or Landlock needs root or CAP_SYS_ADMIN)"
            } else {
                ""
            };
            return Err(spawn_err(format!("{e}{hint}")));
        }
    };
    let run = supervise(
        child,
        input.to_string(),
        limits.timeout,
        limits.output,
        cgroup,
    )
    .await;
    for line in String::from_utf8_lossy(&run.stderr).lines() {
        (events)(
            &tool,
            HostEvent::Log {
                level: LogLevel::Info,
                message: line,
            },
        );
    }
    drop((work, filter));

    let usage = Usage {
        fuel_consumed: 0,
        peak_memory: u64::try_from(run.max_rss_kib)
            .unwrap_or(0)
            .saturating_mul(1024),
        wall_time: start.elapsed(),
        output_bytes: run.output_bytes,
        llm_tokens: 0,
    };
    let result = result_of(&tool, exe.output, &run, limits, cpu_secs, usage.wall_time);
    Ok((result, usage))
}

/// The allowlisted interpreter a shell or Python tool runs with.
fn interpreter_of(spec: &ToolSpec, options: &ShimOptions) -> Result<Option<PathBuf>, CallError> {
    let exe = &spec.executable;
    let default = match exe.kind {
        ExecutableKind::Shell => "bash",
        ExecutableKind::Python => "python3",
        _ => return Ok(None),
    };
    let name = exe.interpreter.as_deref().unwrap_or(default);
    options
        .interpreters
        .get(name)
        .map(|p| Some(p.to_path_buf()))
        .ok_or_else(|| CallError::Interpreter {
            tool: spec.name.to_string(),
            name: name.to_string(),
            allowed: options.interpreters.names().join(", "),
        })
}

/// The tool's whole environment: a fixed base, then the policy's variables.
fn tool_env(policy: &Policy, tool: &str, workdir: &Path) -> Vec<(String, String)> {
    let dirs = |writable: bool| {
        policy
            .preopens
            .iter()
            .filter(|p| p.writable == writable)
            .map(|p| p.host.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    };
    let workdir = workdir.display().to_string();
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), TOOL_PATH.into()),
        ("HOME".into(), workdir.clone()),
        ("TMPDIR".into(), workdir.clone()),
        ("LANG".into(), "C.UTF-8".into()),
        ("TOKA_TOOL".into(), tool.into()),
        ("TOKA_WORKDIR".into(), workdir),
        ("TOKA_READONLY_DIRS".into(), dirs(false)),
        ("TOKA_WRITABLE_DIRS".into(), dirs(true)),
    ];
    for (k, v) in &policy.env {
        env.retain(|(existing, _)| existing != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

/// What the tool's process tree may touch: system libraries (read and
/// execute), its interpreter, programs only with `process-execution`, the
/// granted directories, its work directory, and the null devices.
fn fs_rules(policy: &Policy, interpreter: Option<&Path>, copy: &Path, workdir: &Path) -> FsRules {
    let mut rules = FsRules::default();
    let programs = system::PROGRAMS.map(PathBuf::from);
    rules.read_exec = system::LIBRARIES.map(PathBuf::from).into();
    match interpreter {
        Some(i) => {
            rules.read_exec.push(i.to_path_buf());
            rules.read.push(copy.to_path_buf());
        }
        None => rules.read_exec.push(copy.to_path_buf()),
    }
    if policy.capabilities.contains(&Capability::ProcessExecution) {
        rules.read_exec.extend(programs);
    } else {
        rules.read.extend(programs);
    }
    rules.read.extend(system::READ.map(PathBuf::from));
    for p in &policy.preopens {
        if p.writable {
            rules.read_write.push(p.host.clone());
        } else {
            rules.read.push(p.host.clone());
        }
    }
    rules.read_write.push(workdir.to_path_buf());
    rules.read_write.extend(system::DEVICES.map(PathBuf::from));
    // No network: nothing (and the namespace is empty anyway). Network: the
    // granted ports, or any port when a grant allows any.
    rules.connect_ports = if policy.network.rules.is_empty() {
        Some(Vec::new())
    } else {
        policy.network.rules.iter().map(|r| r.port).collect()
    };
    rules
}

/// How a supervised run ended.
enum End {
    Exited,
    Timeout,
    Output,
}

/// What [`supervise`] saw.
struct Supervised {
    end: End,
    /// `waitpid`-encoded status, if the process could be reaped.
    status: Option<i32>,
    max_rss_kib: i64,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    output_bytes: u64,
}

/// Feeds `input` to the child, drains its output within `output_limit`,
/// waits for it within `timeout`, then kills and reaps everything it left.
async fn supervise(
    child: spawn::Spawned,
    input: String,
    timeout: Duration,
    output_limit: u64,
    cgroup: Option<PidsCgroup>,
) -> Supervised {
    let pid = child.pid;
    isolate::track_main(pid, true);
    let budget = OutputBudget::new(output_limit);
    let over = Arc::new(tokio::sync::Notify::new());
    let overran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drain = |fd| {
        let budget = budget.clone();
        let over = over.clone();
        let overran = overran.clone();
        let pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(fd);
        tokio::spawn(async move {
            let mut out = Vec::new();
            let Ok(mut pipe) = pipe else { return out };
            let mut chunk = vec![0u8; 16 * 1024];
            while let Ok(n @ 1..) = pipe.read(&mut chunk).await {
                if let Err(fits) = budget.charge(n) {
                    out.extend_from_slice(&chunk[..fits]);
                    overran.store(true, Ordering::Relaxed);
                    over.notify_one();
                    break;
                }
                out.extend_from_slice(&chunk[..n]);
            }
            out
        })
    };
    let stdout = drain(child.stdout);
    let stderr = drain(child.stderr);
    if let Ok(mut stdin) = tokio::net::unix::pipe::Sender::from_owned_fd(child.stdin) {
        let input = input.into_bytes();
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }
    let exit = isolate::ExitWatch::new(pid);
    let mut end = tokio::select! {
        biased;
        () = over.notified() => End::Output,
        () = exit.exited() => End::Exited,
        () = tokio::time::sleep(timeout) => End::Timeout,
    };
    // A flood that stops being read dies of a broken pipe, which can look
    // like an ordinary exit: the overrun is what ended it.
    if budget.used() >= budget.limit()
        && matches!(end, End::Exited)
        && overran.load(Ordering::Relaxed)
    {
        end = End::Output;
    }

    // Whatever happened, nothing the tool started outlives the call: the
    // cgroup holds the whole tree (even what left the process group), and
    // the process group is the fallback where there is no cgroup.
    if let Some(cg) = cgroup {
        cg.kill_all(pid);
    }
    // SAFETY: the group id is the child's pid (it called setpgid(0, 0)).
    unsafe {
        libc::killpg(pid, libc::SIGKILL);
    }
    if !matches!(end, End::Exited) {
        let _ = tokio::time::timeout(Duration::from_secs(5), exit.exited()).await;
    }
    let (status, max_rss_kib) = match exit.reap() {
        Some((s, m)) => (Some(s), m),
        None => (None, 0),
    };
    isolate::track_main(pid, false);
    isolate::reap_orphans();
    Supervised {
        end,
        status,
        max_rss_kib,
        stdout: stdout.await.unwrap_or_default(),
        stderr: stderr.await.unwrap_or_default(),
        output_bytes: budget.used(),
    }
}

/// The call's result from how the process ended.
fn result_of(
    tool: &str,
    format: OutputFormat,
    run: &Supervised,
    limits: toka_spec::policy::Limits,
    cpu_secs: u64,
    wall_time: Duration,
) -> Result<Output, CallError> {
    let limit = |limit| {
        Err(CallError::Limit {
            tool: tool.to_string(),
            limit,
            caller_budget: false,
        })
    };
    let status = match (&run.end, run.status) {
        (End::Timeout, _) | (End::Exited, None) => {
            return limit(LimitExceeded::Timeout {
                limit: limits.timeout,
            });
        }
        (End::Output, _) => {
            return limit(LimitExceeded::Output {
                limit: limits.output,
            });
        }
        (End::Exited, Some(s)) => s,
    };
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        let text = String::from_utf8_lossy(&run.stdout).into_owned();
        return match format {
            OutputFormat::Text => Ok(Output::Text(text)),
            OutputFormat::Json => serde_json::from_str::<serde_json::Value>(&text)
                .map(Output::Json)
                .map_err(|e| CallError::BadResult {
                    tool: tool.to_string(),
                    message: e.to_string(),
                }),
        };
    }
    if libc::WIFEXITED(status) {
        let tail = tail(&run.stderr, 400);
        let tail = if tail.is_empty() {
            tail
        } else {
            format!(": {tail}")
        };
        return Err(CallError::Tool {
            tool: tool.to_string(),
            kind: ToolErrorKind::Failed,
            message: format!("exited with code {}{tail}", libc::WEXITSTATUS(status)),
        });
    }
    let sig = libc::WTERMSIG(status);
    // RLIMIT_CPU sends SIGXCPU at the limit (soft and hard are equal).
    if sig == libc::SIGXCPU || (sig == libc::SIGKILL && wall_time.as_secs() >= cpu_secs) {
        return limit(LimitExceeded::Cpu {
            limit: Duration::from_secs(cpu_secs),
        });
    }
    let what = match sig {
        libc::SIGSEGV => " (SIGSEGV: it crashed, or hit the memory limit)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGKILL => " (SIGKILL)",
        _ => "",
    };
    Err(CallError::Trap {
        tool: tool.to_string(),
        message: format!("killed by signal {sig}{what}"),
    })
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
pub fn input_args(input: &serde_json::Value) -> Result<Vec<String>, String> {
    let obj = input
        .as_object()
        .ok_or_else(|| "the input must be a JSON object".to_string())?;
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
        let input: serde_json::Value = serde_json::from_str(r#"{"name":"; rm -rf / $(id) `id` \"q\"\nx","n":3,"flag":true,"off":false,"nothing":null,"list":[1,2]}"#).unwrap();
        let args = input_args(&input).unwrap();
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
        assert!(input_args(&serde_json::json!([1])).is_err());
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
