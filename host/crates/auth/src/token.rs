//! Making tokens: `issue` (needs the newest private key) and `attenuate`
//! (needs no key), and the checks every token text passes before biscuit
//! parses it (size, encoding, block count).
//!
//! A token is biscuit's serialization in URL-safe base64 with padding, as
//! `Biscuit::to_base64` writes it; it goes in `Authorization: Bearer`.

use crate::datalog::{self, ALL_TOOLS};
use crate::error::AuthError;
use crate::inspect::summarize;
use crate::keys;
use crate::time::whole_seconds;
use base64::Engine;
use biscuit_auth::UnverifiedBiscuit;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};
use toka_spec::manifest::Capability;

/// Longest token a verifier reads, in bytes of base64: room for about 20
/// attenuations, and small enough that parsing it is cheap.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Most blocks (the authority block and its attenuations) a verifier
/// evaluates: each costs a signature check.
pub const MAX_BLOCKS: usize = 16;
/// Time to live of a token issued without one.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// Longest time to live: tokens always expire.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// Audience of a token issued without one, and of a verifier by default.
pub const DEFAULT_AUDIENCE: &str = "toka";
/// Longest subject, audience or tool name in a token.
pub const MAX_NAME_BYTES: usize = 128;

/// What a new token allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueRequest {
    /// Tools it may call; `*` alone for every tool.
    pub tools: Vec<String>,
    /// Capabilities the tools it calls may use (empty: none).
    pub capabilities: Vec<Capability>,
    /// How long it lives; `None` is [`DEFAULT_TTL`], at most [`MAX_TTL`].
    pub ttl: Option<Duration>,
    /// Who it is for, as the audit log shows it.
    pub subject: String,
    /// Which servers accept it (they are started with the same audience).
    pub audience: String,
}

impl IssueRequest {
    /// A request for `subject` to call `tools`, with no capabilities, the
    /// default time to live and the default audience.
    pub fn new(subject: impl Into<String>, tools: Vec<String>) -> Self {
        IssueRequest {
            tools,
            capabilities: Vec::new(),
            ttl: None,
            subject: subject.into(),
            audience: DEFAULT_AUDIENCE.to_string(),
        }
    }
}

/// What an attenuation narrows; what is left out stays as it was.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attenuation {
    /// Tools the new token may call, among those the token allows (empty:
    /// no narrowing of tools).
    pub tools: Vec<String>,
    /// Capabilities the new token may use, among those the token allows
    /// (`Some(vec![])`: none at all).
    pub capabilities: Option<Vec<Capability>>,
    /// How long the new token lives from now, which must end before the
    /// token does.
    pub ttl: Option<Duration>,
}

/// Checks a subject, audience or tool name: names go into Datalog strings,
/// which biscuit prints without escaping, and into logs.
pub(crate) fn check_name(field: &'static str, value: &str) -> Result<(), AuthError> {
    let why = if value.is_empty() {
        "it is empty"
    } else if value.len() > MAX_NAME_BYTES {
        "it is longer than 128 bytes"
    } else if value
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        "it contains a quote, a backslash or a control character"
    } else {
        return Ok(());
    };
    Err(AuthError::BadName {
        field,
        value: value.chars().take(MAX_NAME_BYTES).collect(),
        why,
    })
}

fn check_ttl(ttl: Duration) -> Result<(), AuthError> {
    if ttl < Duration::from_secs(1) {
        Err(AuthError::BadTtl {
            ttl,
            why: "give at least 1s",
        })
    } else if ttl > MAX_TTL {
        Err(AuthError::BadTtl {
            ttl,
            why: "tokens live at most 365 days; issue a new one before this one ends",
        })
    } else {
        Ok(())
    }
}

