//! `toka-host serve`: flags mapped onto [`crate::server::ServeOptions`].

use super::{DirArgs, SandboxArgs};
use crate::server::{self, ServeOptions};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use toka_runtime::engine::TokaEngine;
use toka_spec::exit;
use toka_spec::units::{ByteSize, HumanDuration};

/// `--addr`: `IP:PORT`, `[IPv6]:PORT`, `localhost:PORT` or a bare `PORT`
/// (both on 127.0.0.1). Other names are not resolved: which of a name's
/// addresses would be listened on is a surprise.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Some(port) = s.strip_prefix("localhost:") {
        return port
            .parse::<u16>()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .map_err(|_| format!("`{port}` is not a port number (0 to 65535)"));
    }
    s.parse().map_err(|_| {
        "write IP:PORT (127.0.0.1:8080, 0.0.0.0:8080 for every interface, [::1]:8080), localhost:PORT or a PORT; host names other than localhost are not resolved"
            .to_string()
    })
}

/// `toka-host serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on: IP:PORT, localhost:PORT, or a bare PORT (on
    /// 127.0.0.1). A non-loopback address needs --auth-keys (or
    /// --insecure-no-auth).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080", value_parser = parse_addr)]
    pub addr: SocketAddr,

    /// Require a capability token on every endpoint but /health and
    /// /ready: public keys in DIR (`toka-host token keygen`); keys added or
    /// removed take effect within seconds.
    #[arg(long = "auth-keys", value_name = "DIR", help_heading = "Tokens")]
    pub auth_keys: Option<PathBuf>,

    /// Refuse tokens whose revocation ids FILE lists (`toka-host token
    /// revoke`); re-read when it changes.
    #[arg(
        long = "revocations",
        value_name = "FILE",
        requires = "auth_keys",
        help_heading = "Tokens"
    )]
    pub revocations: Option<PathBuf>,

    /// The audience tokens must name.
    #[arg(
        long = "auth-audience",
        value_name = "NAME",
        default_value = toka_auth::DEFAULT_AUDIENCE,
        help_heading = "Tokens"
    )]
    pub auth_audience: String,

    /// Requests each token may make: N/s or N/m (429 with Retry-After
    /// beyond it; other tokens are not slowed).
    #[arg(
        long = "rate-limit",
        value_name = "N/s",
        requires = "auth_keys",
        help_heading = "Tokens"
    )]
    pub rate_limit: Option<server::Rate>,

    /// How many requests a token may make at once before the rate applies
    /// [default: one second's worth].
    #[arg(
        long = "rate-burst",
        value_name = "N",
        requires = "rate_limit",
        help_heading = "Tokens"
    )]
    pub rate_burst: Option<u32>,

    /// Serve a non-loopback address without tokens (only behind something
    /// that authenticates; says so loudly).
    #[arg(
        long = "insecure-no-auth",
        conflicts_with = "auth_keys",
        help_heading = "Tokens"
    )]
    pub insecure_no_auth: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub dir: DirArgs,

    /// Calls running at once; more are answered 503 with Retry-After.
    #[arg(long = "max-concurrent", value_name = "N", default_value_t = 64)]
    pub max_concurrent: usize,

    /// Threads that run calls [default: one per CPU].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// Largest request body.
    #[arg(long = "max-body", value_name = "SIZE", default_value = "1MiB")]
    pub max_body: ByteSize,

    /// Append every call (its input by size only), LLM request and response
    /// (never the provider's key) and agent run as a JSON line to FILE.
    #[arg(long = "audit-log", value_name = "FILE")]
    pub audit_log: Option<PathBuf>,

    /// How often the manifests directory is checked for changes.
    #[arg(
        long = "reload-interval",
        value_name = "DURATION",
        default_value = "200ms"
    )]
    pub reload_interval: HumanDuration,

    /// Answer browser requests from this web origin too (e.g.
    /// https://ui.example.com; repeatable). Requests with any other `Origin`
    /// than the server's own are refused.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,

    /// Connections open at once; more wait in the kernel's backlog
    /// [default: three quarters of `ulimit -n`, less a margin].
    #[arg(long = "max-connections", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Time a client has to send a request's headers; a keep-alive
    /// connection idle that long is closed too.
    #[arg(
        long = "header-timeout",
        value_name = "DURATION",
        default_value = "10s"
    )]
    pub header_timeout: HumanDuration,

    /// Where agent runs are kept: `sqlite:PATH` (one machine; the default,
    /// under $XDG_STATE_HOME/toka/runs.db), `postgres://USER@HOST/DB`
    /// (shared by replicas), or `memory` (lost at exit).
    #[arg(
        long = "state",
        value_name = "URL",
        env = "DATABASE_URL",
        help_heading = "Agent runs"
    )]
    pub state: Option<String>,

    /// This replica's name: runs it started and did not finish are marked
    /// interrupted when it starts again [default: HOST:PORT, the host name
    /// and the port it listens on].
    #[arg(long = "replica-id", value_name = "NAME", help_heading = "Agent runs")]
    pub replica_id: Option<String>,

    /// How long a replica's hold on its running runs lasts without renewal;
    /// after that, another replica marks them interrupted.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "30s",
        help_heading = "Agent runs"
    )]
    pub lease: HumanDuration,

    /// Finished runs are kept this long.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "7d",
        help_heading = "Agent runs"
    )]
    pub retain: HumanDuration,

    /// And at most this much of their results, inputs and events (the
    /// oldest go first).
    #[arg(
        long = "retain-bytes",
        value_name = "SIZE",
        default_value = "1GiB",
        help_heading = "Agent runs"
    )]
    pub retain_bytes: ByteSize,

    /// Store runs' inputs, not only their size and SHA-256.
    #[arg(long = "keep-inputs", help_heading = "Agent runs")]
    pub keep_inputs: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub sandbox: SandboxArgs,
}

