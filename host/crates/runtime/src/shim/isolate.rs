//! Isolation of a subprocess tree, prepared in the parent before fork and
//! applied in the child between fork and exec: Landlock (files, TCP ports,
//! signals), a private network namespace, rlimits, `no_new_privs`, a pids
//! cgroup that holds even for root, and death with the parent.
//!
//! Everything that allocates or can fail for ordinary reasons happens before
//! fork; the child only makes system calls, so a failure there aborts the
//! spawn (fail closed) instead of running the tool with less isolation.

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr, Scope,
};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The Landlock ABI the rules are written for; older kernels get what they
/// support (best effort), kernels without Landlock are refused unless the
/// operator accepts a weaker sandbox.
const TARGET_ABI: ABI = ABI::V6;

/// What a tool's process tree may touch.
#[derive(Debug, Clone, Default)]
pub struct FsRules {
    /// Read (and list) only.
    pub read: Vec<PathBuf>,
    /// Read and execute (interpreters, shared libraries, programs).
    pub read_exec: Vec<PathBuf>,
    /// Read, write, create and delete.
    pub read_write: Vec<PathBuf>,
    /// TCP ports the tree may connect to; `None` means any (only used
    /// inside a network namespace or with network granted).
    pub connect_ports: Option<Vec<u16>>,
}

/// Kernel support found on this machine, checked before each spawn.
#[derive(Debug, Clone, Copy)]
pub struct Support {
    /// Landlock ABI version (0: none).
    pub landlock_abi: i32,
}

impl Support {
    /// Probes the kernel. `TOKA_SIMULATE_NO_LANDLOCK=1` makes it report no
    /// Landlock, so that the refusal (and `--allow-weaker-sandbox`) can be
    /// exercised on a kernel that has it; it can only make the host refuse
    /// more.
    pub fn probe() -> Support {
        if std::env::var_os("TOKA_SIMULATE_NO_LANDLOCK").is_some_and(|v| v == "1") {
            return Support { landlock_abi: 0 };
        }
        // SAFETY: the documented version query: no pointers are read.
        let v = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<libc::c_void>(),
                0usize,
                1u32, // LANDLOCK_CREATE_RULESET_VERSION
            )
        };
        Support {
            landlock_abi: if v < 0 { 0 } else { v as i32 },
        }
    }
}

/// Builds the Landlock ruleset (in the parent).
///
/// # Errors
///
/// A message naming the path or rule that could not be added.
pub fn landlock_ruleset(rules: &FsRules) -> Result<RulesetCreated, String> {
    let abi = TARGET_ABI;
    let read = AccessFs::from_read(abi);
    let all = AccessFs::from_all(abi);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)
        .map_err(|e| format!("landlock: {e}"))?
        .handle_access(AccessNet::from_all(abi))
        .map_err(|e| format!("landlock: {e}"))?
        .scope(Scope::from_all(abi))
        .map_err(|e| format!("landlock: {e}"))?
        .create()
        .map_err(|e| format!("landlock: {e}"))?;
    let groups = [
        (&rules.read, read & !AccessFs::Execute),
        (&rules.read_exec, read),
        (&rules.read_write, all),
    ];
    let system = system_fds();
    for (paths, access) in groups {
        for p in paths {
            // Files take only file rights; directories take all.
            let narrow = |is_dir: bool| {
                if is_dir {
                    access
                } else {
                    access & AccessFs::from_file(abi)
                }
            };
            let added = match system.get(p.as_path()) {
                Some(None) => continue,
                Some(Some((fd, is_dir))) => ruleset.add_rule(PathBeneath::new(fd, narrow(*is_dir))),
                None => match PathFd::new(p) {
                    Ok(fd) => ruleset.add_rule(PathBeneath::new(fd, narrow(p.is_dir()))),
                    Err(_) if !p.exists() => continue,
                    Err(e) => return Err(format!("landlock: {}: {e}", p.display())),
                },
            };
            ruleset = added.map_err(|e| format!("landlock: {}: {e}", p.display()))?;
        }
    }
    if let Some(ports) = &rules.connect_ports {
        for &port in ports {
            ruleset = ruleset
                .add_rule(NetPort::new(port, AccessNet::ConnectTcp))
                .map_err(|e| format!("landlock: port {port}: {e}"))?;
        }
    }
    Ok(ruleset)
}