/// Signs a new token with the newest key in `dir`.
///
/// # Errors
///
/// [`AuthError::BadName`], [`AuthError::NoTools`] or [`AuthError::BadTtl`]
/// for a bad request; [`AuthError::NoKeys`], [`AuthError::KeyFile`],
/// [`AuthError::PrivateKeyReadable`] or [`AuthError::Io`] when the key
/// cannot be used.
pub fn issue(dir: &Path, request: &IssueRequest) -> Result<String, AuthError> {
    check_name("subject", &request.subject)?;
    check_name("audience", &request.audience)?;
    let tools: BTreeSet<String> = request.tools.iter().cloned().collect();
    if tools.is_empty() {
        return Err(AuthError::NoTools);
    }
    for t in &tools {
        check_name("tools", t)?;
    }
    if tools.contains(ALL_TOOLS) && tools.len() > 1 {
        return Err(AuthError::BadName {
            field: "tools",
            value: ALL_TOOLS.into(),
            why: "`*` already means every tool: give it alone",
        });
    }
    let ttl = request.ttl.unwrap_or(DEFAULT_TTL);
    check_ttl(ttl)?;
    let (key_id, signer) = keys::signer(dir)?;
    let expires = whole_seconds(SystemTime::now() + ttl);
    let capabilities: BTreeSet<Capability> = request.capabilities.iter().copied().collect();
    datalog::authority(
        &request.subject,
        &request.audience,
        expires,
        &tools,
        &capabilities,
    )
    .map(|b| b.root_key_id(key_id))
    .and_then(|b| b.build(&signer))
    .and_then(|t| t.to_base64())
    .map_err(|source| AuthError::Build { source })
}

/// Appends a block to `token` that narrows it, without any key: the new
/// token allows what both the old token and the block allow.
///
/// Narrowing to something the token does not allow, or a time to live that
/// ends after the token, is refused rather than silently meaningless.
///
/// # Errors
///
/// [`AuthError::NothingToNarrow`], [`AuthError::BadName`],
/// [`AuthError::BadTtl`], [`AuthError::NotInToken`] or
/// [`AuthError::LaterExpiry`] for a bad request; a token error (malformed,
/// expired, too many blocks) for a bad token.
pub fn attenuate(token: &str, attenuation: &Attenuation) -> Result<String, AuthError> {
    if attenuation.tools.is_empty()
        && attenuation.capabilities.is_none()
        && attenuation.ttl.is_none()
    {
        return Err(AuthError::NothingToNarrow);
    }
    for t in &attenuation.tools {
        check_name("tools", t)?;
        if t == ALL_TOOLS {
            return Err(AuthError::BadName {
                field: "tools",
                value: t.clone(),
                why: "an attenuation names the tools to keep; leave tools out to keep them all",
            });
        }
    }
    let unverified = parse_unverified(token)?;
    if unverified.block_count() >= MAX_BLOCKS {
        return Err(AuthError::TooManyBlocks {
            count: unverified.block_count() + 1,
            max: MAX_BLOCKS,
        });
    }
    let current = summarize(&unverified)?;
    let now = SystemTime::now();
    if now >= current.expires {
        return Err(AuthError::Expired {
            at: current.expires,
        });
    }
    let tools: BTreeSet<String> = attenuation.tools.iter().cloned().collect();
    if let Some(t) = tools
        .iter()
        .find(|t| !current.tools.contains(ALL_TOOLS) && !current.tools.contains(*t))
    {
        return Err(AuthError::NotInToken {
            field: "tool",
            value: t.clone(),
            allowed: current.tools.iter().cloned().collect(),
        });
    }
    let capabilities: Option<BTreeSet<Capability>> = attenuation
        .capabilities
        .as_ref()
        .map(|c| c.iter().copied().collect());
    if let Some(c) = capabilities
        .iter()
        .flatten()
        .find(|c| !current.capabilities.contains(c))
    {
        return Err(AuthError::NotInToken {
            field: "capability",
            value: c.to_string(),
            allowed: current.capabilities.iter().map(|c| c.to_string()).collect(),
        });
    }
    let expires = match attenuation.ttl {
        Some(ttl) => {
            check_ttl(ttl)?;
            let at = whole_seconds(now + ttl);
            if at >= current.expires {
                return Err(AuthError::LaterExpiry {
                    requested: at,
                    current: current.expires,
                });
            }
            Some(at)
        }
        None => None,
    };
    let block = datalog::attenuation(
        (!tools.is_empty()).then_some(&tools),
        capabilities.as_ref(),
        expires,
    )
    .map_err(|source| AuthError::Build { source })?;
    unverified
        .append(block)
        .and_then(|t| t.to_base64())
        .map_err(|e| match e {
            biscuit_auth::error::Token::AppendOnSealed => AuthError::Malformed {
                reason: "it is sealed, so it cannot be attenuated",
            },
            source => AuthError::Build { source },
        })
}

