//! `toka-host serve`: the tools of a manifests directory over HTTP, bound to
//! loopback by default, reloaded live when their files change.
//!
//! This module starts the server and holds what its handlers share
//! ([`App`]); the routes are in [`router`], the tool endpoints in [`tools`],
//! the agent endpoints in [`agents`], health, status and events in
//! [`status`], Prometheus metrics in [`metrics`] and the error responses in
//! [`error`]. Calls go through the runtime's one call path; the hot-swap
//! table is the runtime's [`LiveCatalog`].

mod agents;
mod auth;
mod embed;
pub(crate) mod error;
mod limit;
mod listen;
pub(crate) mod metrics;
mod router;
mod status;
mod tools;
mod trim;

pub(crate) use auth::Authenticated;
pub use embed::{Answer, EmbedError, InProcess, in_process};
pub use limit::Rate;
pub use listen::default_max_connections;

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use toka_runtime::agents::AgentHost;
use toka_runtime::audit::AuditLog;
use toka_runtime::call::Runtime;
use toka_runtime::catalog::{Change, LiveCatalog};
use toka_runtime::engine::TokaEngine;
use toka_runtime::llm::{LlmClient, LlmConfig, LlmConfigError};
use toka_runtime::shim::ShimOptions;
use toka_spec::policy::Grants;

/// How callers prove who they are.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// The key directory (public keys; `toka-host token keygen`).
    pub keys: PathBuf,
    /// The revocation file, if any (`toka-host token revoke`).
    pub revocations: Option<PathBuf>,
    /// The audience tokens must name.
    pub audience: String,
    /// Requests per token.
    pub rate: Option<Rate>,
}