pub mod system {
    //! The system paths every tool's rules name.

    /// Shared libraries and the dynamic loader: read and execute.
    pub const LIBRARIES: [&str; 5] = ["/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/libexec"];
    /// Programs: executable only with `process-execution`, else read-only.
    pub const PROGRAMS: [&str; 3] = ["/usr", "/bin", "/sbin"];
    /// What the loader and common runtimes read: read-only.
    pub const READ: [&str; 7] = [
        "/etc/ld.so.cache",
        "/etc/ld.so.conf",
        "/etc/ld.so.conf.d",
        "/etc/localtime",
        "/etc/alternatives",
        "/dev/urandom",
        "/dev/random",
    ];
    /// The null devices: read and write.
    pub const DEVICES: [&str; 2] = ["/dev/null", "/dev/zero"];
}

/// Handles to the [`system`] paths, opened once: (fd, is a directory),
/// or `None` where this system does not have the path. Per-call paths
/// (grants, work directories) are opened per call, so a replaced directory
/// is never granted through a stale handle.
fn system_fds() -> &'static std::collections::HashMap<&'static Path, Option<(PathFd, bool)>> {
    static FDS: std::sync::OnceLock<
        std::collections::HashMap<&'static Path, Option<(PathFd, bool)>>,
    > = std::sync::OnceLock::new();
    FDS.get_or_init(|| {
        system::LIBRARIES
            .iter()
            .chain(&system::PROGRAMS)
            .chain(&system::READ)
            .chain(&system::DEVICES)
            .map(|p| {
                let path = Path::new(*p);
                (path, PathFd::new(path).ok().map(|fd| (fd, path.is_dir())))
            })
            .collect()
    })
}

/// A pids cgroup holding one call's process tree.
pub struct PidsCgroup {
    dir: PathBuf,
    procs: File,
    v2: bool,
}

impl PidsCgroup {
    /// Creates `toka/<name>` under the pids controller (cgroup v2 when it
    /// offers `pids`, else v1) with `pids.max = max`.
    ///
    /// # Errors
    ///
    /// A message saying why no pids cgroup can be made here.
    pub fn create(name: &str, max: u32) -> Result<PidsCgroup, String> {
        let (toka, v2) = toka_cgroup()?;
        let dir = toka.join(name);
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let cg = PidsCgroup {
            procs: File::options()
                .write(true)
                .open(dir.join("cgroup.procs"))
                .map_err(|e| format!("cannot open {}/cgroup.procs: {e}", dir.display()))?,
            dir,
            v2,
        };
        std::fs::write(cg.dir.join("pids.max"), max.to_string())
            .map_err(|e| format!("cannot set {}/pids.max: {e}", cg.dir.display()))?;
        Ok(cg)
    }

    /// The cgroup's directory when it is a cgroup v2 (which can also carry
    /// the connect filter).
    pub fn v2_dir(&self) -> Option<&Path> {
        self.v2.then_some(self.dir.as_path())
    }

    /// The raw fd of `cgroup.procs`, for the child to join with.
    pub fn procs_fd(&self) -> i32 {
        self.procs.as_raw_fd()
    }

