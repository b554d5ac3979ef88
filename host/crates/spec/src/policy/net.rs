//! Network policy: which socket addresses a guest may reach, as small pure
//! functions over resolved addresses.

use crate::manifest::{HostMatch, HostPattern};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// One allowed address: an IP (or any) and a port (or any).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AddrRule {
    /// `None`: any address.
    pub ip: Option<IpAddr>,
    /// `None`: any port.
    pub port: Option<u16>,
}

impl AddrRule {
    fn matches(&self, addr: SocketAddr) -> bool {
        self.ip.is_none_or(|ip| ip == addr.ip()) && self.port.is_none_or(|p| p == addr.port())
    }
}

/// Where a guest may connect. Closed unless something was granted.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NetworkPolicy {
    /// The patterns as granted.
    pub patterns: Vec<HostPattern>,
    /// The patterns resolved to addresses when the policy was built.
    pub rules: Vec<AddrRule>,
    /// Whether the guest may resolve names (only when a pattern names a host
    /// or allows any host).
    pub name_lookup: bool,
    /// Names that did not resolve; connections to them are refused.
    pub unresolved: Vec<String>,
}

impl NetworkPolicy {
    /// Resolves `patterns` (DNS names through the host's resolver, now, so a
    /// guest cannot widen the policy by changing what a name means later).
    pub fn resolve(patterns: Vec<HostPattern>) -> NetworkPolicy {
        let mut rules = Vec::new();
        let mut unresolved = Vec::new();
        let mut name_lookup = false;
        for p in &patterns {
            match &p.host {
                HostMatch::Any => {
                    name_lookup = true;
                    rules.push(AddrRule {
                        ip: None,
                        port: p.port,
                    });
                }
                HostMatch::Ip(ip) => rules.push(AddrRule {
                    ip: Some(*ip),
                    port: p.port,
                }),
                HostMatch::Name(name) => {
                    name_lookup = true;
                    match (name.as_str(), p.port.unwrap_or(0)).to_socket_addrs() {
                        Ok(addrs) => rules.extend(addrs.map(|a| AddrRule {
                            ip: Some(a.ip()),
                            port: p.port,
                        })),
                        Err(_) => unresolved.push(name.clone()),
                    }
                }
            }
        }
        NetworkPolicy {
            patterns,
            rules,
            name_lookup,
            unresolved,
        }
    }

    /// True when nothing at all is allowed.
    pub fn is_closed(&self) -> bool {
        self.rules.is_empty() && !self.name_lookup
    }

    /// May the guest connect (or send datagrams) to `addr`?
    pub fn allows_connect(&self, addr: SocketAddr) -> bool {
        self.rules.iter().any(|r| r.matches(addr))
    }

    /// May the guest bind `addr`? Binding an ephemeral port (port 0), which
    /// every client socket does, is allowed once any connection is; binding
    /// a fixed port to listen on must be granted like a connection.
    pub fn allows_bind(&self, addr: SocketAddr) -> bool {
        if addr.port() == 0 {
            !self.rules.is_empty()
        } else {
            self.allows_connect(addr)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(patterns: &[&str]) -> NetworkPolicy {
        NetworkPolicy::resolve(
            patterns
                .iter()
                .map(|p| p.parse().expect("pattern"))
                .collect(),
        )
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn table() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&[], "127.0.0.1:80", false),
            (&["127.0.0.1:8080"], "127.0.0.1:8080", true),
            (&["127.0.0.1:8080"], "127.0.0.1:8081", false),
            (&["127.0.0.1:8080"], "127.0.0.2:8080", false),
            (&["127.0.0.1:*"], "127.0.0.1:1", true),
            (&["*:443"], "10.1.2.3:443", true),
            (&["*:443"], "10.1.2.3:80", false),
            (&["[::1]:80"], "[::1]:80", true),
            (&["localhost:9"], "127.0.0.1:9", true),
        ];
        for (patterns, target, expected) in cases {
            assert_eq!(
                policy(patterns).allows_connect(addr(target)),
                *expected,
                "{patterns:?} -> {target}"
            );
        }
    }

    #[test]
    fn names_enable_lookup_and_ips_do_not() {
        assert!(!policy(&["127.0.0.1:80"]).name_lookup);
        assert!(policy(&["localhost:80"]).name_lookup);
        assert!(policy(&[]).is_closed());
    }

    #[test]
    fn binds() {
        let p = policy(&["127.0.0.1:8080"]);
        assert!(p.allows_bind(addr("0.0.0.0:0")));
        assert!(!p.allows_bind(addr("0.0.0.0:22")));
        assert!(!policy(&[]).allows_bind(addr("0.0.0.0:0")));
    }
}
