//! `oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX]`: where a tool lives in
//! a registry, parsed once at the edge with messages that show how to write
//! one.
//!
//! A reference names either a tag (mutable: resolved to a digest on every
//! pull) or a digest (immutable: the *pinned* form, which is what a pull
//! returns and what a lockfile or catalog should record).

use std::fmt;
use std::str::FromStr;
use toka_spec::manifest::Sha256Hex;

/// The scheme every Toka OCI reference starts with.
pub const SCHEME: &str = "oci://";

/// The tag used when a reference names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";

const HOW: &str = "write oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST], for example oci://ghcr.io/acme/echo:1.0.0";

/// A parsed `oci://` reference.
///
/// # Examples
///
/// ```
/// let r: toka_oci::Reference = "oci://127.0.0.1:5000/toka/echo".parse().unwrap();
/// assert_eq!(r.registry(), "127.0.0.1:5000");
/// assert_eq!(r.repository(), "toka/echo");
/// assert_eq!(r.tag(), Some("latest"));
/// assert_eq!(r.to_string(), "oci://127.0.0.1:5000/toka/echo:latest");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Sha256Hex>,
}

/// Why a string is not an OCI reference. The message says what is wrong and
/// how to write one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not an OCI reference: {why}; {HOW}")]
pub struct ReferenceError {
    /// What was given.
    pub input: String,
    /// What is wrong with it.
    pub why: String,
}

impl Reference {
    /// `host[:port]` (an IPv6 address in brackets), lowercase.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host without its port (an IPv6 address without brackets).
    pub fn host(&self) -> &str {
        let r = self.registry.as_str();
        if let Some(rest) = r.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        r.rsplit_once(':').map_or(r, |(h, _)| h)
    }

    /// The repository path, such as `toka/echo`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference names one (`latest` when it named neither a
    /// tag nor a digest).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The pinned manifest digest, if the reference names one.
    pub fn digest(&self) -> Option<&Sha256Hex> {
        self.digest.as_ref()
    }

    /// The pinned form of this reference: same registry and repository, the
    /// manifest `digest`, no tag.
    pub fn pinned(&self, digest: Sha256Hex) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// The same repository at another tag (for the signature tag).
    pub(crate) fn at_tag(&self, tag: String) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag),
            digest: None,
        }
    }

    /// `registry/repository`: the identity cosign signs
    /// (`critical.identity.docker-reference`).
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The reference as oci-client takes it; the digest wins over the tag.
    pub(crate) fn to_oci(&self) -> oci_client::Reference {
        match (&self.digest, &self.tag) {
            (Some(d), _) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                format!("sha256:{d}"),
            ),
            (None, tag) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                tag.clone().unwrap_or_else(|| DEFAULT_TAG.to_string()),
            ),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@sha256:{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Reference, ReferenceError> {
        let fail = |why: String| ReferenceError {
            input: input.to_string(),
            why,
        };
        let rest = input
            .strip_prefix(SCHEME)
            .ok_or_else(|| fail("it does not start with oci://".into()))?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| fail("there is no repository after the registry".into()))?;
        let registry = parse_registry(registry).map_err(fail)?;

        let (name, digest) = match path.rsplit_once('@') {
            Some((name, digest)) => (name, Some(parse_digest(digest).map_err(fail)?)),
            None => (path, None),
        };
        // A ':' after the last '/' starts the tag (repositories have no ':').
        let (repository, tag) = match name.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
            _ => (name, None),
        };
        check_repository(repository).map_err(fail)?;
        if let Some(t) = tag {
            check_tag(t).map_err(fail)?;
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository: repository.to_string(),
            tag,
            digest,
        })
    }
}