/// Where agent runs are kept.
#[derive(Debug, Clone)]
pub struct StateOptions {
    /// `sqlite:PATH` or `postgres://…`; `None` keeps runs in memory only.
    pub url: Option<String>,
    /// This replica's name.
    pub replica: String,
    /// How long a replica's hold on its running runs lasts unrenewed.
    pub lease: Duration,
    /// What finished runs to keep.
    pub retention: toka_store::Retention,
    /// Store runs' inputs, not only their size and digest.
    pub keep_inputs: bool,
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where agent runs are kept.
    pub state: StateOptions,
    /// Where to listen.
    pub addr: SocketAddr,
    /// Tokens: required on every endpoint but the health checks.
    pub auth: Option<AuthOptions>,
    /// Serve a non-loopback address without tokens anyway.
    pub insecure_no_auth: bool,
    /// The manifests directory.
    pub manifests: PathBuf,
    /// What the operator grants every tool.
    pub grants: Grants,
    /// How subprocess tools run.
    pub shim: ShimOptions,
    /// Calls at once; more get 503.
    pub max_concurrent: usize,
    /// Largest request body.
    pub max_body: usize,
    /// Where each call is appended as a JSON line.
    pub audit_log: Option<PathBuf>,
    /// The language model for workflows, if configured.
    pub llm: Option<LlmConfig>,
    /// How often the directory is checked for changes.
    pub reload_interval: Duration,
    /// Web origins besides the server's own whose requests are answered.
    pub allowed_origins: Vec<String>,
    /// Connections open at once.
    pub max_connections: usize,
    /// Time a client has to send a request's headers (and most a keep-alive
    /// connection may stay idle).
    pub header_timeout: Duration,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without tokens.
    #[error(
        "refusing to listen on {0} without tokens: anyone who can reach it could call every granted tool. Create keys with `toka-host token keygen --keys DIR`, start with `--auth-keys DIR`, and give clients tokens from `toka-host token issue --keys DIR --tool NAME`; or pass --insecure-no-auth if the network in front of it does the checking"
    )]
    Open(SocketAddr),
    /// The key directory or revocation file cannot be used.
    #[error("--auth-keys: {0}")]
    Auth(#[from] toka_auth::AuthError),
    /// The run store cannot be opened.
    #[error("--state: {0}")]
    Store(#[from] toka_store::StoreError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The audit log could not be opened.
    #[error("cannot open the audit log {}: {source}", path.display())]
    Audit {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The LLM client could not be built.
    #[error(transparent)]
    Llm(#[from] LlmConfigError),
    /// The manifests directory cannot be read at start.
    #[error(transparent)]
    Manifests(#[from] toka_spec::directory::DirError),
    /// The server failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// What every handler shares.
pub(crate) struct App {
    pub(crate) options: ServeOptions,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) catalog: Arc<LiveCatalog>,
    pub(crate) agents: Arc<AgentHost>,
    /// Every outside call's way in (shared with `/mcp`).
    pub(crate) door: Arc<crate::door::Door>,
    pub(crate) started: Instant,
    pub(crate) hosts: Vec<String>,
    pub(crate) events: tokio::sync::broadcast::Sender<Value>,
    /// The token check, when `--auth-keys` is given.
    pub(crate) auth: Option<auth::Auth>,
    /// Set when the server stops: event streams end.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
    /// MCP clients of `/mcp`, told about hot swaps.
    pub(crate) mcp: Arc<crate::mcp::Hub>,
    /// Cancelled when the server stops: MCP sessions end.
    pub(crate) stop: tokio_util::sync::CancellationToken,
}

/// Serves until SIGTERM or Ctrl-C, then lets calls in flight finish.
///
/// # Errors
///
/// [`ServeError`] when the server cannot start.
pub async fn serve(engine: TokaEngine, options: ServeOptions) -> Result<(), ServeError> {
    let remote = !options.addr.ip().is_loopback();
    if remote && options.auth.is_none() && !options.insecure_no_auth {
        return Err(ServeError::Open(options.addr));
    }
    let auth = auth_from(&options)?;
    if remote && auth.is_none() {
        eprintln!(
            "toka-host: WARNING: serving {} WITHOUT TOKENS (--insecure-no-auth): anyone who reaches this address can call every granted tool",
            options.addr
        );
    }
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: options.addr,
            source,
        })?;
    let addr = listener.local_addr()?;
    let (app, background) = assemble(engine, options, auth, addr).await?;
    let watcher = {
        let app = app.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(app.options.reload_interval).await;
                reload(&app, false).await;
            }
        })
    };
    let keys = app.auth.is_some().then(|| {
        let app = app.clone();
        tokio::spawn(async move {
            // Keys added or removed and revocations appended take effect
            // within a second or two, without a restart.
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Some(auth) = &app.auth {
                    match auth.verifier.refresh() {
                        Ok(true) => eprintln!("toka-host: keys or revocations changed; reloaded"),
                        Ok(false) => {}
                        Err(e) => eprintln!(
                            "toka-host: {e}; the previous keys and revocations stay in force"
                        ),
                    }
                }
            }
        })
    });
    let trimmer = trim::spawn();
    let router = router::router(app.clone());
    eprintln!(
        "toka-host serving {} tools on http://{addr}",
        app.catalog.snapshot().len()
    );
    let limits = listen::ConnectionLimits {
        max_connections: app.options.max_connections,
        header_timeout: app.options.header_timeout,
        drain: Duration::from_secs(60),
    };
    let (stopping, stop) = (app.stopping.clone(), app.stop.clone());
    listen::serve(listener, router, limits, async move {
        shutdown_signal().await;
        stopping.send_replace(true);
        stop.cancel();
    })
    .await;
    watcher.abort();
    trimmer.abort();
    background.abort();
    if let Some(k) = keys {
        k.abort();
    }
    eprintln!("toka-host: stopped after draining calls in flight");
    Ok(())
}

/// The token check `options` ask for, keys read.
fn auth_from(options: &ServeOptions) -> Result<Option<auth::Auth>, ServeError> {
    Ok(match &options.auth {
        None => None,
        Some(a) => Some(auth::Auth {
            verifier: toka_auth::Verifier::new(&a.keys, a.revocations.as_deref(), &a.audience)?,
            limiter: a.rate.map(limit::RateLimiter::new),
        }),
    })
}

