//! How Toka talks to a registry: HTTPS unless the registry is on loopback or
//! listed as insecure, credentials from the environment or docker's
//! `config.json` (never logged), and one mapping of every registry failure to
//! an [`OciError`] that names the registry or reference.
//!
//! Manifests are fetched here rather than through oci-client, whose manifest
//! calls read the whole body into memory: a registry could answer with
//! gigabytes. Here the declared length is checked first and the bytes are
//! counted as they arrive. Blobs go through oci-client's streaming calls.

mod credentials;

pub use credentials::{Credentials, PASSWORD_ENV, USER_ENV};

use crate::error::{Cause, OciError};
use crate::reference::Reference;
use credentials::{Access, DockerConfig};
use futures_util::StreamExt;
use oci_client::RegistryOperation;
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const USER_AGENT: &str = concat!("toka-host/", env!("CARGO_PKG_VERSION"));

/// Registry access settings: which registries may be reached over plain
/// HTTP, and where credentials come from.
///
/// # Examples
///
/// ```
/// let cfg = toka_oci::RegistryConfig::new().insecure_registry("registry.lan:5000");
/// let r: toka_oci::Reference = "oci://registry.lan:5000/t/echo:1".parse().unwrap();
/// assert!(cfg.plain_http(&r));
/// let r: toka_oci::Reference = "oci://ghcr.io/t/echo:1".parse().unwrap();
/// assert!(!cfg.plain_http(&r));
/// ```
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    insecure: Vec<String>,
    credentials: Option<Credentials>,
    docker_config: Option<DockerConfig>,
    connect_timeout: Duration,
    read_timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig::new()
    }
}

impl RegistryConfig {
    /// HTTPS to every registry except loopback ones, anonymous.
    pub fn new() -> RegistryConfig {
        RegistryConfig {
            insecure: Vec::new(),
            credentials: None,
            docker_config: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }

    /// [`RegistryConfig::from_vars`] with the process environment.
    ///
    /// # Errors
    ///
    /// See [`RegistryConfig::from_vars`].
    pub fn from_env() -> Result<RegistryConfig, OciError> {
        RegistryConfig::from_vars(&|k| std::env::var(k).ok())
    }

    /// Credentials from `TOKA_REGISTRY_USER`/`TOKA_REGISTRY_PASSWORD`, and
    /// from `$DOCKER_CONFIG/config.json` else `$HOME/.docker/config.json`,
    /// looked up with `get`.
    ///
    /// # Errors
    ///
    /// [`OciError::Credentials`]: only one of the two variables set, or a
    /// `config.json` that exists but does not parse.
    pub fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<RegistryConfig, OciError> {
        let mut cfg = RegistryConfig::new();
        cfg.credentials = credentials::from_env(get)?;
        let dir = get("DOCKER_CONFIG")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                get("HOME")
                    .filter(|h| !h.is_empty())
                    .map(|h| Path::new(&h).join(".docker"))
            });
        if let Some(dir) = dir {
            cfg.docker_config = Some(DockerConfig::load(&dir.join("config.json"))?);
        }
        Ok(cfg)
    }

    /// Allows plain HTTP to `host[:port]` (without a port: any port of that
    /// host), as `--insecure-registry` does. Credentials are then sent in the
    /// clear to it.
    pub fn insecure_registry(mut self, host: &str) -> RegistryConfig {
        let h = host.trim().to_ascii_lowercase();
        let h = h.strip_prefix("http://").unwrap_or(&h);
        self.insecure.push(h.trim_end_matches('/').to_string());
        self
    }

    /// Reads credentials from this docker `config.json` instead of the
    /// default one.
    ///
    /// # Errors
    ///
    /// [`OciError::Credentials`] if it exists but does not parse.
    pub fn docker_config(mut self, path: &Path) -> Result<RegistryConfig, OciError> {
        self.docker_config = Some(DockerConfig::load(path)?);
        Ok(self)
    }

    /// Uses these credentials for every registry (they win over
    /// `config.json`).
    pub fn credentials(mut self, credentials: Credentials) -> RegistryConfig {
        self.credentials = Some(credentials);
        self
    }

    /// Sets the connect timeout and the timeout for each read.
    pub fn timeouts(mut self, connect: Duration, read: Duration) -> RegistryConfig {
        self.connect_timeout = connect;
        self.read_timeout = read;
        self
    }

    /// Whether `reference`'s registry is reached over plain HTTP: loopback
    /// (127.0.0.0/8, ::1, localhost) or listed with
    /// [`RegistryConfig::insecure_registry`].
    pub fn plain_http(&self, reference: &Reference) -> bool {
        let host = reference.host();
        let loopback = host == "localhost"
            || host.ends_with(".localhost")
            || host
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.to_canonical().is_loopback());
        loopback
            || self
                .insecure
                .iter()
                .any(|i| i == reference.registry() || i == host)
    }

    fn access(&self, registry: &str) -> Result<Access, OciError> {
        if let Some(c) = &self.credentials {
            return Ok(Access::Basic(c.clone()));
        }
        if let Some(dc) = &self.docker_config
            && let Some(a) = dc.access(registry)?
        {
            return Ok(a);
        }
        Ok(Access::Anonymous {
            hint: format!(
                "no credentials were given for {registry}: set {USER_ENV} and {PASSWORD_ENV}, or run `docker login {registry}`"
            ),
        })
    }
}

