//! The verifier a server holds: a key ring and a revocation list reloaded
//! when their files change, and a cache of verified tokens so that a
//! repeated request costs a hash and a map lookup, not signature checks.
//!
//! A first verify checks, in order: size and block count (before parsing),
//! a key id in the ring, every signature, no revoked id, the expiry, the
//! audience; then it asks the Datalog which capabilities remain. The
//! result is cached under the BLAKE3 hash of the token text (the text is
//! not kept; the parsed token is, inside the scope, for tool decisions). A cached entry is used only while the key ring and
//! revocations are those it was verified against (any change clears the
//! cache), the token has not expired (checked on every hit), and it is
//! younger than [`REVERIFY_AFTER`]: a hand-written block can hold time
//! checks the cached expiry does not know about, and this bounds how long
//! they can be overrun.

use crate::datalog::{self, ALL_TOOLS, Decision, Request};
use crate::error::AuthError;
use crate::inspect::token_id;
use crate::keys::{FileStamp, KeyRing, ring_stamp};
use crate::revoke::{self, Revocations};
use crate::scope::Scope;
use crate::token::{self, MAX_TOKEN_BYTES, check_name};
use biscuit_auth::AuthorizerBuilder;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// How long a verified token is trusted from the cache before it is
/// verified again from scratch.
pub const REVERIFY_AFTER: Duration = Duration::from_secs(60);
/// Verified tokens a verifier remembers by default.
pub const DEFAULT_CACHE_ENTRIES: usize = 10_000;

/// The key ring and revocations in force, with the stamps of the files
/// they were read from.
struct State {
    ring: KeyRing,
    ring_stamp: Vec<(u32, FileStamp)>,
    revoked: Revocations,
    revoked_stamp: Option<FileStamp>,
}

struct Entry {
    scope: Arc<Scope>,
    verified: Instant,
}

struct Inner {
    state: Arc<State>,
    cache: HashMap<[u8; 32], Entry>,
}

/// Verifies bearer tokens against the public keys in a directory and an
/// optional revocation file. Share one per server (`Arc<Verifier>`); call
/// [`Verifier::refresh`] every second or so to pick up key rotations and
/// revocations.
pub struct Verifier {
    keys_dir: PathBuf,
    revocations: Option<PathBuf>,
    audience: String,
    authorizer: Arc<AuthorizerBuilder>,
    cache_entries: usize,
    inner: RwLock<Inner>,
    /// One reload at a time.
    refreshing: Mutex<()>,
}

impl Verifier {
    /// A verifier for tokens of `audience`, signed by any `N.public` key in
    /// `keys_dir`, and not revoked by a line of `revocations` (which must
    /// exist when given).
    ///
    /// # Errors
    ///
    /// [`AuthError::NoKeys`] when the directory has no public key;
    /// [`AuthError::KeyFile`], [`AuthError::RevocationFile`] or
    /// [`AuthError::Io`] when a file cannot be read or used;
    /// [`AuthError::BadName`] for an audience that cannot be in a token.
    pub fn new(
        keys_dir: &Path,
        revocations: Option<&Path>,
        audience: &str,
    ) -> Result<Verifier, AuthError> {
        check_name("audience", audience)?;
        let state = load(keys_dir, revocations)?;
        if state.ring.is_empty() {
            return Err(AuthError::NoKeys {
                dir: keys_dir.to_path_buf(),
                what: "public",
            });
        }
        Ok(Verifier {
            keys_dir: keys_dir.to_path_buf(),
            revocations: revocations.map(Path::to_path_buf),
            audience: audience.to_string(),
            authorizer: Arc::new(datalog::authorizer(audience)),
            cache_entries: DEFAULT_CACHE_ENTRIES,
            inner: RwLock::new(Inner {
                state: Arc::new(state),
                cache: HashMap::new(),
            }),
            refreshing: Mutex::new(()),
        })
    }

    /// Sets how many verified tokens are remembered (0: none, every verify
    /// checks signatures; for measurements and tests).
    pub fn with_cache_entries(mut self, entries: usize) -> Self {
        self.cache_entries = entries;
        self
    }

    /// Re-reads the key directory and the revocation file if they changed
    /// since the last read (a few `stat` calls when they did not, so a
    /// server can call this every second). Returns whether anything
    /// changed; a change clears the cache. Removing every key is a change
    /// like any other: then every token is refused.
    ///
    /// # Errors
    ///
    /// When a file cannot be read or parsed (or the revocation file has
    /// disappeared): the previous keys and revocations stay in force.
    pub fn refresh(&self) -> Result<bool, AuthError> {
        let _one = self
            .refreshing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.read().state.clone();
        // Stamps are taken before the files are read: a change in between
        // is seen (and read again) at the next refresh.
        let ring_stamp = ring_stamp(&self.keys_dir)?;
        let revoked_stamp = self.revocations.as_deref().map(revoke::stamp).transpose()?;
        let ring_changed = ring_stamp != current.ring_stamp;
        let revoked_changed = revoked_stamp != current.revoked_stamp;
        if !ring_changed && !revoked_changed {
            return Ok(false);
        }
        let ring = if ring_changed {
            KeyRing::load(&self.keys_dir)?
        } else {
            current.ring.clone()
        };
        let revoked = match (&self.revocations, revoked_changed) {
            (Some(path), true) => Revocations::load(path)?,
            _ => current.revoked.clone(),
        };
        let state = Arc::new(State {
            ring,
            ring_stamp,
            revoked,
            revoked_stamp,
        });
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.state = state;
        inner.cache.clear();
        Ok(true)
    }

