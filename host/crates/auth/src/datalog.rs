//! The Datalog of a Toka token, in one place: what `issue` writes in the
//! authority block, what `attenuate` appends, and the authorizer a verifier
//! runs them with.
//!
//! Authority block (signed by the root key; only `issue` writes one):
//!
//! ```text
//! subject("alice"); audience("toka"); expires(2026-12-01T20:31:53Z);
//! tool("fs-read"); tool("web-fetch");        // or tool("*"): every tool
//! grant("network-access");                   // one per capability
//! check if time($now), $now < 2026-12-01T20:31:53Z;
//! ```
//!
//! Attenuation block (checks only, one per thing narrowed, plus the expiry
//! as a fact so that a verifier can see when its cached answer ends):
//!
//! ```text
//! reject if req_tool($t), !{"fs-read"}.contains($t);
//! reject if req_cap($c), !{"network-access"}.contains($c);
//! expires(2026-12-01T19:41:53Z); check if time($now), $now < 2026-12-01T19:41:53Z;
//! ```
//!
//! Authorizer: `check if audience(AUD)`, `check if expires($e), time($now),
//! $now < $e`, `allow if req_tool($t), tool($t)`, `allow if req_tool($t),
//! tool("*")`, `allow if req_cap($c), grant($c)`. One request per run: a
//! tool (`req_tool`) or a capability (`req_cap`), never both, so that a
//! tool's answer does not depend on capability narrowing and the reverse
//! (`reject if` passes when its request fact is absent).
//!
//! Why attenuation can only narrow: the authorizer's checks and policies
//! see only the authority block and the authorizer's own facts, so facts an
//! attenuation block writes (`tool("*")`, `grant(...)`, a later `expires`)
//! are invisible to them; a block can only add checks, and checks of all
//! blocks must all pass. The expiry a verifier caches against is the
//! earliest `expires` fact of any block, so a block can shorten it but not
//! lengthen it.
//!
//! Every run has limits (facts, iterations, time); a run that hits one is
//! a denial, never a partial answer.

use crate::error::AuthError;
use biscuit_auth::builder::{
    Binary, BlockBuilder, Check, CheckKind, Expression, Fact, Op, Predicate, Rule, Term, Unary,
};
use biscuit_auth::macros::{authorizer, biscuit, rule};
use biscuit_auth::{AuthorizerBuilder, AuthorizerLimits, Biscuit, BiscuitBuilder, error};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};
use toka_spec::manifest::Capability;

/// Limits of one Datalog run. A token from `issue` and `attenuate` needs a
/// few dozen facts and two iterations; the time limit is generous because a
/// loaded machine makes biscuit's 1 ms default fail spuriously.
pub(crate) const LIMITS: AuthorizerLimits = AuthorizerLimits {
    max_facts: 1000,
    max_iterations: 100,
    max_time: Duration::from_millis(5),
};

/// Runs after the first that a time limit hit is retried: on a loaded
/// machine a run is sometimes descheduled past the limit (the benchmark
/// saw it at 5 ms), and a legitimate request must not fail for that. The
/// fact and iteration limits are deterministic and never retried.
const TIMEOUT_RETRIES: usize = 2;

/// Runs `f` again when it hit the time limit, at most [`TIMEOUT_RETRIES`]
/// times.
fn retrying_timeouts<T>(mut f: impl FnMut() -> Result<T, error::Token>) -> Result<T, error::Token> {
    let mut retries = 0;
    loop {
        match f() {
            Err(error::Token::RunLimit(error::RunLimit::Timeout)) if retries < TIMEOUT_RETRIES => {
                retries += 1;
            }
            result => return result,
        }
    }
}

/// The tool name that stands for every tool.
pub(crate) const ALL_TOOLS: &str = "*";

fn string_set<'a>(items: impl IntoIterator<Item = &'a str>) -> Term {
    Term::Set(
        items
            .into_iter()
            .map(|s| Term::Str(s.to_string()))
            .collect(),
    )
}