/// The bytes of a token text: size cap, base64, block count, all before
/// biscuit parses anything.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, AuthError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(AuthError::Missing);
    }
    if text.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::TooLarge {
            size: text.len(),
            max: MAX_TOKEN_BYTES,
        });
    }
    // Biscuit writes padding; some clients strip it.
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(text).map_err(|_| AuthError::Malformed {
        reason: "it is not URL-safe base64",
    })?;
    // A count that cannot be made is left to biscuit's parser, which
    // rejects the token; the count after parsing is checked too.
    if let Some(count) = count_blocks(&bytes).filter(|&n| n > MAX_BLOCKS) {
        return Err(AuthError::TooManyBlocks {
            count,
            max: MAX_BLOCKS,
        });
    }
    Ok(bytes)
}

/// Parses a token without verifying it, for `attenuate`, `inspect` and
/// `revoke`, which have no keys.
pub(crate) fn parse_unverified(text: &str) -> Result<UnverifiedBiscuit, AuthError> {
    let bytes = decode(text)?;
    let token = UnverifiedBiscuit::from(&bytes).map_err(|_| AuthError::Malformed {
        reason: "it is not a biscuit token",
    })?;
    if token.block_count() > MAX_BLOCKS {
        return Err(AuthError::TooManyBlocks {
            count: token.block_count(),
            max: MAX_BLOCKS,
        });
    }
    Ok(token)
}

/// Counts the blocks of a serialized biscuit from its outer protobuf
/// message (`Biscuit { rootKeyId = 1; authority = 2; blocks = 3 (repeated);
/// proof = 4 }`) without decoding any block: the authority plus one per
/// field 3. `None` when the bytes are not such a message.
fn count_blocks(bytes: &[u8]) -> Option<usize> {
    fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *bytes.get(*at)?;
            *at += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    let mut at = 0;
    let mut count = 1;
    while at < bytes.len() {
        let key = varint(bytes, &mut at)?;
        match key & 7 {
            0 => {
                varint(bytes, &mut at)?;
            }
            2 => {
                let len = usize::try_from(varint(bytes, &mut at)?).ok()?;
                at = at.checked_add(len).filter(|&end| end <= bytes.len())?;
                if key >> 3 == 3 {
                    count += 1;
                }
            }
            _ => return None,
        }
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_break_datalog_or_logs_are_refused() {
        assert!(check_name("subject", "alice@example.com").is_ok());
        for bad in ["", "a\"b", "a\\b", "a\nb", &"x".repeat(129)] {
            let e = check_name("subject", bad).unwrap_err();
            assert!(e.to_string().starts_with("subject `"), "{e}");
        }
    }

    #[test]
    fn oversized_and_garbled_texts_are_refused_before_parsing() {
        let e = decode(&"A".repeat(MAX_TOKEN_BYTES + 1)).unwrap_err();
        assert!(matches!(e, AuthError::TooLarge { size, .. } if size == MAX_TOKEN_BYTES + 1));
        assert!(matches!(decode("  "), Err(AuthError::Missing)));
        assert!(matches!(
            decode("not base64!"),
            Err(AuthError::Malformed { .. })
        ));
    }

    #[test]
    fn blocks_are_counted_from_the_outer_message() {
        // Field 2 (authority) and three field-3 blocks of 1 byte each.
        let bytes = [0x12, 1, 0, 0x1a, 1, 0, 0x1a, 1, 0, 0x1a, 1, 0, 0x08, 7];
        assert_eq!(count_blocks(&bytes), Some(4));
        assert_eq!(count_blocks(&[0x1a, 9, 0]), None, "length past the end");
        let many: Vec<u8> = std::iter::repeat_n([0x1a, 0], MAX_BLOCKS + 1)
            .flatten()
            .collect();
        let text = base64::engine::general_purpose::URL_SAFE.encode(&many);
        assert!(
            matches!(decode(&text), Err(AuthError::TooManyBlocks { count, .. }) if count == MAX_BLOCKS + 2)
        );
    }
}
