//! The pinned digest of an executable: `spec.executable.sha256` says "these
//! exact bytes were vetted". It is checked on the bytes that are about to be
//! compiled or run, never on an earlier read of the file, so a file swapped
//! after the check changes nothing.

use super::{Sha256Hex, ToolSpec};
use std::path::PathBuf;

/// The bytes of an executable are not the ones its manifest pins.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{} has sha256 {actual}, but the manifest pins {pinned}; it changed since it was vetted: review it, then run `toka-host tools vet {} --write`",
    file.display(),
    manifest.display()
)]
pub struct PinMismatch {
    /// The manifest that pins it.
    pub manifest: PathBuf,
    /// The executable.
    pub file: PathBuf,
    /// The digest of the bytes at hand.
    pub actual: Sha256Hex,
    /// The digest the manifest pins.
    pub pinned: Sha256Hex,
}

/// Checks `digest` (of the bytes about to be used) against `spec`'s pin, if
/// it has one.
///
/// # Errors
///
/// [`PinMismatch`] naming both digests and the command that re-vets the file.
pub fn check_pin(spec: &ToolSpec, digest: &Sha256Hex) -> Result<(), PinMismatch> {
    match &spec.executable.sha256 {
        Some(pinned) if pinned != digest => Err(PinMismatch {
            manifest: spec.manifest.clone(),
            file: spec.executable.path.clone(),
            actual: digest.clone(),
            pinned: pinned.clone(),
        }),
        _ => Ok(()),
    }
}