/// The host's name, for the default replica id.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "toka".into())
}

/// Where runs go: the flag (or DATABASE_URL), `memory`, or the default
/// SQLite file.
fn state_url(flag: Option<&str>) -> Result<Option<String>, String> {
    match flag {
        Some("memory") => Ok(None),
        Some(url) => Ok(Some(url.to_string())),
        None => toka_store::default_sqlite_path()
            .map(|p| Some(format!("sqlite:{}", p.display())))
            .ok_or_else(|| {
                "--state: no default place for the run store (neither XDG_STATE_HOME nor HOME is set); pass --state sqlite:PATH".to_string()
            }),
    }
}

/// Runs the server; returns the exit code.
pub async fn run(args: ServeArgs) -> u8 {
    let (engine, options) = match prepare(&args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match server::serve(engine, options).await {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            exit::INVALID
        }
    }
}

/// The engine and options `serve` runs with for these flags; a flag that
/// cannot be used is printed as `error: …` and its exit code returned.
pub(crate) fn prepare(args: &ServeArgs) -> Result<(TokaEngine, ServeOptions), u8> {
    let sandbox = &args.sandbox;
    let mut engine_options = sandbox.engine.options(&sandbox.limits);
    engine_options.pooling = Some(u32::try_from(args.max_concurrent.max(1)).unwrap_or(u32::MAX));
    let registry = match sandbox.registry.settings() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(e.kind().exit_code());
        }
    };
    let engine = match TokaEngine::new(&engine_options) {
        Ok(e) => e.with_registry(registry),
        Err(e) => {
            eprintln!("error: {e}");
            return Err(exit::INVALID);
        }
    };
    let shim = match sandbox.shim.options() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(exit::INVALID);
        }
    };
    let llm = match toka_runtime::llm::LlmConfig::from_env(|k| std::env::var(k).ok()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(exit::INVALID);
        }
    };
    let state = match state_url(args.state.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(exit::INVALID);
        }
    };
    let options = ServeOptions {
        state: server::StateOptions {
            url: state,
            replica: args
                .replica_id
                .clone()
                .unwrap_or_else(|| format!("{}:{}", host_name(), args.addr.port())),
            lease: args.lease.0.max(Duration::from_millis(300)),
            retention: toka_store::Retention {
                max_age: Some(args.retain.0),
                max_bytes: Some(args.retain_bytes.0),
            },
            keep_inputs: args.keep_inputs,
        },
        llm,
        addr: args.addr,
        auth: args.auth_keys.clone().map(|keys| server::AuthOptions {
            keys,
            revocations: args.revocations.clone(),
            audience: args.auth_audience.clone(),
            rate: args.rate_limit.map(|mut r| {
                if let Some(b) = args.rate_burst {
                    r.burst = f64::from(b.max(1));
                }
                r
            }),
        }),
        insecure_no_auth: args.insecure_no_auth,
        manifests: args.dir.manifests.clone(),
        grants: sandbox.grants.grants(&sandbox.limits),
        shim,
        max_concurrent: args.max_concurrent.max(1),
        max_body: usize::try_from(args.max_body.0).unwrap_or(usize::MAX),
        audit_log: args.audit_log.clone(),
        reload_interval: args.reload_interval.0.max(Duration::from_millis(10)),
        allowed_origins: args.allowed_origins.clone(),
        max_connections: args
            .max_connections
            .unwrap_or_else(server::default_max_connections)
            .max(1),
        header_timeout: args.header_timeout.0.max(Duration::from_millis(100)),
    };
    Ok((engine, options))
}
