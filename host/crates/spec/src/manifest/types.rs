//! The words of a manifest that validate themselves while deserializing: tool
//! names, capabilities, executable kinds, directory mappings, host patterns,
//! environment names and hashes. Each rejects bad input with a message that
//! says how to write it instead.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A tool's name: lowercase ASCII letters, digits and single '-' between
/// words, 1 to 64 characters, starting with a letter.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ToolName(String);

impl ToolName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ToolName {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let suggestion = || {
            // `FileReader` → `file-reader`, `file_reader` → `file-reader`.
            let mut fixed = String::new();
            let mut prev_lower = false;
            for c in s.chars() {
                if c.is_ascii_uppercase() && prev_lower {
                    fixed.push('-');
                }
                prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
                fixed.push(if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                });
            }
            let fixed = fixed
                .split('-')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join("-");
            if fixed.is_empty() {
                String::new()
            } else {
                format!(" (for example `{fixed}`)")
            }
        };
        if s.is_empty() || s.len() > 64 {
            return Err(format!(
                "`{s}` is not a valid tool name: it must be 1 to 64 characters long"
            ));
        }
        let valid_chars = s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        let starts_with_letter = s.starts_with(|c: char| c.is_ascii_lowercase());
        if !valid_chars || !starts_with_letter || s.ends_with('-') || s.contains("--") {
            let why = if s.contains('_') {
                "words must be separated with '-', not '_'"
            } else if s.chars().any(|c| c.is_ascii_uppercase()) {
                "letters must be lowercase (digits and single '-' between words are fine)"
            } else {
                "use lowercase letters, digits and single '-' between words, starting with a letter"
            };
            return Err(format!(
                "`{s}` is not a valid tool name: {why}{}",
                suggestion()
            ));
        }
        Ok(ToolName(s))
    }
}

impl FromStr for ToolName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        ToolName::try_from(s.to_string())
    }
}

impl From<ToolName> for String {
    fn from(n: ToolName) -> String {
        n.0
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A semantic version (`1.2.0`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Version(pub semver::Version);

impl TryFrom<String> for Version {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        semver::Version::parse(&s).map(Version).map_err(|e| {
            format!("`{s}` is not a semantic version ({e}): write MAJOR.MINOR.PATCH, like 1.2.0")
        })
    }
}

impl From<Version> for String {
    fn from(v: Version) -> String {
        v.0.to_string()
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a tool may be granted. A tool gets only the capabilities it declares
/// *and* the operator grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Read files under the manifest's `readonly_paths` (and `writable_paths`).
    FilesystemRead,
    /// Create, write and delete files under the manifest's `writable_paths`.
    FilesystemWrite,
    /// Open network connections to the manifest's `allowed_hosts`.
    NetworkAccess,
    /// Run subprocesses (shell, Python and external tools only).
    ProcessExecution,
    /// Call the tools listed in the manifest's `tools` (workflows).
    ToolCall,
    /// Ask the operator's language model for completions (workflows).
    Llm,
}

impl Capability {
    /// Every capability, in the order they are documented.
    pub const ALL: [Capability; 6] = [
        Capability::FilesystemRead,
        Capability::FilesystemWrite,
        Capability::NetworkAccess,
        Capability::ProcessExecution,
        Capability::ToolCall,
        Capability::Llm,
    ];

    /// The word used in manifests and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::FilesystemRead => "filesystem-read",
            Capability::FilesystemWrite => "filesystem-write",
            Capability::NetworkAccess => "network-access",
            Capability::ProcessExecution => "process-execution",
            Capability::ToolCall => "tool-call",
            Capability::Llm => "llm",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Capability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Capability::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                let words: Vec<&str> = Capability::ALL.iter().map(|c| c.as_str()).collect();
                format!("`{s}` is not a capability: use one of {}", words.join(", "))
            })
    }
}

/// How a tool is executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutableKind {
    /// A WASI component of the `toka:plugin/tool` world.
    Component,
    /// A WASI component of the `toka:plugin/workflow` world: an agent that
    /// calls tools and a language model through the host.
    Workflow,
    /// A plain WASI program: a `wasi:cli/command` component or a preview1 module.
    Command,
    /// A shell script, run by the subprocess shim.
    Shell,
    /// A Python script, run by the subprocess shim.
    Python,
    /// A native executable, run by the subprocess shim.
    External,
}

impl ExecutableKind {
    /// True for the kinds that run as WebAssembly inside the host.
    pub fn is_wasm(self) -> bool {
        matches!(
            self,
            ExecutableKind::Component | ExecutableKind::Workflow | ExecutableKind::Command
        )
    }

    /// The word used in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutableKind::Component => "component",
            ExecutableKind::Workflow => "workflow",
            ExecutableKind::Command => "command",
            ExecutableKind::Shell => "shell",
            ExecutableKind::Python => "python",
            ExecutableKind::External => "external",
        }
    }
}

impl fmt::Display for ExecutableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much the author of a manifest says the tool can do harm; informational.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecurityLevel {
    /// Pure computation.
    Low,
    /// Reads data it is given.
    Medium,
    /// Writes data or talks to the network.
    High,
    /// Can change systems outside the host.
    Critical,
}

/// A host directory made visible to the guest: `HOST[::GUEST]`. Without
/// `::GUEST` the guest sees the directory under the path as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct DirMapping {
    /// Path on the host; relative paths are relative to the manifest (in a
    /// manifest) or to the current directory (on the command line).
    pub host: PathBuf,
    /// Path inside the sandbox.
    pub guest: String,
}

