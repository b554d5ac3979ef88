//! A real OCI registry on loopback for tests: Debian's `docker-registry`
//! (distribution 2.8) serving a temporary directory, optionally behind
//! htpasswd Basic auth.
//!
//! Tests get the storage path so they can tamper with a blob the way a
//! compromised registry would (distribution serves blobs without
//! re-verifying them), and can stop the registry mid-test (it is killed, so
//! connections in flight break). It stops when dropped. When the tests run
//! as root, the registry runs as `nobody`: a network service has no business
//! with root.
//!
//! Install it with `scripts/install-registry.sh`; tests skip when
//! [`Registry::available`] is false.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The Debian package's binary.
pub const BINARY: &str = "/usr/bin/docker-registry";
/// apache2-utils' `htpasswd`, for the bcrypt password file.
pub const HTPASSWD: &str = "/usr/bin/htpasswd";

/// A running registry; killed on drop.
pub struct Registry {
    child: Mutex<Option<Child>>,
    addr: SocketAddr,
    storage: PathBuf,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Whether `docker-registry` is installed.
    pub fn available() -> bool {
        Path::new(BINARY).is_file()
    }

    /// Whether `htpasswd` is installed (for [`Registry::start_with_auth`]).
    pub fn auth_available() -> bool {
        Self::available() && Path::new(HTPASSWD).is_file()
    }

    /// Starts an anonymous registry on a free loopback port.
    ///
    /// # Panics
    ///
    /// If it cannot be started or does not answer within 10 s (this is a
    /// test helper).
    pub fn start() -> Registry {
        Self::spawn(None)
    }

    /// Starts a registry that requires HTTP Basic `user`/`password`.
    ///
    /// # Panics
    ///
    /// As [`Registry::start`], or if `htpasswd` fails.
    pub fn start_with_auth(user: &str, password: &str) -> Registry {
        Self::spawn(Some((user, password)))
    }

    fn spawn(auth: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().expect("registry tempdir");
        let storage = dir.path().join("data");
        let nobody = if is_root() { nobody() } else { None };
        let auth_block = match auth {
            Some((user, password)) => {
                let out = Command::new(HTPASSWD)
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("run htpasswd (apt-get install apache2-utils)");
                assert!(out.status.success(), "htpasswd failed");
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, out.stdout).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: toka-test\n    path: {}\n",
                    file.display()
                )
            }
            None => String::new(),
        };
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        // No blob descriptor cache: it would make tamper tests depend on order.
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: {addr}\n  secret: toka-test-secret\n{auth_block}",
            storage.display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let mut cmd = match nobody {
            Some((uid, gid)) => {
                // The registry creates its storage itself, as its own user.
                std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                    .expect("chown registry dir");
                let mut c = Command::new("setpriv");
                c.args([
                    &format!("--reuid={uid}"),
                    &format!("--regid={gid}"),
                    "--clear-groups",
                    BINARY,
                ]);
                c
            }
            None => Command::new(BINARY),
        };
        cmd.arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("start docker-registry");
        let reg = Registry {
            child: Mutex::new(Some(child)),
            addr,
            storage,
            _dir: dir,
        };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = http_status(self.addr, "/v2/")
                && (status == 200 || status == 401)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not answer on {} within 10 s",
            self.addr
        );
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `oci://127.0.0.1:PORT/REPO_AND_TAG`.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("oci://{}/{repo_and_tag}", self.addr)
    }

    /// The registry's storage root (`rootdirectory`).
    pub fn storage(&self) -> &Path {
        &self.storage
    }

    /// Where the registry keeps the blob (or manifest) with SHA-256 `hex`.
    pub fn blob_path(&self, hex: &str) -> PathBuf {
        self.storage.join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }

    /// Flips one byte of the stored blob `hex` (same length), as a
    /// compromised registry would serve it.
    ///
    /// # Panics
    ///
    /// If the blob is not there.
    pub fn tamper(&self, hex: &str) {
        let p = self.blob_path(hex);
        let mut bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        let i = bytes.len() / 2;
        bytes[i] ^= 0xff;
        std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }

    /// Kills the registry (connections in flight break) and waits for it.
    pub fn stop(&self) {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut c) = guard.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether it is still running.
    pub fn is_running(&self) -> bool {
        let guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        guard.is_some()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    // The registry cannot report a port it picked itself (addr :0), so pick
    // one here; the tiny race with another process is acceptable in tests.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// The status code of a plain HTTP/1.1 GET, or `None` if nothing answers.
fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head).ok()?;
    let text = std::str::from_utf8(&head[..n]).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

fn is_root() -> bool {
    // The owner of a file we just created is our effective uid.
    let probe = tempfile::tempfile().ok();
    probe
        .and_then(|f| f.metadata().ok())
        .is_some_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// `nobody`'s uid and gid from /etc/passwd.
fn nobody() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&"nobody") && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    })
}