/// One registry, ready for requests about one repository.
pub(crate) struct Session {
    pub(crate) client: oci_client::Client,
    http: reqwest013::Client,
    auth: RegistryAuth,
    /// `host[:port]` as written, for messages.
    registry: String,
    /// Where requests go: oci-client's resolution (Docker Hub's
    /// `docker.io` is served at `index.docker.io`), which also keys its
    /// credential store.
    resolved: String,
    scheme: &'static str,
    /// Said when access is refused: where credentials came from or why there
    /// are none. Never the credentials.
    auth_hint: String,
}

/// How a fetched manifest answered.
pub(crate) struct FetchedManifest {
    /// The raw bytes.
    pub(crate) bytes: Vec<u8>,
    /// The registry's `Docker-Content-Digest`, if it sent one.
    pub(crate) header_digest: Option<String>,
}

impl Session {
    pub(crate) fn open(cfg: &RegistryConfig, reference: &Reference) -> Result<Session, OciError> {
        install_crypto_provider();
        let registry = reference.registry().to_string();
        let resolved = reference.to_oci().resolve_registry().to_string();
        let plain = cfg.plain_http(reference);
        let (auth, auth_hint) = match cfg.access(&registry)? {
            Access::Basic(c) => {
                let hint = format!("the credentials from {} were refused; check them", c.origin);
                (RegistryAuth::Basic(c.username, c.password), hint)
            }
            Access::Anonymous { hint } => (RegistryAuth::Anonymous, hint),
        };
        let protocol = if plain {
            oci_client::client::ClientProtocol::HttpsExcept(vec![resolved.clone()])
        } else {
            oci_client::client::ClientProtocol::Https
        };
        let client = oci_client::Client::try_from(oci_client::client::ClientConfig {
            protocol,
            connect_timeout: Some(cfg.connect_timeout),
            read_timeout: Some(cfg.read_timeout),
            user_agent: USER_AGENT,
            ..Default::default()
        })
        .map_err(|e| OciError::Registry {
            registry: registry.clone(),
            source: Box::new(e),
        })?;
        let http = reqwest013::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.read_timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| OciError::Registry {
                registry: registry.clone(),
                source: Box::new(e),
            })?;
        Ok(Session {
            client,
            http,
            auth,
            registry,
            resolved,
            scheme: if plain { "http" } else { "https" },
            auth_hint,
        })
    }

    /// Makes oci-client's blob and manifest-push calls (which take no
    /// credentials) authenticate.
    pub(crate) async fn prepare(&self) {
        self.client
            .store_auth_if_needed(&self.resolved, &self.auth)
            .await;
    }

    /// GETs the manifest `reference` names, at most `limit` bytes.
    ///
    /// # Errors
    ///
    /// [`OciError::NotFound`] for a 404, [`OciError::TooLarge`] over the
    /// limit, and the mapped transport and access errors.
    pub(crate) async fn fetch_manifest(
        &self,
        reference: &Reference,
        accept: &str,
        limit: u64,
    ) -> Result<FetchedManifest, OciError> {
        let oref = reference.to_oci();
        // The token service (or Basic challenge) as oci-client negotiates it;
        // the token is cached in the client for the blob calls that follow.
        let token = self
            .client
            .auth(&oref, &self.auth, RegistryOperation::Pull)
            .await
            .map_err(|e| self.map_error(e, reference))?;
        let selector = match (reference.digest(), reference.tag()) {
            (Some(d), _) => format!("sha256:{d}"),
            (None, t) => t.unwrap_or(crate::reference::DEFAULT_TAG).to_string(),
        };
        let url = format!(
            "{}://{}/v2/{}/manifests/{selector}",
            self.scheme,
            self.resolved,
            reference.repository()
        );
        let request = |basic: bool| {
            let mut rq = self.http.get(&url).header("Accept", accept);
            if let Some(t) = &token {
                rq = rq.bearer_auth(t);
            } else if let (true, RegistryAuth::Basic(u, p)) = (basic, &self.auth) {
                rq = rq.basic_auth(u, Some(p));
            }
            rq.send()
        };
        let mut res = request(false)
            .await
            .map_err(|e| self.map_http(e, reference))?;
        // A registry with a Basic challenge (htpasswd) gets the credentials
        // only after asking for them, as docker does.
        if res.status() == 401
            && token.is_none()
            && matches!(self.auth, RegistryAuth::Basic(..))
            && res
                .headers()
                .get("www-authenticate")
                .and_then(|h| h.to_str().ok())
                .is_some_and(|h| h.trim_start().to_ascii_lowercase().starts_with("basic"))
        {
            res = request(true)
                .await
                .map_err(|e| self.map_http(e, reference))?;
        }
        let status = res.status().as_u16();
        match status {
            200 => {}
            404 => {
                return Err(OciError::NotFound {
                    reference: reference.to_string(),
                });
            }
            401 | 403 => return Err(self.unauthorized(None)),
            _ => {
                let body = read_capped(res, 1024).await;
                return Err(OciError::Registry {
                    registry: self.registry.clone(),
                    source: format!(
                        "GET {url} answered {status}: {}",
                        String::from_utf8_lossy(&body).trim()
                    )
                    .into(),
                });
            }
        }
        let too_large = || OciError::TooLarge {
            reference: reference.to_string(),
            what: "OCI manifest".into(),
            limit,
        };
        if res.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let header_digest = res
            .headers()
            .get("docker-content-digest")
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        let mut bytes = Vec::new();
        let mut body = res.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.map_http(e, reference))?;
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(FetchedManifest {
            bytes,
            header_digest,
        })
    }

    /// An [`OciError::Unauthorized`] for this registry, with the hint.
    pub(crate) fn unauthorized(&self, source: Option<Cause>) -> OciError {
        OciError::Unauthorized {
            registry: self.registry.clone(),
            hint: Some(self.auth_hint.clone()),
            source,
        }
    }

    pub(crate) fn unreachable(&self, source: Cause) -> OciError {
        let hint = match tls_error(source.as_ref()) {
            // What a plain-HTTP server's answer to a TLS hello looks like.
            Some(rustls::Error::InvalidMessage(_)) => Some(format!(
                "it does not speak TLS (a plain-HTTP registry?); if the network to it is trusted, pass --insecure-registry {}",
                self.registry
            )),
            Some(rustls::Error::InvalidCertificate(_)) => Some(
                "its TLS certificate is not trusted here; install its CA certificate in the system trust store"
                    .to_string(),
            ),
            _ => None,
        };
        OciError::Unreachable {
            registry: self.registry.clone(),
            hint,
            source,
        }
    }

    /// Maps an oci-client failure about `reference`.
    pub(crate) fn map_error(&self, e: OciDistributionError, reference: &Reference) -> OciError {
        use OciDistributionError as E;
        let not_found = || OciError::NotFound {
            reference: reference.to_string(),
        };
        match e {
            E::RequestError(re) => self.map_http(re, reference),
            E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => {
                self.unauthorized(Some(Box::new(e)))
            }
            E::ServerError {
                code: 401 | 403, ..
            } => self.unauthorized(Some(Box::new(e))),
            E::ServerError { code: 404, .. } => not_found(),
            E::RegistryError { ref envelope, .. }
                if envelope.errors.iter().any(|x| {
                    matches!(x.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)
                }) =>
            {
                self.unauthorized(Some(Box::new(e)))
            }
            E::RegistryError { ref envelope, .. }
                if envelope.errors.iter().any(|x| {
                    matches!(
                        x.code,
                        OciErrorCode::NameUnknown
                            | OciErrorCode::ManifestUnknown
                            | OciErrorCode::BlobUnknown
                    )
                }) =>
            {
                not_found()
            }
            E::IoError(io) => self.unreachable(Box::new(io)),
            other => OciError::Registry {
                registry: self.registry.clone(),
                source: Box::new(other),
            },
        }
    }

    /// Maps a transport failure about `reference`.
    pub(crate) fn map_http(&self, e: reqwest013::Error, reference: &Reference) -> OciError {
        match e.status().map(|s| s.as_u16()) {
            Some(401 | 403) => self.unauthorized(Some(Box::new(e))),
            Some(404) => OciError::NotFound {
                reference: reference.to_string(),
            },
            Some(_) => OciError::Registry {
                registry: self.registry.clone(),
                source: Box::new(e),
            },
            None => self.unreachable(Box::new(e)),
        }
    }
}

