//! Host-level network allowlist for subprocess tools: a cgroup (v2) with
//! eBPF `connect`/`sendmsg` hooks that let through only the granted
//! (address, port) pairs. Landlock can only filter TCP by port; this is what
//! makes `allowed_hosts` mean hosts for real processes too.
//!
//! The programs are a few instructions written here directly (no libbpf):
//! load the destination from `struct bpf_sock_addr`, compare it with each
//! rule, return 1 (allow) or 0 (deny: the call fails with EPERM).

use std::fs::File;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use toka_spec::policy::AddrRule;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;
const BPF_CGROUP_INET4_CONNECT: u32 = 10;
const BPF_CGROUP_INET6_CONNECT: u32 = 11;
const BPF_CGROUP_UDP4_SENDMSG: u32 = 14;
const BPF_CGROUP_UDP6_SENDMSG: u32 = 15;

// Offsets in `struct bpf_sock_addr`.
const USER_IP4: i16 = 4;
const USER_IP6: i16 = 8;
const USER_PORT: i16 = 24;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

/// `r{dst} = *(u32 *)(r1 + off)`
fn load_ctx(dst: u8, off: i16) -> Insn {
    Insn {
        code: 0x61,
        regs: (1 << 4) | dst,
        off,
        imm: 0,
    }
}

/// `if (u32) r{dst} != imm goto +skip` (JMP32, so no sign extension).
fn jne32(dst: u8, imm: i32, skip: i16) -> Insn {
    Insn {
        code: 0x56,
        regs: dst,
        off: skip,
        imm,
    }
}

/// `r0 = verdict; exit`
fn verdict(allow: bool) -> [Insn; 2] {
    [
        Insn {
            code: 0xb7,
            regs: 0,
            off: 0,
            imm: i32::from(allow),
        },
        Insn {
            code: 0x95,
            regs: 0,
            off: 0,
            imm: 0,
        },
    ]
}

/// The program for one address family: allow when any rule matches.
fn program(rules: &[AddrRule], v6: bool) -> Vec<Insn> {
    let mut insns = Vec::new();
    // r2..r5: the destination address words, r6: the port.
    if v6 {
        for w in 0..4u8 {
            insns.push(load_ctx(2 + w, USER_IP6 + 4 * i16::from(w)));
        }
    } else {
        insns.push(load_ctx(2, USER_IP4));
    }
    insns.push(load_ctx(6, USER_PORT));
    for rule in rules {
        let mut checks: Vec<(u8, i32)> = Vec::new();
        match (rule.ip, v6) {
            (None, _) => {}
            (Some(IpAddr::V4(ip)), false) => checks.push((2, i32::from_ne_bytes(ip.octets()))),
            (Some(IpAddr::V6(ip)), true) => {
                for (w, chunk) in ip.octets().chunks(4).enumerate() {
                    let word = [chunk[0], chunk[1], chunk[2], chunk[3]];
                    checks.push((2 + w as u8, i32::from_ne_bytes(word)));
                }
            }
            // A rule for the other family never matches here.
            _ => continue,
        }
        if let Some(port) = rule.port {
            // The port is stored in network byte order in the low 16 bits.
            checks.push((6, i32::from(u16::from_ne_bytes(port.to_be_bytes()))));
        }
        // Each check skips the rest of this rule (later checks + verdict).
        let n = checks.len();
        for (i, (reg, imm)) in checks.into_iter().enumerate() {
            insns.push(jne32(reg, imm, (n - i - 1 + 2) as i16));
        }
        insns.extend(verdict(true));
    }
    insns.extend(verdict(false));
    insns
}