fn parse_registry(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("the registry host is empty".into());
    }
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or("an IPv6 address must be closed with ']'")?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{addr}` is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("only :PORT may follow ']'")?),
        };
        (None, port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(s), None),
        }
    };
    if let Some(h) = host {
        let ok = !h.is_empty()
            && h.split('.').all(|label| {
                !label.is_empty()
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return Err(format!(
                "`{h}` is not a host name (letters, digits, '-' and '.')"
            ));
        }
    }
    if let Some(p) = port
        && !matches!(p.parse::<u16>(), Ok(n) if n > 0)
    {
        return Err(format!("`{p}` is not a port (1-65535)"));
    }
    Ok(s.to_ascii_lowercase())
}

fn parse_digest(s: &str) -> Result<Sha256Hex, String> {
    let hex = s
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("`{s}` is not a digest: write @sha256: and 64 hex digits"))?;
    Sha256Hex::try_from(hex.to_string())
        .map_err(|_| format!("`{s}` is not a digest: write @sha256: and 64 hex digits"))
}

/// The distribution spec's grammar: lowercase components separated by `/`,
/// each `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn check_repository(repo: &str) -> Result<(), String> {
    if repo.is_empty() {
        return Err("the repository is empty".into());
    }
    if repo.len() > 255 {
        return Err("the repository is longer than 255 characters".into());
    }
    for comp in repo.split('/') {
        let valid = !comp.is_empty()
            && comp.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && comp.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && comp.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
            && !comp.contains("..")
            && !comp.contains("___")
            && !comp.contains("._")
            && !comp.contains("_.");
        if !valid {
            let hint = if comp.chars().any(|c| c.is_ascii_uppercase()) {
                " (repository names are lowercase)"
            } else {
                ""
            };
            return Err(format!(
                "`{comp}` in `{repo}` is not a repository component{hint}: use lowercase letters and digits, separated by '.', '_' or '-'"
            ));
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), String> {
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{tag}` is not a tag: use up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "3b99b2a5f1ed8e3eec39a2d8a35b2e1c1cf5d7f8e8a3b5c2d1e0f9a8b7c6d5e4";

    fn parse(s: &str) -> Reference {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn latest_is_the_default_only_without_tag_and_digest() {
        assert_eq!(parse("oci://h/r").tag(), Some("latest"));
        let pinned = parse(&format!("oci://h/r@sha256:{HEX}"));
        assert_eq!(pinned.tag(), None);
        assert_eq!(pinned.digest().map(Sha256Hex::as_str), Some(HEX));
        assert_eq!(pinned.to_string(), format!("oci://h/r@sha256:{HEX}"));
        let both = parse(&format!("oci://h/r:1.0@sha256:{HEX}"));
        assert_eq!(both.tag(), Some("1.0"));
        assert!(both.digest().is_some());
        assert_eq!(both.to_string(), format!("oci://h/r:1.0@sha256:{HEX}"));
    }

    #[test]
    fn registries_with_ports_and_ipv6() {
        let r = parse("oci://127.0.0.1:5000/toka/echo:1.0.0");
        assert_eq!(
            (r.registry(), r.host(), r.repository(), r.tag()),
            ("127.0.0.1:5000", "127.0.0.1", "toka/echo", Some("1.0.0"))
        );
        let r = parse("oci://[::1]:5000/a/b/c");
        assert_eq!((r.registry(), r.host()), ("[::1]:5000", "::1"));
        let r = parse("oci://GHCR.io/acme/echo");
        assert_eq!((r.registry(), r.host()), ("ghcr.io", "ghcr.io"));
        assert_eq!(r.repository_name(), "ghcr.io/acme/echo");
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "oci://localhost:5000/x:latest",
            "oci://ghcr.io/a/b-c/d_e:v1.2",
            &format!("oci://[::1]:80/a@sha256:{HEX}"),
        ] {
            assert_eq!(parse(s).to_string(), s);
            assert_eq!(parse(&parse(s).to_string()), parse(s));
        }
    }

    #[test]
    fn pinned_drops_the_tag() {
        let d = Sha256Hex::try_from(HEX.to_string()).expect("hex");
        let p = parse("oci://h:1/r:t").pinned(d);
        assert_eq!(p.to_string(), format!("oci://h:1/r@sha256:{HEX}"));
    }

    #[test]
    fn mistakes_explain_how_to_write_one() {
        for (input, says) in [
            ("ghcr.io/acme/echo", "does not start with oci://"),
            ("oci://ghcr.io", "no repository"),
            ("oci:///echo", "registry host is empty"),
            ("oci://h:99999/r", "not a port"),
            ("oci://h/Acme/echo", "lowercase"),
            ("oci://h/r:", "not a tag"),
            ("oci://h/r:-x", "not a tag"),
            ("oci://h/r@sha256:abc", "64 hex digits"),
            ("oci://h/r@md5:abc", "not a digest"),
            ("oci://h/a//b", "not a repository component"),
            ("oci://[::1/r", "closed with ']'"),
            ("oci://h_x/r", "not a host name"),
        ] {
            let e = input.parse::<Reference>().expect_err(input).to_string();
            assert!(e.contains(says), "{input}: {e}");
            assert!(e.contains("oci://HOST[:PORT]/REPOSITORY"), "{input}: {e}");
        }
    }
}
