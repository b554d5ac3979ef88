//! What every MCP connection of a process shares: the runtime and the live
//! catalog, and the clients to tell when the tool list changes — modern
//! (2026-07-28) `subscriptions/listen` streams and legacy (2025-11-25)
//! sessions, which get `notifications/tools/list_changed`.

use crate::door::Door;
use rmcp::RoleServer;
use rmcp::service::{Peer, SubscriptionSink};
use std::sync::{Arc, Mutex};
use toka_runtime::call::Runtime;
use toka_runtime::catalog::LiveCatalog;

/// The state every MCP handler clone points to.
pub(crate) struct Hub {
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) catalog: Arc<LiveCatalog>,
    /// The way in every call shares with the HTTP API.
    pub(crate) door: Arc<Door>,
    /// True for `serve`'s `/mcp` with `--auth-keys`: tool lists depend on
    /// the token, so they are `cacheScope: private`.
    pub(crate) per_token: bool,
    sinks: Mutex<Vec<SubscriptionSink>>,
    peers: Mutex<Vec<Peer<RoleServer>>>,
}

impl Hub {
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        catalog: Arc<LiveCatalog>,
        door: Arc<Door>,
        per_token: bool,
    ) -> Hub {
        Hub {
            runtime,
            catalog,
            door,
            per_token,
            sinks: Mutex::new(Vec::new()),
            peers: Mutex::new(Vec::new()),
        }
    }

    /// A `subscriptions/listen` stream opened.
    pub(crate) fn add_sink(&self, sink: SubscriptionSink) {
        if let Ok(mut s) = self.sinks.lock() {
            s.push(sink);
        }
    }

    /// A `subscriptions/listen` stream closed.
    pub(crate) fn remove_sink(&self, id: &rmcp::model::RequestId) {
        if let Ok(mut s) = self.sinks.lock() {
            s.retain(|sink| sink.id() != id);
        }
    }

    /// A legacy session finished its handshake.
    pub(crate) fn add_peer(&self, peer: Peer<RoleServer>) {
        if let Ok(mut p) = self.peers.lock() {
            p.retain(|p| !p.is_transport_closed());
            p.push(peer);
        }
    }

    /// Tells every connected client that the tool list changed.
    pub(crate) async fn tools_changed(&self) {
        let sinks: Vec<SubscriptionSink> = self.sinks.lock().map(|s| s.clone()).unwrap_or_default();
        for sink in sinks {
            let _ = sink.notify_tool_list_changed().await;
        }
        let peers: Vec<Peer<RoleServer>> = match self.peers.lock() {
            Ok(mut p) => {
                p.retain(|p| !p.is_transport_closed());
                p.clone()
            }
            Err(_) => Vec::new(),
        };
        for peer in peers {
            let _ = peer.notify_tool_list_changed().await;
        }
    }
}
