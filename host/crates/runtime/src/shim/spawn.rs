//! Starts a tool process the way `posix_spawn` does: `clone(CLONE_VM |
//! CLONE_VFORK)`, so the parent's page tables are not copied and it takes no
//! copy-on-write faults afterwards (what `std::process::Command` costs as
//! soon as a pre-exec hook is set), then applies [`ChildSetup`] and execs.
//!
//! The child shares the parent's memory until it execs, so it must not
//! allocate, lock or touch anything but its own stack and the prepared
//! arguments: everything (C strings, pipes, the Landlock ruleset) is built
//! before `clone`, and the child only makes system calls.

use super::isolate::ChildSetup;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The parent's ends of a spawned child's stdio.
pub struct Spawned {
    /// The child's pid (also its process group).
    pub pid: i32,
    /// Write end of its stdin.
    pub stdin: OwnedFd,
    /// Read end of its stdout.
    pub stdout: OwnedFd,
    /// Read end of its stderr.
    pub stderr: OwnedFd,
}

/// Everything the child reads, prepared by the parent.
struct ChildArgs<'a> {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    stdio: [i32; 3],
    error_fd: i32,
    old_mask: libc::sigset_t,
    setup: &'a mut ChildSetup,
}

const CHILD_STACK: usize = 256 * 1024;

fn cstring(bytes: &[u8]) -> std::io::Result<CString> {
    CString::new(bytes).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds that we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Spawns `program` with `args` (argv[0] included), exactly `env`, in `cwd`,
/// in a new process group, after applying `setup` in the child.
///
/// # Errors
///
/// Preparation failures, and the errno of whatever failed in the child
/// (isolation or exec): then no process is left running.
pub fn spawn(
    program: &Path,
    args: &[&OsStr],
    env: &[(String, String)],
    cwd: &Path,
    setup: &mut ChildSetup,
) -> std::io::Result<Spawned> {
    let program = cstring(program.as_os_str().as_bytes())?;
    let args: Vec<CString> = args
        .iter()
        .map(|a| cstring(a.as_bytes()))
        .collect::<Result<_, _>>()?;
    let env: Vec<CString> = env
        .iter()
        .map(|(k, v)| cstring(format!("{k}={v}").as_bytes()))
        .collect::<Result<_, _>>()?;
    let cwd = cstring(cwd.as_os_str().as_bytes())?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());

    let (stdin_r, stdin_w) = pipe()?;
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    let (error_r, error_w) = pipe()?;
    let mut stack = vec![0u8; CHILD_STACK];

    // SAFETY: sigset manipulation on local out-structs.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigfillset(&mut all);
    }
    let mut child_args = ChildArgs {
        program: program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: cwd.as_ptr(),
        stdio: [
            stdin_r.as_raw_fd(),
            stdout_w.as_raw_fd(),
            stderr_w.as_raw_fd(),
        ],
        error_fd: error_w.as_raw_fd(),
        old_mask: old,
        setup,
    };
    // SAFETY: as posix_spawn does. Signals are blocked around clone so no
    // parent handler can run on the child's borrowed memory; the child
    // resets handlers and restores the mask before exec. CLONE_VFORK
    // suspends this thread until the child has exec'd or exited, so
    // `child_args`, `stack` and every C string outlive the child's use.
    let pid = unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        child_args.old_mask = old;
        let top = stack.as_mut_ptr().add(CHILD_STACK);
        let top = (top as usize & !15) as *mut libc::c_void;
        let pid = libc::clone(
            child_main,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&mut child_args as *mut ChildArgs<'_>).cast(),
        );
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        pid
    };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    drop((stdin_r, stdout_w, stderr_w, error_w));
    let mut errno = [0u8; 4];
    // SAFETY: reading into a local buffer from our own pipe.
    let n = unsafe { libc::read(error_r.as_raw_fd(), errno.as_mut_ptr().cast(), 4) };
    if n == 4 {
        // SAFETY: the child has exited (it wrote its errno and _exit'ed).
        unsafe {
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        return Err(std::io::Error::from_raw_os_error(i32::from_ne_bytes(errno)));
    }
    Ok(Spawned {
        pid,
        stdin: stdin_w,
        stdout: stdout_r,
        stderr: stderr_r,
    })
}

/// The child side: system calls only, then exec or `_exit(127)`.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive while it is
    // suspended by CLONE_VFORK. Only system calls follow.
    unsafe {
        let a = &mut *(arg as *mut ChildArgs<'_>);
        let fail = |fd: i32| -> libc::c_int {
            let errno = *libc::__errno_location();
            let bytes = errno.to_ne_bytes();
            libc::write(fd, bytes.as_ptr().cast(), 4);
            libc::_exit(127)
        };
        // Default dispositions for every signal a handler was installed for
        // (ignored ones too: SIGPIPE is ignored by Rust programs).
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        for (target, &fd) in a.stdio.iter().enumerate() {
            if libc::dup2(fd, target as i32) < 0 {
                return fail(a.error_fd);
            }
        }
        if libc::setpgid(0, 0) != 0 || libc::chdir(a.cwd) != 0 {
            return fail(a.error_fd);
        }
        if a.setup.apply().is_err() {
            return fail(a.error_fd);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &a.old_mask, std::ptr::null_mut());
        libc::execve(a.program, a.argv, a.envp);
        fail(a.error_fd)
    }
}
