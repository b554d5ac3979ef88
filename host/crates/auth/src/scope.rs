//! What a verified token allows: its subject and ids for the audit log, its
//! capability set (computed once, at verify), and tool decisions (computed
//! on first use per tool name, then remembered).

use crate::datalog::{self, ALL_TOOLS, Decision, Request};
use biscuit_auth::{AuthorizerBuilder, Biscuit};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;
use toka_spec::manifest::Capability;

/// Tool decisions one scope remembers; past this the memory is cleared, so
/// that a client naming endless tools costs one Datalog run per name, not
/// unbounded memory.
const MAX_TOOL_DECISIONS: usize = 256;

/// What a verified token allows. Got from [`crate::Verifier::verify`],
/// which a server calls on every request (a repeated verify is cached), so
/// a scope answers for the moment it was verified; it also refuses
/// everything once the token expires.
pub struct Scope {
    pub(crate) subject: String,
    pub(crate) token_id: String,
    pub(crate) key_id: u32,
    pub(crate) expires: SystemTime,
    pub(crate) capabilities: BTreeSet<Capability>,
    pub(crate) all_tools: bool,
    /// The authority's tool names (may hold `*`): a name not among them is
    /// refused without running any Datalog.
    pub(crate) granted_tools: BTreeSet<String>,
    pub(crate) token: Biscuit,
    pub(crate) authorizer: Arc<AuthorizerBuilder>,
    pub(crate) decisions: RwLock<HashMap<String, bool>>,
}

impl Scope {
    /// Who the token is for.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// A short, stable id for the audit log: the first 16 hex digits of the
    /// token's last revocation id (what `inspect` shows as `token_id`).
    pub fn token_id(&self) -> &str {
        &self.token_id
    }

    /// The id of the key that signed the token.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// When the token stops being accepted: the earliest expiry of its
    /// blocks.
    pub fn expires(&self) -> SystemTime {
        self.expires
    }

    /// The capabilities the token allows after every attenuation. A tool
    /// called with this token gets at most these (and, as always, only
    /// those its manifest declares and the operator grants).
    pub fn capabilities(&self) -> &BTreeSet<Capability> {
        &self.capabilities
    }

    /// True when the token may call the tool `name`: the issuer granted it
    /// (or `*`) and every attenuation keeps it. `*` asks
    /// [`Scope::allows_all_tools`]. False once the token has expired.
    pub fn allows_tool(&self, name: &str) -> bool {
        if SystemTime::now() >= self.expires {
            return false;
        }
        if name == ALL_TOOLS {
            return self.all_tools;
        }
        if !self.granted_tools.contains(ALL_TOOLS) && !self.granted_tools.contains(name) {
            return false;
        }
        let known = self
            .decisions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied();
        if let Some(allowed) = known {
            return allowed;
        }
        let allowed = match datalog::decide(
            &self.authorizer,
            &self.token,
            Request::Tool(name),
            SystemTime::now(),
        ) {
            Decision::Allow => true,
            Decision::Deny => false,
            // Denied now, asked again next time.
            Decision::Limit(_) => return false,
        };
        let mut decisions = self
            .decisions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if decisions.len() >= MAX_TOOL_DECISIONS {
            decisions.clear();
        }
        decisions.insert(name.to_string(), allowed);
        allowed
    }

    /// True only for a token granted every tool (`*`) that no attenuation
    /// narrowed to a list: what operator endpoints such as `/status` ask.
    /// False once the token has expired.
    pub fn allows_all_tools(&self) -> bool {
        self.all_tools && SystemTime::now() < self.expires
    }
}

// By hand: the token itself must never reach a log.
impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("subject", &self.subject)
            .field("token_id", &self.token_id)
            .field("key_id", &self.key_id)
            .field("expires", &crate::time::Rfc3339(self.expires).to_string())
            .field("capabilities", &self.capabilities)
            .field("all_tools", &self.all_tools)
            .finish_non_exhaustive()
    }
}

/// The call path sees a verified token through this trait: the tools it
/// may call and the capabilities it may use.
impl toka_spec::policy::CallerScope for Scope {
    fn subject(&self) -> &str {
        Scope::subject(self)
    }

    fn token_id(&self) -> &str {
        Scope::token_id(self)
    }

    fn allows_tool(&self, name: &str) -> bool {
        Scope::allows_tool(self, name)
    }

    fn allows_all_tools(&self) -> bool {
        Scope::allows_all_tools(self)
    }

    fn capabilities(&self) -> &BTreeSet<Capability> {
        Scope::capabilities(self)
    }
}