fn bpf(cmd: libc::c_long, attr: &mut [u8]) -> std::io::Result<i64> {
    // SAFETY: `attr` is a zero-initialised `union bpf_attr` prefix of the
    // size passed; the kernel reads (and for some commands writes) it.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn load(insns: &[Insn], attach_type: u32) -> Result<OwnedFd, String> {
    let license = b"GPL\0";
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&BPF_PROG_TYPE_CGROUP_SOCK_ADDR.to_ne_bytes());
    attr[4..8].copy_from_slice(&(insns.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    attr[48..56].copy_from_slice(b"toka_net");
    attr[68..72].copy_from_slice(&attach_type.to_ne_bytes());
    let fd = bpf(BPF_PROG_LOAD, &mut attr)
        .map_err(|e| format!("cannot load the connect filter: {e}"))?;
    // SAFETY: BPF_PROG_LOAD returned a new fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn attach(cgroup: &File, prog: &OwnedFd, attach_type: u32) -> Result<(), String> {
    let mut attr = [0u8; 16];
    attr[0..4].copy_from_slice(&(cgroup.as_raw_fd() as u32).to_ne_bytes());
    attr[4..8].copy_from_slice(&(prog.as_raw_fd() as u32).to_ne_bytes());
    attr[8..12].copy_from_slice(&attach_type.to_ne_bytes());
    bpf(BPF_PROG_ATTACH, &mut attr)
        .map(|_| ())
        .map_err(|e| format!("cannot attach the connect filter: {e}"))
}

/// A cgroup v2 whose processes may connect only where the rules say. When
/// the filter made the cgroup itself, it removes it when dropped (after its
/// processes are gone).
pub struct ConnectFilter {
    owned: Option<(PathBuf, File)>,
}

impl ConnectFilter {
    /// Creates the cgroup `toka-net/<name>` in the cgroup v2 hierarchy and
    /// attaches the filter for `rules`.
    ///
    /// # Errors
    ///
    /// Why it could not (no cgroup v2 hierarchy, no BPF, not root).
    pub fn create(name: &str, rules: &[AddrRule]) -> Result<ConnectFilter, String> {
        let root = v2_root().ok_or("no cgroup v2 hierarchy is mounted")?;
        let parent = root.join("toka-net");
        std::fs::create_dir_all(&parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let dir = parent.join(name);
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let procs = File::options()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .map_err(|e| format!("cannot open {}/cgroup.procs: {e}", dir.display()));
        let filter = ConnectFilter {
            owned: Some((dir.clone(), procs?)),
        };
        attach_all(&dir, rules)?;
        Ok(filter)
    }

    /// Attaches the filter for `rules` to an existing cgroup v2 (the call's
    /// pids cgroup on hosts with cgroup v2 only, since a process belongs to
    /// one cgroup v2).
    ///
    /// # Errors
    ///
    /// Why it could not (no BPF, not root).
    pub fn attach_to(dir: &Path, rules: &[AddrRule]) -> Result<ConnectFilter, String> {
        attach_all(dir, rules)?;
        Ok(ConnectFilter { owned: None })
    }

    /// The raw fd of `cgroup.procs` to join, when the filter has a cgroup of
    /// its own.
    pub fn procs_fd(&self) -> Option<i32> {
        self.owned.as_ref().map(|(_, procs)| procs.as_raw_fd())
    }
}

fn attach_all(dir: &Path, rules: &[AddrRule]) -> Result<(), String> {
    {
        let cgroup = File::open(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (v6, types) in [
            (false, [BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_UDP4_SENDMSG]),
            (true, [BPF_CGROUP_INET6_CONNECT, BPF_CGROUP_UDP6_SENDMSG]),
        ] {
            let insns = program(rules, v6);
            for t in types {
                let prog = load(&insns, t)?;
                attach(&cgroup, &prog, t)?;
            }
        }
    }
    Ok(())
}

impl Drop for ConnectFilter {
    fn drop(&mut self) {
        let Some((dir, _)) = &self.owned else { return };
        for _ in 0..200 {
            if std::fs::remove_dir(dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

fn v2_root() -> Option<PathBuf> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("cgroup.controllers").exists())
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_end_in_deny_and_skip_correctly() {
        let rules = [
            AddrRule {
                ip: Some("127.0.0.1".parse().unwrap()),
                port: Some(80),
            },
            AddrRule {
                ip: None,
                port: Some(443),
            },
        ];
        let p = program(&rules, false);
        // loads (2), rule 1: 2 checks + 2, rule 2: 1 check + 2, deny: 2.
        assert_eq!(p.len(), 2 + 4 + 3 + 2);
        assert_eq!(
            p[2].off, 3,
            "first check skips the second check and the verdict"
        );
        assert_eq!(p[3].off, 2);
        assert_eq!(p[6].off, 2);
        assert_eq!((p[p.len() - 2].code, p[p.len() - 2].imm), (0xb7, 0));
        // An IPv6 program ignores IPv4 rules but keeps port-only ones.
        let p6 = program(&rules, true);
        assert_eq!(p6.len(), 5 + 3 + 2);
    }
}
