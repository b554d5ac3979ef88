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
mod error;
mod metrics;
mod router;
mod status;
mod tools;

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::{Duration, Instant};
use toka_runtime::agents::AgentHost;
use toka_runtime::audit::AuditLog;
use toka_runtime::call::Runtime;
use toka_runtime::catalog::{Change, LiveCatalog};
use toka_runtime::engine::TokaEngine;
use toka_runtime::llm::{LlmClient, LlmConfig, LlmConfigError};
use toka_runtime::shim::ShimOptions;
use toka_spec::policy::Grants;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Allow a non-loopback address.
    pub allow_remote: bool,
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
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without `--allow-remote`.
    #[error(
        "refusing to listen on {0}: it is not a loopback address; tools would be reachable from other machines. Pass --allow-remote if that is what you want"
    )]
    Remote(SocketAddr),
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
    pub(crate) permits: tokio::sync::Semaphore,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) calls: AtomicU64,
    pub(crate) started: Instant,
    pub(crate) hosts: Vec<String>,
    pub(crate) events: tokio::sync::broadcast::Sender<Value>,
    pub(crate) metrics: metrics::Metrics,
}

/// Serves until SIGTERM or Ctrl-C, then lets calls in flight finish.
///
/// # Errors
///
/// [`ServeError`] when the server cannot start.
pub async fn serve(engine: TokaEngine, options: ServeOptions) -> Result<(), ServeError> {
    if !options.addr.ip().is_loopback() && !options.allow_remote {
        return Err(ServeError::Remote(options.addr));
    }
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: options.addr,
            source,
        })?;
    let addr = listener.local_addr()?;
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
    let catalog = Arc::new(LiveCatalog::new(engine.clone(), options.manifests.clone()));
    let runtime = Arc::new(Runtime {
        engine,
        catalog: catalog.clone(),
        grants: options.grants.clone(),
        shim: options.shim.clone(),
        llm,
        audit,
    });
    let event_tx = tokio::sync::broadcast::channel(4096).0;
    let agents = Arc::new(AgentHost::new(runtime.clone(), event_tx.clone()));
    let port = addr.port();
    let hosts = if options.allow_remote {
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
        permits: tokio::sync::Semaphore::new(options.max_concurrent),
        options,
        runtime,
        catalog,
        agents,
        in_flight: AtomicUsize::new(0),
        calls: AtomicU64::new(0),
        started: Instant::now(),
        hosts,
        events: event_tx,
        metrics: metrics::Metrics::default(),
    });
    // The first scan loads everything before the first request.
    reload(&app, true).await;
    let watcher = {
        let app = app.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(app.options.reload_interval).await;
                reload(&app, false).await;
            }
        })
    };
    let router = router::router(app.clone());
    eprintln!(
        "toka-host serving {} tools on http://{addr}",
        app.catalog.snapshot().len()
    );
    let result = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await;
    watcher.abort();
    eprintln!("toka-host: stopped after draining calls in flight");
    result.map_err(ServeError::Io)
}

/// One scan of the manifests directory, off the async executor; each
/// change goes to the log and the event stream.
async fn reload(app: &Arc<App>, initial: bool) {
    let catalog = app.catalog.clone();
    let Ok(result) = tokio::task::spawn_blocking(move || catalog.scan(initial)).await else {
        return;
    };
    let Ok(changes) = result else { return };
    for change in changes {
        let event = match &change {
            Change::Loaded {
                name,
                version,
                digest,
                manifest,
            }
            | Change::Replaced {
                name,
                version,
                digest,
                manifest,
            } => {
                eprintln!(
                    "toka-host: loaded {name} {} from {}",
                    version.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                    manifest.display()
                );
                let kind = if matches!(change, Change::Loaded { .. }) {
                    "tool-loaded"
                } else {
                    "tool-replaced"
                };
                json!({
                    "event": kind, "tool": name, "version": version,
                    "digest": digest, "manifest": manifest,
                })
            }
            Change::Removed { name, manifest } => {
                eprintln!("toka-host: removed {name} ({} is gone)", manifest.display());
                json!({ "event": "tool-removed", "tool": name, "manifest": manifest })
            }
            Change::Failed { manifest, error } => {
                eprintln!("toka-host: {error} (the previous version, if any, keeps serving)");
                json!({ "event": "tool-failed", "manifest": manifest, "error": error })
            }
            Change::DirectoryUnreadable { error } => {
                eprintln!("toka-host: {error}; every tool keeps serving as it was");
                json!({ "event": "directory-unreadable", "error": error })
            }
            Change::DirectoryReadable => {
                eprintln!(
                    "toka-host: the manifests directory {} is readable again",
                    app.catalog.dir().display()
                );
                json!({ "event": "directory-readable" })
            }
        };
        let _ = app.events.send(event);
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
