//! Exit codes of `toka-host`, shared by `--help`, the README and the code.

/// The call succeeded (for a command: it exited 0).
pub const SUCCESS: u8 = 0;
/// The tool ran and returned an error (or a result that is not JSON).
pub const TOOL_ERROR: u8 = 1;
/// A limit ended the call: fuel, memory, timeout, output or wasm stack.
pub const LIMIT: u8 = 124;
/// Invalid input or host error: bad flags, manifest, JSON or wasm; a plugin of
/// the wrong world or with an import the host does not provide.
pub const INVALID: u8 = 125;
/// A capability the tool requires was not granted.
pub const DENIED: u8 = 126;
/// No such tool, manifest or file.
pub const NOT_FOUND: u8 = 127;
/// The guest trapped (crashed).
pub const TRAP: u8 = 134;

/// The table printed by `--help` and copied into the README.
pub const TABLE: &str = "\
Exit codes:
    0    success
    N    a command's own exit code (wasi:cli/command and preview1 programs)
    1    the tool returned an error
  124    a limit was exceeded (fuel, memory, timeout, output, wasm stack)
  125    invalid input or host error (flags, manifest, JSON, wasm, wrong world, unknown import;
         a registry that cannot be reached, bytes that do not match their digest)
  126    a capability the tool requires was not granted (see --grant); a token or registry
         credentials refused; an artifact unsigned or not signed by a --verify-key
  127    plugin not found (also: a tag or repository the registry does not have)
  134    the guest trapped";
