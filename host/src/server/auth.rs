//! Who a request comes from: set by the token check of the door (when
//! `serve` runs with `--auth-keys`) and read by every handler that calls a
//! tool, including MCP's.

use std::sync::Arc;
use toka_spec::policy::CallerScope;

/// A request's verified token, in the request's extensions.
#[derive(Clone, Debug)]
pub(crate) struct Authenticated(pub(crate) Arc<dyn CallerScope>);