/// Everything `serve` shares between its handlers, for a server at `addr`,
/// with the manifests directory scanned once; and the agents' background
/// task (leases, retention), which the caller stops.
async fn assemble(
    engine: TokaEngine,
    options: ServeOptions,
    auth: Option<auth::Auth>,
    addr: SocketAddr,
) -> Result<(Arc<App>, tokio::task::JoinHandle<()>), ServeError> {
    let remote = !addr.ip().is_loopback();
    // A directory that cannot be read at start is a mistake in the flags,
    // not an empty catalog.
    toka_spec::directory::list(&options.manifests)?;
    let audit = match &options.audit_log {
        None => None,
        Some(path) => Some(Arc::new(AuditLog::open(path).map_err(|source| {
            ServeError::Audit {
                path: path.clone(),
                source,
            }
        })?)),
    };
    let llm = match options.llm.clone() {
        None => None,
        Some(c) => Some(Arc::new(LlmClient::new(c, audit.clone())?)),
    };
    let engine = Arc::new(engine);
    let catalog = Arc::new(LiveCatalog::new(
        engine.clone(),
        options.manifests.clone(),
        options.grants.capabilities_only(),
    ));
    let runtime = Arc::new(Runtime {
        engine,
        catalog: catalog.clone(),
        grants: options.grants.clone(),
        shim: options.shim.clone(),
        llm,
        audit,
    });
    let event_tx = tokio::sync::broadcast::channel(4096).0;
    let door = Arc::new(crate::door::Door::new(
        options.max_concurrent,
        event_tx.clone(),
    ));
    // With tokens, a tool list depends on the token: private to it.
    let mcp = Arc::new(crate::mcp::Hub::new(
        runtime.clone(),
        catalog.clone(),
        door.clone(),
        auth.is_some(),
    ));
    let agents = Arc::new(match &options.state.url {
        None => AgentHost::new(runtime.clone(), event_tx.clone()),
        Some(url) => {
            let store = toka_store::open_with(
                url,
                toka_store::OpenOptions {
                    lease: options.state.lease,
                    ..toka_store::OpenOptions::default()
                },
            )
            .await?;
            eprintln!(
                "toka-host: agent runs in {} (replica `{}`)",
                store.url(),
                options.state.replica
            );
            AgentHost::with_store(
                runtime.clone(),
                event_tx.clone(),
                toka_runtime::agents::DurableOptions {
                    store,
                    replica: options.state.replica.clone(),
                    retention: options.state.retention,
                    keep_inputs: options.state.keep_inputs,
                },
            )
            .await?
        }
    });
    let port = addr.port();
    let hosts = if remote {
        Vec::new()
    } else {
        vec![
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
            addr.to_string(),
        ]
    };
    let app = Arc::new(App {
        options,
        runtime,
        catalog,
        agents,
        door,
        started: Instant::now(),
        hosts,
        events: event_tx,
        auth,
        stopping: tokio::sync::watch::channel(false).0,
        mcp,
        stop: tokio_util::sync::CancellationToken::new(),
    });
    let background = tokio::spawn(app.agents.clone().run_background());
    // The first scan loads everything before the first request.
    reload(&app, true).await;
    Ok((app, background))
}

/// One scan of the manifests directory, off the async executor; each
/// change goes to the log and the event stream.
async fn reload(app: &Arc<App>, initial: bool) {
    let catalog = app.catalog.clone();
    let Ok(result) = tokio::task::spawn_blocking(move || catalog.scan(initial)).await else {
        return;
    };
    let Ok(changes) = result else { return };
    let tools_changed = changes.iter().any(Change::changes_tools);
    for change in changes {
        eprintln!("toka-host: {change}");
        let event = match &change {
            Change::Loaded {
                name,
                version,
                digest,
                manifest,
                ..
            } => json!({
                "event": "tool-loaded", "tool": name, "version": version,
                "digest": digest, "manifest": manifest,
            }),
            Change::Replaced {
                name,
                version,
                digest,
                manifest,
                ..
            } => json!({
                "event": "tool-replaced", "tool": name, "version": version,
                "digest": digest, "manifest": manifest,
            }),
            Change::Removed { name, manifest } => {
                json!({ "event": "tool-removed", "tool": name, "manifest": manifest })
            }
            Change::Failed { manifest, error } => {
                json!({ "event": "tool-failed", "manifest": manifest, "error": error })
            }
            Change::DirectoryUnreadable { error } => {
                json!({ "event": "directory-unreadable", "error": error })
            }
            Change::DirectoryReadable => json!({ "event": "directory-readable" }),
        };
        let _ = app.events.send(event);
    }
    if tools_changed {
        app.mcp.tools_changed().await;
    }
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
