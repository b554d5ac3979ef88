//! What a token says, read without any key: `inspect`'s report, and the
//! summary `attenuate` checks a request against.
//!
//! Nothing here is verified: anyone can write a token that claims anything,
//! so the report says `"verified": false`, and no decision is ever taken
//! from it (a verifier reads the signed token with typed queries, see
//! `datalog::read_authority`). Biscuit offers no keyless access to a
//! block's facts, so each block is printed as Datalog and parsed back; a
//! statement that is not one `issue` or `attenuate` writes is listed under
//! `other`, and whatever it does, it can only narrow further.

use crate::datalog::{self, ALL_TOOLS};
use crate::error::AuthError;
use crate::time::Expiry;
use crate::token::parse_unverified;
use biscuit_auth::UnverifiedBiscuit;
use biscuit_auth::builder::{BlockBuilder, Check, Fact, Op, Term};
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use toka_spec::manifest::Capability;

/// What a token says, as `token inspect` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Always `false`: this was read without checking any signature.
    pub verified: bool,
    /// Who the token is for.
    pub subject: String,
    /// Which servers accept it.
    pub audience: String,
    /// Tools it may call after every attenuation (`["*"]`: all).
    pub tools: Vec<String>,
    /// Capabilities it may use after every attenuation.
    pub capabilities: Vec<Capability>,
    /// When it expires, after every attenuation.
    pub expires: Expiry,
    /// The id of the key that signed it (as the token claims).
    pub key_id: Option<u32>,
    /// Its short id, as the audit log and `Revoked` errors show it.
    pub token_id: String,
    /// One revocation id per block, in hex; revoking the last revokes this
    /// token and everything attenuated from it.
    pub revocation_ids: Vec<String>,
    /// What the issuer granted (the authority block).
    pub issued: Grant,
    /// Each attenuation block's narrowing, in order.
    pub attenuations: Vec<Narrowing>,
}

/// What the authority block grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// Tools (`["*"]`: all).
    pub tools: Vec<String>,
    /// Capabilities.
    pub capabilities: Vec<Capability>,
    /// Expiry.
    pub expires: Expiry,
    /// Statements `issue` does not write, as Datalog.
    pub other: Vec<String>,
}

/// What one attenuation block narrows; `None` leaves it as it was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Narrowing {
    /// The tools it keeps.
    pub tools: Option<Vec<String>>,
    /// The capabilities it keeps (those this host knows).
    pub capabilities: Option<Vec<Capability>>,
    /// Its expiry.
    pub expires: Option<Expiry>,
    /// Statements `attenuate` does not write, as Datalog: they can only
    /// narrow further, in ways this summary does not show.
    pub other: Vec<String>,
}

/// Reads what `token` says, without any key.
///
/// # Errors
///
/// A token error when the text is not a token, or its authority block is
/// not one `issue` writes.
pub fn inspect(token: &str) -> Result<TokenInfo, AuthError> {
    Ok(summarize(&parse_unverified(token)?)?.info)
}

/// The typed summary of a token, with the report.
pub(crate) struct Summary {
    /// Effective tools (may hold `*`).
    pub(crate) tools: BTreeSet<String>,
    /// Effective capabilities.
    pub(crate) capabilities: BTreeSet<Capability>,
    /// Effective expiry.
    pub(crate) expires: SystemTime,
    /// The report.
    pub(crate) info: TokenInfo,
}

/// The short id of a token: the first 16 hex digits of its last
/// revocation id (stable, public, unique per issuance and attenuation).
pub(crate) fn token_id(revocation_ids: &[Vec<u8>]) -> String {
    revocation_ids
        .last()
        .map(|id| hex::encode(&id[..id.len().min(8)]))
        .unwrap_or_default()
}

fn block(token: &UnverifiedBiscuit, i: usize) -> Result<BlockBuilder, AuthError> {
    token
        .print_block_source(i)
        .and_then(|source| BlockBuilder::new().code(source))
        .map_err(|_| AuthError::Malformed {
            reason: "one of its blocks cannot be read back",
        })
}

fn one_string(fact: &Fact) -> Option<&str> {
    match fact.predicate.terms.as_slice() {
        [Term::Str(s)] => Some(s),
        _ => None,
    }
}

fn one_date(fact: &Fact) -> Option<SystemTime> {
    match fact.predicate.terms.as_slice() {
        [Term::Date(d)] => Some(UNIX_EPOCH + Duration::from_secs(*d)),
        _ => None,
    }
}