impl FromStr for DirMapping {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (host, guest) = match s.split_once("::") {
            Some((h, g)) => (h, g),
            None => (s, s),
        };
        if host.is_empty() || guest.is_empty() {
            return Err(format!(
                "`{s}` is not a directory mapping: write HOST or HOST::GUEST, like ./data::/data"
            ));
        }
        Ok(DirMapping {
            host: PathBuf::from(host),
            guest: guest.to_string(),
        })
    }
}

impl TryFrom<String> for DirMapping {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// The host part of a [`HostPattern`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostMatch {
    /// Any address.
    Any,
    /// One IP address.
    Ip(std::net::IpAddr),
    /// A DNS name, resolved by the host when the policy is built.
    Name(String),
}

/// Where a guest may connect: `HOST:PORT`, where HOST is an IP address
/// (`[::1]` for IPv6), a DNS name or `*`, and PORT a number or `*`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostPattern {
    /// Which hosts.
    pub host: HostMatch,
    /// Which port; `None` means any.
    pub port: Option<u16>,
}

impl FromStr for HostPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "`{s}` is not a host pattern ({why}): write HOST:PORT, like api.example.com:443, \
                 127.0.0.1:8080, [::1]:80 or *:443"
            )
        };
        let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let port = match port {
            "*" => None,
            p => Some(
                p.parse::<u16>()
                    .map_err(|_| bad("the port is not a number from 0 to 65535"))?,
            ),
        };
        let host = if host == "*" {
            HostMatch::Any
        } else if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            HostMatch::Ip(
                v6.parse::<std::net::Ipv6Addr>()
                    .map_err(|_| bad("not an IPv6 address"))?
                    .into(),
            )
        } else if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
            HostMatch::Ip(ip.into())
        } else {
            let valid = !host.is_empty()
                && host.len() <= 253
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                });
            if !valid {
                return Err(bad("the host is not an IP address, a DNS name or *"));
            }
            HostMatch::Name(host.to_ascii_lowercase())
        };
        Ok(HostPattern { host, port })
    }
}

impl TryFrom<String> for HostPattern {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<HostPattern> for String {
    fn from(p: HostPattern) -> String {
        p.to_string()
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostMatch::Any => f.write_str("*")?,
            HostMatch::Ip(std::net::IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            HostMatch::Ip(ip) => write!(f, "{ip}")?,
            HostMatch::Name(n) => f.write_str(n)?,
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => f.write_str(":*"),
        }
    }
}

/// The name of an environment variable: letters, digits and '_', not
/// starting with a digit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnvName(String);

impl EnvName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EnvName {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let ok = !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ok {
            Ok(EnvName(s))
        } else {
            Err(format!(
                "`{s}` is not an environment variable name: use letters, digits and '_' (list names only, values come from the host)"
            ))
        }
    }
}

impl From<EnvName> for String {
    fn from(n: EnvName) -> String {
        n.0
    }
}

/// A SHA-256 digest written as 64 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(String);

impl Sha256Hex {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha256Hex {
        use sha2::Digest;
        Sha256Hex(hex(&sha2::Sha256::digest(bytes)))
    }

    /// The digest as hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        if lower.len() == 64 && lower.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(Sha256Hex(lower))
        } else {
            Err(format!(
                "`{s}` is not a SHA-256 digest: write the 64 hex digits printed by `sha256sum FILE`"
            ))
        }
    }
}

impl From<Sha256Hex> for String {
    fn from(h: Sha256Hex) -> String {
        h.0
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_explain_the_fix() {
        assert!("file-reader".parse::<ToolName>().is_ok());
        assert!("a1".parse::<ToolName>().is_ok());
        let e = "file_reader".parse::<ToolName>().unwrap_err();
        assert!(
            e.contains("'-', not '_'") && e.contains("`file-reader`"),
            "{e}"
        );
        let e = "FileReader".parse::<ToolName>().unwrap_err();
        assert!(e.contains("lowercase"), "{e}");
        for bad in ["", "-x", "x-", "a--b", "1abc", "a b", &"a".repeat(65)] {
            assert!(bad.parse::<ToolName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_patterns() {
        let p: HostPattern = "api.example.com:443".parse().unwrap();
        assert_eq!(p.host, HostMatch::Name("api.example.com".into()));
        assert_eq!(p.port, Some(443));
        let p: HostPattern = "[::1]:8080".parse().unwrap();
        assert_eq!(p.to_string(), "[::1]:8080");
        let p: HostPattern = "*:*".parse().unwrap();
        assert_eq!((p.host, p.port), (HostMatch::Any, None));
        for bad in [
            "example.com",
            "example.com:http",
            "exa mple.com:80",
            ":80",
            "[zz]:80",
        ] {
            assert!(bad.parse::<HostPattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn dir_mappings() {
        let d: DirMapping = "./data::/data".parse().unwrap();
        assert_eq!(
            (d.host, d.guest.as_str()),
            (PathBuf::from("./data"), "/data")
        );
        let d: DirMapping = "/tmp".parse().unwrap();
        assert_eq!(d.guest, "/tmp");
        assert!("::/x".parse::<DirMapping>().is_err());
    }

    #[test]
    fn capabilities_round_trip() {
        for c in Capability::ALL {
            assert_eq!(c.as_str().parse::<Capability>(), Ok(c));
        }
        assert!(
            "filesystem"
                .parse::<Capability>()
                .unwrap_err()
                .contains("filesystem-read")
        );
    }
}