/// The authority block of a new token. `expires` must be a whole second.
///
/// Verifiers run the Datalog for every decision, even for a token without
/// attenuation blocks, so a check added here is enforced without a change
/// anywhere else.
pub(crate) fn authority(
    subject: &str,
    audience: &str,
    expires: SystemTime,
    tools: &BTreeSet<String>,
    capabilities: &BTreeSet<Capability>,
) -> Result<BiscuitBuilder, error::Token> {
    let mut b = biscuit!(r#"subject({subject}); audience({audience}); expires({expires});"#)
        .check(expiry_check(expires))?;
    for t in tools {
        b = b.fact(Fact::new("tool".into(), vec![Term::Str(t.clone())]))?;
    }
    for c in capabilities {
        b = b.fact(Fact::new(
            "grant".into(),
            vec![Term::Str(c.as_str().to_string())],
        ))?;
    }
    Ok(b)
}

/// `reject if REQUEST($v), !SET.contains($v)`, built as biscuit's parser
/// builds it from that text, so that `inspect` recognises it by equality.
fn narrowing_check(request: &str, var: &str, set: Term) -> Check {
    let v = || Term::Variable(var.to_string());
    Check {
        queries: vec![Rule::new(
            Predicate::new("query".into(), Vec::<Term>::new()),
            vec![Predicate::new(request.into(), vec![v()])],
            vec![Expression {
                ops: vec![
                    Op::Value(set),
                    Op::Value(v()),
                    Op::Binary(Binary::Contains),
                    Op::Unary(Unary::Negate),
                ],
            }],
            vec![],
        )],
        kind: CheckKind::Reject,
    }
}

/// The check that narrows a token to `tools`.
pub(crate) fn tool_narrowing(tools: &BTreeSet<String>) -> Check {
    narrowing_check(
        "req_tool",
        "t",
        string_set(tools.iter().map(String::as_str)),
    )
}

/// The check that narrows a token to `capabilities` (empty: none).
pub(crate) fn capability_narrowing(capabilities: &BTreeSet<Capability>) -> Check {
    capability_narrowing_words(capabilities.iter().map(|c| c.as_str()))
}

/// [`capability_narrowing`] from words, which may include ones this host
/// does not know (to recognise hand-written blocks).
pub(crate) fn capability_narrowing_words<'a>(words: impl IntoIterator<Item = &'a str>) -> Check {
    narrowing_check("req_cap", "c", string_set(words))
}

/// `check if time($now), $now < AT`: the token ends at `at` (a whole
/// second).
pub(crate) fn expiry_check(at: SystemTime) -> Check {
    let now = || Term::Variable("now".to_string());
    Check {
        queries: vec![Rule::new(
            Predicate::new("query".into(), Vec::<Term>::new()),
            vec![Predicate::new("time".into(), vec![now()])],
            vec![Expression {
                ops: vec![
                    Op::Value(now()),
                    Op::Value(Term::from(at)),
                    Op::Binary(Binary::LessThan),
                ],
            }],
            vec![],
        )],
        kind: CheckKind::One,
    }
}

/// The fact that tells a verifier when a block's expiry check starts
/// failing.
pub(crate) fn expiry_fact(at: SystemTime) -> Fact {
    Fact::new("expires".into(), vec![Term::from(at)])
}

/// The block `attenuate` appends: only what is given is narrowed.
pub(crate) fn attenuation(
    tools: Option<&BTreeSet<String>>,
    capabilities: Option<&BTreeSet<Capability>>,
    expires: Option<SystemTime>,
) -> Result<BlockBuilder, error::Token> {
    let mut b = BlockBuilder::new();
    if let Some(tools) = tools {
        b = b.check(tool_narrowing(tools))?;
    }
    if let Some(capabilities) = capabilities {
        b = b.check(capability_narrowing(capabilities))?;
    }
    if let Some(at) = expires {
        b = b.fact(expiry_fact(at))?.check(expiry_check(at))?;
    }
    Ok(b)
}

/// The verifier's authorizer for `audience`, built once and cloned for
/// each decision.
pub(crate) fn authorizer(audience: &str) -> AuthorizerBuilder {
    authorizer!(
        r#"check if audience({audience});
           check if expires($e), time($now), $now < $e;
           allow if req_tool($t), tool($t);
           allow if req_tool($t), tool("*");
           allow if req_cap($c), grant($c);"#
    )
    .set_limits(LIMITS)
}

/// One question asked of a token.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Request<'a> {
    /// May it call this tool? ([`ALL_TOOLS`] asks whether every tool's
    /// narrowing leaves all tools.)
    Tool(&'a str),
    /// May a tool it calls use this capability?
    Capability(Capability),
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Every check passed and an allow policy matched.
    Allow,
    /// A check failed, no policy matched, or the Datalog could not be
    /// evaluated.
    Deny,
    /// A run limit was hit: deny, but do not remember the answer, since
    /// a time limit can be hit by a loaded machine.
    Limit(error::RunLimit),
}

/// Asks `token` one question at time `now`.
pub(crate) fn decide(
    base: &AuthorizerBuilder,
    token: &Biscuit,
    request: Request<'_>,
    now: SystemTime,
) -> Decision {
    let request = match request {
        Request::Tool(t) => Fact::new("req_tool".into(), vec![Term::Str(t.to_string())]),
        Request::Capability(c) => {
            Fact::new("req_cap".into(), vec![Term::Str(c.as_str().to_string())])
        }
    };
    let result = retrying_timeouts(|| {
        base.clone()
            .fact(Fact::new("time".into(), vec![Term::from(now)]))
            .and_then(|b| b.fact(request.clone()))
            .and_then(|b| b.build(token))
            .and_then(|mut a| a.authorize())
    });
    match result {
        Ok(_) => Decision::Allow,
        Err(error::Token::RunLimit(limit)) => Decision::Limit(limit),
        // Failed checks, no matching policy, an expression a hand-written
        // block made fail: all deny.
        Err(_) => Decision::Deny,
    }
}