/// The set of strings in a narrowing check, if it is one (the first set
/// literal of its only expression).
fn set_in(check: &Check) -> Option<BTreeSet<String>> {
    let ops = &check.queries.first()?.expressions.first()?.ops;
    ops.iter().find_map(|op| match op {
        Op::Value(Term::Set(items)) => items
            .iter()
            .map(|t| match t {
                Term::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    })
}

/// The date in an expiry check, if it is one.
fn date_in(check: &Check) -> Option<SystemTime> {
    let ops = &check.queries.first()?.expressions.first()?.ops;
    ops.iter().find_map(|op| match op {
        Op::Value(Term::Date(d)) => Some(UNIX_EPOCH + Duration::from_secs(*d)),
        _ => None,
    })
}

fn sorted<T: Clone + Ord>(set: &BTreeSet<T>) -> Vec<T> {
    set.iter().cloned().collect()
}

fn other_statements(b: &BlockBuilder, facts: &[&Fact], checks: &[&Check]) -> Vec<String> {
    let mut other: Vec<String> = facts.iter().map(|f| format!("{f};")).collect();
    other.extend(b.rules.iter().map(|r| format!("{r};")));
    other.extend(checks.iter().map(|c| format!("{c};")));
    other.extend(b.scopes.iter().map(|s| format!("trusting {s}")));
    other
}

/// The authority block: subject, audience and what it grants.
fn issued(authority: &BlockBuilder) -> Result<(String, String, Grant, SystemTime), AuthError> {
    let (mut subject, mut audience, mut expires) = (None, None, None);
    let mut tools = BTreeSet::new();
    let mut capabilities = BTreeSet::new();
    let mut other_facts = Vec::new();
    for f in &authority.facts {
        match (f.predicate.name.as_str(), one_string(f), one_date(f)) {
            ("subject", Some(s), _) if subject.is_none() => subject = Some(s.to_string()),
            ("audience", Some(a), _) if audience.is_none() => audience = Some(a.to_string()),
            ("expires", _, Some(t)) if expires.is_none() => expires = Some(t),
            ("tool", Some(t), _) => {
                tools.insert(t.to_string());
            }
            ("grant", Some(g), _) => match g.parse::<Capability>() {
                Ok(c) => {
                    capabilities.insert(c);
                }
                // A word this host does not know grants nothing here.
                Err(_) => other_facts.push(f),
            },
            _ => other_facts.push(f),
        }
    }
    let (Some(subject), Some(audience), Some(expires)) = (subject, audience, expires) else {
        return Err(AuthError::Malformed {
            reason: "its authority block has no subject, audience or expiry: it was not made by `token issue`",
        });
    };
    let own_check = datalog::expiry_check(expires);
    let other_checks: Vec<&Check> = authority
        .checks
        .iter()
        .filter(|c| **c != own_check)
        .collect();
    let grant = Grant {
        tools: sorted(&tools),
        capabilities: sorted(&capabilities),
        expires: expires.into(),
        other: other_statements(authority, &other_facts, &other_checks),
    };
    Ok((subject, audience, grant, expires))
}

/// What an attenuation block narrows, with its expiry as a time.
fn narrowing(b: &BlockBuilder) -> (Narrowing, Option<SystemTime>) {
    let (mut tools, mut capabilities, mut expires) = (None, None, None::<SystemTime>);
    fn intersect<T: Ord>(so_far: Option<BTreeSet<T>>, keep: BTreeSet<T>) -> BTreeSet<T> {
        match so_far {
            Some(mut s) => {
                s.retain(|x| keep.contains(x));
                s
            }
            None => keep,
        }
    }
    let mut other_checks = Vec::new();
    for c in &b.checks {
        let set = set_in(c);
        // Two narrowings in one (hand-written) block both apply.
        if let Some(keep) = set.as_ref().filter(|s| *c == datalog::tool_narrowing(s)) {
            tools = Some(intersect(tools, keep.clone()));
        } else if let Some(words) =
            set.filter(|s| *c == datalog::capability_narrowing_words(s.iter().map(String::as_str)))
        {
            // Unknown words (in a hand-written set) grant nothing here, so
            // the set this host acts on is the known part.
            let keep: BTreeSet<Capability> = words.iter().filter_map(|w| w.parse().ok()).collect();
            capabilities = Some(intersect(capabilities, keep));
        } else if let Some(at) = date_in(c).filter(|at| *c == datalog::expiry_check(*at)) {
            expires = Some(expires.map_or(at, |e| e.min(at)));
        } else {
            other_checks.push(c);
        }
    }
    let mut other_facts = Vec::new();
    for f in &b.facts {
        match (f.predicate.name.as_str(), one_date(f)) {
            // The fact beside an expiry check; a verifier also takes the
            // earliest `expires` of any block as the end of what it caches.
            ("expires", Some(at)) => expires = Some(expires.map_or(at, |e| e.min(at))),
            _ => other_facts.push(f),
        }
    }
    let n = Narrowing {
        tools: tools.as_ref().map(sorted),
        capabilities: capabilities.as_ref().map(sorted),
        expires: expires.map(Expiry::from),
        other: other_statements(b, &other_facts, &other_checks),
    };
    (n, expires)
}

/// Reads the authority block and each attenuation block.
pub(crate) fn summarize(token: &UnverifiedBiscuit) -> Result<Summary, AuthError> {
    let (subject, audience, issued, mut expires) = issued(&block(token, 0)?)?;
    let mut tools: BTreeSet<String> = issued.tools.iter().cloned().collect();
    let mut capabilities: BTreeSet<Capability> = issued.capabilities.iter().copied().collect();
    let mut attenuations = Vec::new();
    for i in 1..token.block_count() {
        let (n, ends) = narrowing(&block(token, i)?);
        if let Some(keep) = &n.tools {
            let keep: BTreeSet<String> = keep.iter().cloned().collect();
            tools = if tools.contains(ALL_TOOLS) {
                keep
            } else {
                tools.intersection(&keep).cloned().collect()
            };
        }
        if let Some(keep) = &n.capabilities {
            capabilities.retain(|c| keep.contains(c));
        }
        expires = ends.map_or(expires, |e| expires.min(e));
        attenuations.push(n);
    }
    let ids = token.revocation_identifiers();
    let info = TokenInfo {
        verified: false,
        subject,
        audience,
        tools: sorted(&tools),
        capabilities: sorted(&capabilities),
        expires: expires.into(),
        key_id: token.root_key_id(),
        token_id: token_id(&ids),
        revocation_ids: ids.iter().map(hex::encode).collect(),
        issued,
        attenuations,
    };
    Ok(Summary {
        tools,
        capabilities,
        expires,
        info,
    })
}