    /// The pids in the cgroup now.
    pub fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Kills every process in the cgroup, reaps them (the host is their
    /// subreaper, see [`become_subreaper`]) except `main`, whose status its
    /// own waiter collects, and removes the cgroup.
    pub fn kill_all(self, main: i32) {
        if self.v2 {
            let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        }
        // v1 has no cgroup.kill, and a tree can fork while being killed:
        // repeat until the cgroup is empty.
        let mut seen = Vec::new();
        for _ in 0..1000 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for &pid in &pids {
                // SAFETY: a plain syscall on a pid read from our own cgroup.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
                if pid != main && !seen.contains(&pid) {
                    seen.push(pid);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        reap(seen);
        for _ in 0..200 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// Makes this process the subreaper of its descendants, so that processes a
/// tool leaves behind become our children when their parent dies, and can
/// be reaped instead of lingering as zombies under init.
pub fn become_subreaper() {
    // SAFETY: sets a flag on this process; no pointers.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// Main processes of calls in flight: their waiters collect their status,
/// so orphan reaping must leave them alone.
static MAIN_PIDS: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// Registers (or, with `false`, unregisters) a call's main process.
pub fn track_main(pid: i32, active: bool) {
    if let Ok(mut v) = MAIN_PIDS.lock() {
        v.retain(|&p| p != pid);
        if active {
            v.push(pid);
        }
    }
}

/// Reaps zombies that were reparented to this process (as subreaper) and
/// are not the main process of a call in flight (whose waiter reaps it).
pub fn reap_orphans() {
    loop {
        // SAFETY: waitid with WNOWAIT only peeks at a waitable child; the
        // info struct is a plain out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: si_pid is valid for the child states waitid reports.
        let pid = unsafe { info.si_pid() };
        if r != 0 || pid == 0 {
            return;
        }
        let mains = MAIN_PIDS.lock().map(|v| v.clone()).unwrap_or_default();
        if mains.contains(&pid) {
            // Another call's main process: its waiter collects it; the rest
            // wait for the next call's sweep.
            return;
        }
        // SAFETY: reaping the specific zombie child just reported.
        unsafe {
            libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG);
        }
    }
}

/// Waits for each of `pids` (killed already) to be gone: reaped by us once
/// it has been reparented to us, or reaped by whoever else is its parent.
pub fn reap(mut pids: Vec<i32>) {
    for _ in 0..400 {
        pids.retain(|&pid| {
            // SAFETY: waiting on specific pids only, never -1, so concurrent
            // calls' own waiters are not robbed.
            let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
            if r == pid {
                return false;
            }
            // Not (yet) our child: pending while it still exists.
            Path::new(&format!("/proc/{pid}")).exists()
        });
        if pids.is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The `toka` cgroup under the pids controller (made once per process),
/// and whether it is cgroup v2.
fn toka_cgroup() -> Result<(PathBuf, bool), String> {
    static ROOT: std::sync::OnceLock<Result<(PathBuf, bool), String>> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let (parent, v2) = pids_root().ok_or_else(|| {
            "no cgroup with the pids controller is mounted (looked for cgroup v2 with `pids` in cgroup.subtree_control, then /sys/fs/cgroup/pids)".to_string()
        })?;
        let toka = parent.join("toka");
        std::fs::create_dir_all(&toka)
            .map_err(|e| format!("cannot create {}: {e}", toka.display()))?;
        if v2 {
            // Children of `toka` must get the pids controller too.
            let _ = std::fs::write(toka.join("cgroup.subtree_control"), "+pids");
        }
        Ok((toka, v2))
    })
    .clone()
}

fn pids_root() -> Option<(PathBuf, bool)> {
    for v2 in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        let root = Path::new(v2);
        let controllers =
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if controllers.split_whitespace().any(|c| c == "pids") {
            let _ = std::fs::write(root.join("cgroup.subtree_control"), "+pids");
            let enabled =
                std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap_or_default();
            if enabled.split_whitespace().any(|c| c == "pids") {
                return Some((root.to_path_buf(), true));
            }
        }
    }
    let v1 = Path::new("/sys/fs/cgroup/pids");
    v1.join("pids.max")
        .exists()
        .then(|| (v1.to_path_buf(), false))
        .or_else(|| {
            v1.join("cgroup.procs")
                .exists()
                .then(|| (v1.to_path_buf(), false))
        })
}

/// Resource limits applied in the child.
#[derive(Debug, Clone, Copy)]
pub struct Rlimits {
    /// CPU seconds.
    pub cpu_secs: u64,
    /// Address space bytes.
    pub address_space: u64,
    /// Largest file the tree may write.
    pub file_size: u64,
    /// Open files.
    pub open_files: u64,
    /// Processes (ineffective for root; the pids cgroup is what holds).
    pub processes: u64,
}

/// Watches a child for exit without a thread: a pidfd that becomes
/// readable when the process ends, then one `waitid` that reaps it and
/// returns its resource usage.
pub struct ExitWatch {
    pid: i32,
    pidfd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl ExitWatch {
    /// Starts watching `pid` (a child of this process).
    pub fn new(pid: i32) -> ExitWatch {
        // SAFETY: pidfd_open takes a pid and flags; the result is a new fd
        // that we own.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let pidfd = (fd >= 0)
            .then(|| {
                // SAFETY: `fd` was just returned to us and is owned by nobody else.
                let owned = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) };
                // SAFETY: the AsyncFd owns the fd and nothing else closes or
                // replaces it while registered.
                unsafe {
                    tokio::io::unix::AsyncFd::register_with_interest(
                        owned,
                        tokio::io::Interest::READABLE,
                    )
                }
                .ok()
            })
            .flatten();
        ExitWatch { pid, pidfd }
    }

    /// Resolves when the process has exited (it stays unreaped).
    pub async fn exited(&self) {
        match &self.pidfd {
            Some(fd) => {
                let _ = fd.readable().await;
            }
            // Kernels without pidfd (before 5.3): poll.
            None => loop {
                // The siginfo (it holds raw pointers) must not live across
                // the await, or the future would not be Send.
                let exited = {
                    // SAFETY: a peek (WNOWAIT) at one specific child.
                    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                    let r = unsafe {
                        libc::waitid(
                            libc::P_PID,
                            self.pid as libc::id_t,
                            &mut info,
                            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
                        )
                    };
                    // SAFETY: si_pid is set when waitid reports a child.
                    r != 0 || unsafe { info.si_pid() } == self.pid
                };
                if exited {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            },
        }
    }

    /// Reaps the exited process: its wait status (as `waitpid` encodes it)
    /// and peak resident set in KiB; `None` if it is not reapable yet.
    pub fn reap(&self) -> Option<(i32, i64)> {
        // SAFETY: the raw waitid syscall takes a fifth, rusage argument;
        // both out-structs are plain data.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::syscall(
                libc::SYS_waitid,
                libc::P_PID,
                self.pid,
                &mut info as *mut libc::siginfo_t,
                libc::WEXITED | libc::WNOHANG,
                &mut usage as *mut libc::rusage,
            )
        };
        // SAFETY: si_pid/si_status are valid once waitid reported a child.
        if r != 0 || unsafe { info.si_pid() } != self.pid {
            return None;
        }
        let status = unsafe { info.si_status() };
        let encoded = if info.si_code == libc::CLD_EXITED {
            (status & 0xff) << 8
        } else {
            status & 0x7f
        };
        Some((encoded, usage.ru_maxrss))
    }
}

/// Highest capability number there can be; dropping one the kernel does not
/// know fails with EINVAL, which is ignored.
const CAP_LAST_CAP_MAX: u8 = 63;
/// SECBIT_NOROOT | SECBIT_NO_SETUID_FIXUP | SECBIT_KEEP_CAPS_LOCKED and the
/// lock bits of the first two: uid 0 gets no capabilities from exec, ever.
const SECUREBITS_NO_ROOT: libc::c_ulong = 0x01 | 0x02 | 0x04 | 0x08 | 0x20;

/// A network namespace with nothing in it (its loopback is down), made once
/// per process and entered by every tool that has no network: entering an
/// existing namespace costs a fraction of creating one per call. Tools
/// cannot bring the loopback up (they have no capabilities), and Landlock
/// scopes abstract sockets, so sharing it opens no channel between them.
///
/// # Errors
///
/// Why no namespace could be made (creating one needs CAP_SYS_ADMIN).
pub fn empty_netns() -> Result<i32, String> {
    static NETNS: std::sync::OnceLock<Result<std::os::fd::OwnedFd, String>> =
        std::sync::OnceLock::new();
    NETNS
        .get_or_init(|| {
            // A namespace is a per-thread attribute: make it in a thread of
            // its own, keep a handle to it, and let the thread end.
            std::thread::spawn(|| {
                // SAFETY: unshare affects only this short-lived thread.
                if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                    return Err(format!(
                        "cannot create a network namespace: {}",
                        std::io::Error::last_os_error()
                    ));
                }
                File::open("/proc/thread-self/ns/net")
                    .map(std::os::fd::OwnedFd::from)
                    .map_err(|e| format!("cannot open the new network namespace: {e}"))
            })
            .join()
            .unwrap_or_else(|_| Err("the namespace thread panicked".into()))
        })
        .as_ref()
        .map(|fd| fd.as_raw_fd())
        .map_err(Clone::clone)
}

/// What the child does between fork and exec. Holds only raw values and
/// already-built objects; runs only system calls.
pub struct ChildSetup {
    /// Rlimits to set.
    pub rlimits: Rlimits,
    /// `cgroup.procs` files to join: the pids cgroup and, for tools with
    /// network, the connect filter's cgroup v2.
    pub cgroup_procs_fds: [Option<i32>; 2],
    /// An empty network namespace to enter (see [`empty_netns`]), if the
    /// tool has no network.
    pub netns_fd: Option<i32>,
    /// The Landlock ruleset to enforce, if any.
    pub landlock: Option<RulesetCreated>,
    /// The highest capability number of this kernel ([`last_cap`]).
    pub last_cap: u8,
}

/// The kernel's highest capability number (`/proc/sys/kernel/cap_last_cap`),
/// read once; 63 (all possible) if it cannot be read.
pub fn last_cap() -> u8 {
    static LAST: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(CAP_LAST_CAP_MAX)
    })
}

