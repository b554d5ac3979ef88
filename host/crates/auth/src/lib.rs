//! Toka's capability tokens: who may call which tools, with which
//! capabilities, until when. Tokens are [biscuit] tokens: signed with a
//! public-key pair ([`keygen`], [`issue`]), narrowed by anyone who holds
//! one without any key ([`attenuate`]), read without keys ([`inspect`])
//! and revoked through a file ([`revoke`]). Attenuation can only narrow: the header of
//! `src/datalog.rs` gives the Datalog and the reasoning.
//!
//! [biscuit]: https://www.biscuitsec.org

mod datalog;
mod error;
mod inspect;
pub mod keys;
pub mod revoke;
mod time;
mod token;

pub use error::AuthError;
pub use inspect::{Grant, Narrowing, TokenInfo, inspect};
pub use keys::{KeyInfo, keygen};
pub use revoke::revoke;
pub use time::Expiry;
pub use token::{
    Attenuation, DEFAULT_AUDIENCE, DEFAULT_TTL, IssueRequest, MAX_BLOCKS, MAX_NAME_BYTES,
    MAX_TOKEN_BYTES, MAX_TTL, attenuate, issue,
};
