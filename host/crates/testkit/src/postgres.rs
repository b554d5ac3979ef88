//! A real, throwaway PostgreSQL 15 server for tests: Debian's binaries
//! (`/usr/lib/postgresql/15/bin`), a fresh cluster in a temp dir, listening on
//! a free loopback port with `trust` authentication for the user `toka`, and
//! no fsync (test data need not survive a power cut).
//!
//! PostgreSQL refuses to run as root, so as root the cluster belongs to the
//! `postgres` system user (the package creates it) and every server command
//! runs through `runuser -u postgres --`; as anyone else it runs as that user.
//! The server is stopped when the [`PgServer`] is dropped and, should the
//! test process die without dropping it (a `static`, an abort, SIGKILL), by a
//! guardian shell that waits on a pipe from this process and stops the server
//! and removes its directory when the pipe closes.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

/// Where Debian's PostgreSQL 15 server binaries are.
pub const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running (or stopped) throwaway PostgreSQL server.
pub struct PgServer {
    dir: PathBuf,
    port: u16,
    as_root: bool,
    running: bool,
    guardian: Option<(Child, ChildStdin)>,
}

impl PgServer {
    /// True when the PostgreSQL 15 server binaries are installed.
    pub fn is_installed() -> bool {
        Path::new(BIN).join("initdb").is_file()
    }

    /// Creates a cluster in a new temp dir and starts it on a free loopback
    /// port (about 1–3 s).
    ///
    /// # Panics
    ///
    /// When PostgreSQL 15 is not installed (run `scripts/install-postgres.sh`)
    /// or the server cannot be started (the message holds its log).
    pub fn start() -> PgServer {
        assert!(
            PgServer::is_installed(),
            "PostgreSQL 15 is not installed ({BIN}/initdb is missing): run scripts/install-postgres.sh (as root, or with sudo)"
        );
        // Short path: the server's Unix socket lives here too, and socket
        // paths are limited to about 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("toka-pg.")
            .tempdir_in("/tmp")
            .expect("create a temp dir for PostgreSQL")
            .keep();
        let as_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        if as_root {
            run(Command::new("chown").arg("postgres:postgres").arg(&dir));
        }
        let mut server = PgServer {
            dir,
            port: 0,
            as_root,
            running: false,
            guardian: None,
        };
        server.guardian = Some(server.spawn_guardian());
        let data = server.dir.join("data");
        let mut initdb = server.command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "toka", "-E", "UTF8"])
            // An explicit locale: initdb fails on a LANG that is not
            // installed.
            .args(["--locale=C.UTF-8", "--no-sync"]);
        run(&mut initdb);
        // A port picked by bind-and-close may be taken before the server
        // binds it: retry with another.
        let mut last = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.try_start() {
                Ok(()) => return server,
                Err(e) => last = e,
            }
        }
        panic!("PostgreSQL did not start: {last}");
    }

    /// `postgres://toka@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The URL of database `db` on this server.
    pub fn url_for(&self, db: &str) -> String {
        format!("postgres://toka@127.0.0.1:{}/{db}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates database `name` (an SQL identifier: letters, digits, `_`)
    /// and returns its URL.
    ///
    /// # Panics
    ///
    /// When `name` is not a plain identifier or `psql` fails.
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "database name `{name}` must be letters, digits and _"
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url_for(name)
    }

    /// Runs `sql` in database `db` with `psql`, stopping at the first error;
    /// returns what it printed (unaligned, tuples only).
    ///
    /// # Panics
    ///
    /// When `psql` fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let mut c = Command::new(Path::new(BIN).join("psql"));
        c.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url_for(db))
            .arg("-c")
            .arg(sql)
            .current_dir(&self.dir);
        run(&mut c)
    }

    /// Stops the server (`pg_ctl stop -m fast`: clients are disconnected,
    /// data is kept); [`PgServer::start_again`] brings it back.
    pub fn stop(&mut self) {
        self.pg_ctl_stop("fast");
    }

    /// Stops the server the way a crash does (`pg_ctl stop -m immediate`:
    /// no shutdown checkpoint; the next start recovers from the WAL).
    pub fn kill(&mut self) {
        self.pg_ctl_stop("immediate");
    }

    /// Starts a stopped server again, on the same port with the same data.
    ///
    /// # Panics
    ///
    /// When it does not start (the port was taken meanwhile, say).
    pub fn start_again(&mut self) {
        if let Err(e) = self.try_start() {
            panic!("PostgreSQL did not start again on port {}: {e}", self.port);
        }
    }

    fn try_start(&mut self) -> Result<(), String> {
        let mut c = self.command("pg_ctl");
        c.arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "30", "-o"])
            // -k: the socket in our dir (other users may not write to
            // /var/run/postgresql); -F: no fsync.
            .arg(format!(
                "-k {} -h 127.0.0.1 -p {} -F -c max_connections=200",
                self.dir.display(),
                self.port
            ))
            .arg("start")
            .stdout(Stdio::null());
        let out = c.output().map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if out.status.success() {
            self.running = true;
            Ok(())
        } else {
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            Err(format!(
                "{}\n{log}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn pg_ctl_stop(&mut self, mode: &str) {
        if !self.running {
            return;
        }
        let mut c = self.command("pg_ctl");
        c.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", mode, "-w", "stop"])
            .stdout(Stdio::null());
        run(&mut c);
        self.running = false;
    }

    /// A server command, as the `postgres` user when we are root, run from
    /// our dir (the server user must be able to enter the cwd).
    fn command(&self, program: &str) -> Command {
        let program = Path::new(BIN).join(program);
        let mut c = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        c.current_dir(&self.dir);
        c
    }

    /// `sh` that waits for EOF on its stdin (our end closes when this
    /// process exits, however it exits), then stops the server and removes
    /// the directory.
    fn spawn_guardian(&self) -> (Child, ChildStdin) {
        let as_user = if self.as_root {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "cat >/dev/null; cd /; {as_user}{BIN}/pg_ctl -D \"$1/data\" -m immediate -w stop >/dev/null 2>&1; rm -rf \"$1\""
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("guardian")
            .arg(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the PostgreSQL guardian shell");
        let stdin = child.stdin.take().expect("guardian stdin is piped");
        (child, stdin)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.running {
            // Immediate: nothing in a throwaway cluster needs a checkpoint.
            let mut c = self.command("pg_ctl");
            c.arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = c.status();
        }
        // Closing the pipe lets the guardian remove the directory.
        if let Some((mut child, mut stdin)) = self.guardian.take() {
            let _ = stdin.flush();
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// Runs `c`; its stdout, or a panic with its stderr.
fn run(c: &mut Command) -> String {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", c.get_program()));
    assert!(
        out.status.success(),
        "{:?} {:?} failed ({}): {}",
        c.get_program(),
        c.get_args().collect::<Vec<_>>(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}
