//! `toka-host mcp`: an MCP server on stdin/stdout over the tools of a
//! manifests directory, as the operator (no token), with `serve`'s flags.
//! Stdout carries nothing but the protocol: logs go to stderr, and a tool's
//! own output is captured.

use super::{AuditArgs, DirArgs, SandboxArgs};
use crate::mcp::{Hub, McpHandler};
use clap::Args;
use rmcp::ServiceExt;
use std::sync::Arc;
use std::time::Duration;
use toka_runtime::call::Runtime;
use toka_runtime::catalog::{Change, LiveCatalog};
use toka_spec::exit;
use toka_spec::units::HumanDuration;

/// Shown after `mcp --help`.
pub const AFTER_HELP: &str = "\
An MCP client starts it as a stdio server, e.g. in its JSON configuration:
  { \"mcpServers\": { \"toka\": { \"command\": \"toka-host\",
      \"args\": [\"mcp\", \"--manifests\", \"/path/to/manifests\", \"--grant\", \"filesystem-read\"] } } }

Both protocol eras are served: 2026-07-28 (server/discover, per-request _meta) and
2025-11-25 (initialize). A manifest added, changed or removed is announced to the
client (notifications/tools/list_changed) within a second.";

/// `toka-host mcp` flags.
#[derive(Debug, Args)]
pub struct McpArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub dir: DirArgs,

    /// How often the manifests directory is checked for changes.
    #[arg(
        long = "reload-interval",
        value_name = "DURATION",
        default_value = "200ms"
    )]
    pub reload_interval: HumanDuration,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub audit: AuditArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub sandbox: SandboxArgs,
}

/// Runs the stdio server until the client closes it; returns the exit code.
pub async fn run(args: McpArgs) -> u8 {
    match serve(&args).await {
        Ok(()) => exit::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            exit::INVALID
        }
    }
}

async fn serve(args: &McpArgs) -> Result<(), String> {
    let manifests = args.dir.manifests.clone();
    toka_spec::directory::list(&manifests).map_err(|e| e.to_string())?;
    let sandbox = &args.sandbox;
    let engine = Arc::new(sandbox.engine()?);
    let audit = args.audit.open()?;
    let llm = super::llm_from_env(audit.clone()).map_err(|e| e.to_string())?;
    let grants = sandbox.grants.grants(&sandbox.limits);
    let catalog = Arc::new(LiveCatalog::new(
        engine.clone(),
        manifests,
        grants.capabilities_only(),
    ));
    let runtime = Arc::new(Runtime {
        engine,
        catalog: catalog.clone(),
        grants,
        shim: sandbox.shim.options()?,
        llm,
        audit,
    });
    // One client on stdio: as many calls at once as it sends; events are
    // for HTTP's /v1/events, which stdio has not.
    let door = Arc::new(crate::door::Door::new(
        usize::MAX,
        tokio::sync::broadcast::channel(1).0,
    ));
    let hub = Arc::new(Hub::new(runtime, catalog.clone(), door, false));
    let interval = args.reload_interval.0.max(Duration::from_millis(10));
    reload(&hub, true).await;
    let watcher = {
        let hub = hub.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                reload(&hub, false).await;
            }
        })
    };
    eprintln!(
        "toka-host: MCP server on stdio with {} tools",
        catalog.snapshot().len()
    );
    let served = McpHandler::new(hub)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("MCP session failed to start: {e}"))?;
    let _ = served.waiting().await;
    watcher.abort();
    Ok(())
}

async fn reload(hub: &Arc<Hub>, initial: bool) {
    let catalog = hub.catalog.clone();
    let Ok(Ok(changes)) = tokio::task::spawn_blocking(move || catalog.scan(initial)).await else {
        return;
    };
    for change in &changes {
        eprintln!("toka-host: {change}");
    }
    if changes.iter().any(Change::changes_tools) {
        hub.tools_changed().await;
    }
}