/// What the authority block grants, read from a verified token.
#[derive(Clone, Debug)]
pub(crate) struct Authority {
    pub(crate) subject: String,
    pub(crate) audience: String,
    /// The earliest `expires` of any block: the end of the token's life as
    /// far as its canonical attenuations say.
    pub(crate) earliest_expiry: SystemTime,
    /// Tool names, possibly `*`.
    pub(crate) tools: BTreeSet<String>,
    /// Capabilities this host knows; unknown words grant nothing.
    pub(crate) capabilities: BTreeSet<Capability>,
}

fn exactly_one<T>(mut v: Vec<(T,)>) -> Result<T, AuthError> {
    match v.pop() {
        Some((x,)) if v.is_empty() => Ok(x),
        _ => Err(AuthError::Malformed {
            reason: "its authority block needs exactly one subject, audience and expiry",
        }),
    }
}

/// The raw answers of [`read_authority`]'s queries.
type Answers = (
    Vec<(String,)>,
    Vec<(String,)>,
    Vec<(SystemTime,)>,
    Vec<(SystemTime,)>,
    Vec<(String,)>,
    Vec<(String,)>,
);

fn query_authority(token: &Biscuit) -> Result<Answers, error::Token> {
    let mut a = AuthorizerBuilder::new().set_limits(LIMITS).build(token)?;
    Ok((
        a.query(rule!("q($s) <- subject($s)"))?,
        a.query(rule!("q($a) <- audience($a)"))?,
        a.query(rule!("q($e) <- expires($e)"))?,
        // `query_all` sees every block: a block's `expires` can only make
        // the minimum earlier.
        a.query_all(rule!("q($e) <- expires($e)"))?,
        a.query(rule!("q($t) <- tool($t)"))?,
        a.query(rule!("q($g) <- grant($g)"))?,
    ))
}

/// Reads the authority facts of a verified token (and the earliest expiry
/// of any block) with queries: typed, no text round trip.
pub(crate) fn read_authority(token: &Biscuit) -> Result<Authority, AuthError> {
    let (subject, audience, expires, all, tools, grants) = retrying_timeouts(|| {
        query_authority(token)
    })
    .map_err(|e| match e {
        error::Token::RunLimit(limit) => AuthError::RunLimit { limit },
        // A term of the wrong type (a string `expires`, a date
        // `subject`), in the authority or in any block.
        _ => AuthError::Malformed {
            reason: "a block holds a subject, audience, expires, tool or grant of the wrong type",
        },
    })?;
    let expires = exactly_one(expires)?;
    let earliest_expiry = all.into_iter().map(|(t,)| t).fold(expires, SystemTime::min);
    Ok(Authority {
        subject: exactly_one(subject)?,
        audience: exactly_one(audience)?,
        earliest_expiry,
        tools: tools.into_iter().map(|(t,)| t).collect(),
        capabilities: grants
            .into_iter()
            .filter_map(|(g,)| g.parse().ok())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn only_time_limits_are_retried_and_only_twice() {
        let timeout = || error::Token::RunLimit(error::RunLimit::Timeout);
        let mut calls = 0;
        let r = retrying_timeouts(|| {
            calls += 1;
            if calls < 3 { Err(timeout()) } else { Ok(calls) }
        });
        assert_eq!(r, Ok(3));
        calls = 0;
        let r: Result<(), _> = retrying_timeouts(|| {
            calls += 1;
            Err(timeout())
        });
        assert_eq!((r, calls), (Err(timeout()), 1 + TIMEOUT_RETRIES));
        calls = 0;
        let r: Result<(), _> = retrying_timeouts(|| {
            calls += 1;
            Err(error::Token::RunLimit(error::RunLimit::TooManyFacts))
        });
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }

    #[test]
    fn canonical_checks_read_as_the_documented_datalog() {
        let tools = BTreeSet::from(["fs-read".to_string(), "sh".to_string()]);
        assert_eq!(
            tool_narrowing(&tools).to_string(),
            r#"reject if req_tool($t), !{"fs-read", "sh"}.contains($t)"#
        );
        let caps = BTreeSet::from([Capability::NetworkAccess]);
        assert_eq!(
            capability_narrowing(&caps).to_string(),
            r#"reject if req_cap($c), !{"network-access"}.contains($c)"#
        );
        assert_eq!(
            capability_narrowing(&BTreeSet::new()).to_string(),
            "reject if req_cap($c), !{,}.contains($c)"
        );
        let at = UNIX_EPOCH + Duration::from_secs(1_796_157_113);
        assert_eq!(
            expiry_check(at).to_string(),
            "check if time($now), $now < 2026-12-01T20:31:53Z"
        );
        // And parsing that text gives the same check back.
        for check in [
            tool_narrowing(&tools),
            capability_narrowing(&BTreeSet::new()),
            expiry_check(at),
        ] {
            let parsed = BlockBuilder::new()
                .code(format!("{check};"))
                .unwrap()
                .checks;
            assert_eq!(parsed, [check]);
        }
    }
}