    /// Verifies a bearer token (the text after `Bearer `) and returns what
    /// it allows.
    ///
    /// # Errors
    ///
    /// An error of kind `unauthorized`: [`AuthError::Missing`],
    /// [`AuthError::TooLarge`], [`AuthError::TooManyBlocks`],
    /// [`AuthError::Malformed`], [`AuthError::UnknownKey`],
    /// [`AuthError::BadSignature`], [`AuthError::Revoked`],
    /// [`AuthError::Expired`], [`AuthError::WrongAudience`] or
    /// [`AuthError::RunLimit`].
    pub fn verify(&self, bearer_token: &str) -> Result<Arc<Scope>, AuthError> {
        let text = bearer_token.trim();
        if text.is_empty() {
            return Err(AuthError::Missing);
        }
        if text.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge {
                size: text.len(),
                max: MAX_TOKEN_BYTES,
            });
        }
        let key = *blake3::hash(text.as_bytes()).as_bytes();
        let state = {
            let inner = self.read();
            if let Some(entry) = inner
                .cache
                .get(&key)
                .filter(|e| e.verified.elapsed() < REVERIFY_AFTER)
            {
                if SystemTime::now() >= entry.scope.expires {
                    return Err(AuthError::Expired {
                        at: entry.scope.expires,
                    });
                }
                return Ok(entry.scope.clone());
            }
            inner.state.clone()
        };
        let scope = Arc::new(self.verify_uncached(text, &state)?);
        if self.cache_entries > 0 {
            let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
            // Verified against keys or revocations that a refresh has since
            // replaced: answer, but do not remember.
            if Arc::ptr_eq(&inner.state, &state) {
                if inner.cache.len() >= self.cache_entries {
                    let now = SystemTime::now();
                    inner.cache.retain(|_, e| {
                        e.verified.elapsed() < REVERIFY_AFTER && now < e.scope.expires
                    });
                    if inner.cache.len() >= self.cache_entries {
                        inner.cache.clear();
                    }
                }
                inner.cache.insert(
                    key,
                    Entry {
                        scope: scope.clone(),
                        verified: Instant::now(),
                    },
                );
            }
        }
        Ok(scope)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // The state is replaced whole, never left half-written: a panic
        // elsewhere cannot have broken it.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn verify_uncached(&self, text: &str, state: &State) -> Result<Scope, AuthError> {
        let unverified = token::parse_unverified(text)?;
        let key_id = unverified.root_key_id().ok_or(AuthError::Malformed {
            reason: "it names no signing key",
        })?;
        let key = state
            .ring
            .get(key_id)
            .ok_or(AuthError::UnknownKey { id: key_id })?;
        let token = unverified
            .verify(key)
            .map_err(|_| AuthError::BadSignature)?;
        let ids = token.revocation_identifiers();
        if state.revoked.any(&ids) {
            return Err(AuthError::Revoked {
                token_id: token_id(&ids),
            });
        }
        let authority = datalog::read_authority(&token)?;
        let now = SystemTime::now();
        if now >= authority.earliest_expiry {
            return Err(AuthError::Expired {
                at: authority.earliest_expiry,
            });
        }
        if authority.audience != self.audience {
            return Err(AuthError::WrongAudience {
                expected: self.audience.clone(),
                found: authority.audience,
            });
        }
        let ask = |request| match datalog::decide(&self.authorizer, &token, request, now) {
            Decision::Allow => Ok(true),
            Decision::Deny => Ok(false),
            // Not cached as a smaller scope: refused, asked again next time.
            Decision::Limit(limit) => Err(AuthError::RunLimit { limit }),
        };
        let mut capabilities = BTreeSet::new();
        for &c in &authority.capabilities {
            if ask(Request::Capability(c))? {
                capabilities.insert(c);
            }
        }
        let all_tools = authority.tools.contains(ALL_TOOLS) && ask(Request::Tool(ALL_TOOLS))?;
        Ok(Scope {
            subject: authority.subject,
            token_id: token_id(&ids),
            key_id,
            expires: authority.earliest_expiry,
            capabilities,
            all_tools,
            granted_tools: authority.tools,
            token,
            authorizer: self.authorizer.clone(),
            decisions: Default::default(),
        })
    }
}

fn load(keys_dir: &Path, revocations: Option<&Path>) -> Result<State, AuthError> {
    let ring_stamp = ring_stamp(keys_dir)?;
    // Read first: a file missing at start "does not exist" (and how to
    // create it); only one that was there can have "disappeared".
    let revoked = revocations
        .map(Revocations::load)
        .transpose()?
        .unwrap_or_default();
    let revoked_stamp = revocations.map(revoke::stamp).transpose()?;
    Ok(State {
        ring: KeyRing::load(keys_dir)?,
        ring_stamp,
        revoked,
        revoked_stamp,
    })
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.read();
        f.debug_struct("Verifier")
            .field("keys_dir", &self.keys_dir)
            .field("key_ids", &inner.state.ring.ids().collect::<Vec<_>>())
            .field("revocations", &self.revocations)
            .field("revoked", &inner.state.revoked.len())
            .field("audience", &self.audience)
            .field("cached", &inner.cache.len())
            .finish()
    }
}

#[cfg(test)]
mod tests;
