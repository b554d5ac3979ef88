//! Toka's capability tokens: who may call which tools, with which
//! capabilities, until when. Tokens are [biscuit] tokens: signed with a
//! public-key pair ([`keygen`], [`issue`]), narrowed by anyone who holds
//! one without any key ([`attenuate`]), read without keys ([`inspect`]),
//! revoked through a file ([`revoke`]), and checked by a server with only
//! the public keys ([`Verifier`], which yields a [`Scope`]).
//!
//! The flow: `keygen` → key directory → `issue` → token → (`attenuate` →
//! token)* → [`Verifier::verify`] → [`Scope`] → the server asks
//! [`Scope::allows_tool`] and intersects a tool's capabilities with
//! [`Scope::capabilities`]. Attenuation can only narrow: the header of
//! `src/datalog.rs` gives the Datalog and the reasoning.
//!
//! Files: the key directory is described in [`keys`], the revocation file
//! in [`revoke`]. A token is URL-safe base64 of biscuit's serialization.
//!
//! [biscuit]: https://www.biscuitsec.org

mod datalog;
mod error;
mod inspect;
pub mod keys;
pub mod revoke;
mod scope;
mod time;
mod token;
mod verify;

pub use error::AuthError;
pub use inspect::{Grant, Narrowing, TokenInfo, inspect};
pub use keys::{KeyInfo, keygen};
pub use revoke::revoke;
pub use scope::Scope;
pub use time::Expiry;
pub use token::{
    Attenuation, DEFAULT_AUDIENCE, DEFAULT_TTL, IssueRequest, MAX_BLOCKS, MAX_NAME_BYTES,
    MAX_TOKEN_BYTES, MAX_TTL, attenuate, issue,
};
pub use verify::{DEFAULT_CACHE_ENTRIES, REVERIFY_AFTER, Verifier};