/// The TLS error somewhere in `e`'s chain. `io::Error` hides the error it
/// wraps from `source()` (it returns the inner error's source), so look
/// inside those too.
fn tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(cur) = next {
        if let Some(t) = cur.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        if let Some(inner) = cur
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            let inner: &(dyn std::error::Error + 'static) = inner;
            if let Some(t) = tls_error(inner) {
                return Some(t);
            }
        }
        next = cur.source();
    }
    None
}

/// The first `limit` bytes of an error body, for the message.
async fn read_capped(res: reqwest013::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut body = res.bytes_stream();
    while let Some(Ok(chunk)) = body.next().await {
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    out
}

/// reqwest (built without a crypto provider, so Toka has one TLS stack)
/// panics on its first HTTPS client unless a process-wide provider is
/// installed: install ring once. If the embedder installed one already, that
/// one stays.
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        s.parse().expect("reference")
    }

    #[test]
    fn plain_http_only_for_loopback_and_listed_hosts() {
        let cfg = RegistryConfig::new()
            .insecure_registry("lan:5000")
            .insecure_registry("http://other");
        for (s, plain) in [
            ("oci://127.0.0.1:5000/a", true),
            ("oci://127.9.9.9/a", true),
            ("oci://[::1]:5000/a", true),
            ("oci://[::ffff:127.0.0.1]:5000/a", true),
            ("oci://localhost:5000/a", true),
            ("oci://lan:5000/a", true),
            ("oci://lan:5001/a", false),
            ("oci://other:1/a", true),
            ("oci://ghcr.io/a", false),
            ("oci://10.0.0.1:5000/a", false),
            ("oci://127.0.0.1.nip.io/a", false),
        ] {
            assert_eq!(cfg.plain_http(&r(s)), plain, "{s}");
        }
    }

    #[test]
    fn env_credentials_win_over_docker_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join(".docker")).expect("mkdir");
        std::fs::write(
            dir.path().join(".docker/config.json"),
            r#"{"auths":{"h:1":{"username":"file","password":"p"}}}"#,
        )
        .expect("write");
        let home = dir.path().display().to_string();
        let vars = |env: bool| {
            let home = home.clone();
            move |k: &str| match k {
                "HOME" => Some(home.clone()),
                USER_ENV | PASSWORD_ENV if env => Some("env".to_string()),
                _ => None,
            }
        };
        let user = |cfg: RegistryConfig| match cfg.access("h:1").expect("access") {
            Access::Basic(c) => c.username,
            Access::Anonymous { hint } => panic!("{hint}"),
        };
        assert_eq!(
            user(RegistryConfig::from_vars(&vars(false)).expect("cfg")),
            "file"
        );
        assert_eq!(
            user(RegistryConfig::from_vars(&vars(true)).expect("cfg")),
            "env"
        );
        let anon = RegistryConfig::from_vars(&vars(false)).expect("cfg");
        assert!(matches!(
            anon.access("other:1"),
            Ok(Access::Anonymous { .. })
        ));
    }
}
