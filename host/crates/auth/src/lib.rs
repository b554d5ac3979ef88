//! Toka's capability tokens: who may call which tools, with which
//! capabilities, until when. This first part holds the key pairs on disk
//! ([`keys`]) and the crate's error type.

mod error;
pub mod keys;
mod time;

pub use error::AuthError;
pub use keys::{KeyInfo, keygen};
