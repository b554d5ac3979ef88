//! MCP: every tool and workflow of a live catalog to any MCP client, over
//! stdio (`toka-host mcp`) and streamable HTTP (`/mcp` on `serve`), in both
//! protocol eras: the stateless 2026-07-28 revision and the 2025-11-25
//! handshake. The protocol (era negotiation, `server/discover`, header
//! validation, sessions, `subscriptions/listen`, cancellation) is the
//! official SDK's (rmcp); this module maps it onto the one call path:
//! [`handler`] answers requests, [`hub`] carries hot swaps to connected
//! clients, [`http`] mounts the service into `serve`'s router and answers
//! the stateless `tools/call` itself, the one request whose SDK setup cost
//! more than the call.

pub(crate) mod handler;
pub(crate) mod http;
pub(crate) mod hub;

pub(crate) use handler::McpHandler;
pub(crate) use hub::Hub;