impl ChildSetup {
    /// Runs in the child. Any error aborts the spawn.
    pub fn apply(&mut self) -> std::io::Result<()> {
        let last = std::io::Error::last_os_error;
        // SAFETY: async-signal-safe system calls only, on values prepared
        // before fork.
        unsafe {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(last());
            }
            for fd in self.cgroup_procs_fds.into_iter().flatten() {
                // "0" moves the writing process into the cgroup.
                if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(last());
                }
            }
            let r = self.rlimits;
            for (resource, value) in [
                (libc::RLIMIT_CPU, r.cpu_secs),
                (libc::RLIMIT_AS, r.address_space),
                (libc::RLIMIT_FSIZE, r.file_size),
                (libc::RLIMIT_NOFILE, r.open_files),
                (libc::RLIMIT_NPROC, r.processes),
                (libc::RLIMIT_CORE, 0),
            ] {
                let lim = libc::rlimit {
                    rlim_cur: value,
                    rlim_max: value,
                };
                if libc::setrlimit(resource, &lim) != 0 {
                    return Err(last());
                }
            }
            if let Some(fd) = self.netns_fd
                && libc::setns(fd, libc::CLONE_NEWNET) != 0
            {
                return Err(last());
            }
            // Root without capabilities: empty the bounding set and lock the
            // securebits so that exec grants nothing back. Landlock confines
            // files; this takes away module loading, raw I/O, mounts,
            // network administration and the rest of what uid 0 could do.
            for cap in 0..=libc::c_ulong::from(self.last_cap) {
                if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0
                    && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
                {
                    return Err(last());
                }
            }
            if libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            ) != 0
            {
                return Err(last());
            }
            if libc::prctl(libc::PR_SET_SECUREBITS, SECUREBITS_NO_ROOT, 0, 0, 0) != 0 {
                return Err(last());
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(last());
            }
        }
        if let Some(ruleset) = self.landlock.take() {
            // No allocation on this path: report the OS error as is.
            if ruleset.restrict_self().is_err() {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}
