//! Where registry credentials come from: `TOKA_REGISTRY_USER` and
//! `TOKA_REGISTRY_PASSWORD` (they win), else the `auths` of docker's
//! `config.json`, else none (anonymous).
//!
//! Docker's credential helpers (`credsStore`, `credHelpers`) are programs
//! Toka would have to run; it does not, and says so when a registry refuses
//! access, with what to do instead. Identity tokens (OAuth refresh tokens)
//! are not supported by the registry client either.
//!
//! Credentials are never logged, printed or put in an error: their `Debug`
//! is redacted and errors name only where they came from.

use crate::error::OciError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The environment variable with the registry user name.
pub const USER_ENV: &str = "TOKA_REGISTRY_USER";
/// The environment variable with the registry password (or token).
pub const PASSWORD_ENV: &str = "TOKA_REGISTRY_PASSWORD";

/// A user name and password for HTTP Basic or a registry's token service.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub(crate) username: String,
    pub(crate) password: String,
    /// Where they came from, for messages.
    pub(crate) origin: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Credentials given directly; `origin` says where they came from in
    /// messages (for example `--registry-user`).
    pub fn new(
        username: impl Into<String>,
        password: impl Into<String>,
        origin: impl Into<String>,
    ) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
            origin: origin.into(),
        }
    }
}

/// What is known about access to one registry.
#[derive(Clone, Debug)]
pub(crate) enum Access {
    /// Use these.
    Basic(Credentials),
    /// None usable; the hint says why and what to do if access is refused.
    Anonymous { hint: String },
}

/// The parts of docker's `config.json` Toka reads.
#[derive(Clone, Default)]
pub(crate) struct DockerConfig {
    path: PathBuf,
    auths: BTreeMap<String, AuthEntry>,
    creds_store: Option<String>,
    cred_helpers: BTreeMap<String, String>,
}

impl std::fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The file name only: the rest holds credentials.
        f.debug_struct("DockerConfig")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Default, Deserialize)]
struct RawConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Clone, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl DockerConfig {
    /// Reads `path`; a missing file is an empty config.
    pub(crate) fn load(path: &Path) -> Result<DockerConfig, OciError> {
        let fail = |reason: String| OciError::Credentials {
            origin: path.display().to_string(),
            reason,
        };
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DockerConfig {
                    path: path.to_path_buf(),
                    ..DockerConfig::default()
                });
            }
            Err(e) => return Err(fail(format!("cannot read it: {e}"))),
        };
        // serde_json's message names a line and column, never the value.
        let raw: RawConfig = serde_json::from_slice(&text).map_err(|e| {
            fail(format!(
                "it is not a docker config.json ({e}); fix it, or point DOCKER_CONFIG elsewhere"
            ))
        })?;
        let mut auths = BTreeMap::new();
        for (k, v) in raw.auths {
            auths.insert(normalize(&k), v);
        }
        let cred_helpers = raw
            .cred_helpers
            .into_iter()
            .map(|(k, v)| (normalize(&k), v))
            .collect();
        Ok(DockerConfig {
            path: path.to_path_buf(),
            auths,
            creds_store: raw.creds_store.filter(|s| !s.is_empty()),
            cred_helpers,
        })
    }

    /// What this file says about `registry` (`host[:port]`).
    pub(crate) fn access(&self, registry: &str) -> Result<Option<Access>, OciError> {
        let origin = self.path.display().to_string();
        let key = normalize(registry);
        let unsupported = |how: String| {
            Ok(Some(Access::Anonymous {
                hint: format!(
                    "{origin} keeps the credentials for {registry} {how}, which Toka does not support; set {USER_ENV} and {PASSWORD_ENV} instead"
                ),
            }))
        };
        if let Some(helper) = self.cred_helpers.get(&key) {
            return unsupported(format!(
                "in a credential helper (credHelpers: docker-credential-{helper})"
            ));
        }
        if let Some(entry) = self.auths.get(&key) {
            if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
                let fail = |why: &str| OciError::Credentials {
                    origin: origin.clone(),
                    reason: format!(
                        "the `auth` of {registry} {why}; it must be base64 of USER:PASSWORD (run `docker login {registry}` again)"
                    ),
                };
                let decoded = B64.decode(auth.trim()).map_err(|_| fail("is not base64"))?;
                let text = String::from_utf8(decoded).map_err(|_| fail("is not UTF-8"))?;
                let (user, pass) = text.split_once(':').ok_or_else(|| fail("has no ':'"))?;
                return Ok(Some(Access::Basic(Credentials::new(
                    user,
                    pass,
                    origin.clone(),
                ))));
            }
            if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
                return Ok(Some(Access::Basic(Credentials::new(u, p, origin.clone()))));
            }
            if entry.identitytoken.is_some() {
                return unsupported("as an identity token".into());
            }
        }
        if let Some(store) = &self.creds_store {
            return unsupported(format!(
                "in a credential store (credsStore: docker-credential-{store})"
            ));
        }
        Ok(None)
    }
}

/// Docker config keys are URLs or `host[:port]`; Docker Hub has several
/// spellings. Compare them as oci-client resolves registries.
fn normalize(key: &str) -> String {
    let k = key.trim().to_ascii_lowercase();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(&k);
    let host = k.split('/').next().unwrap_or(k);
    match host {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" => "index.docker.io".to_string(),
        h => h.to_string(),
    }
}

/// The user and password from the environment, if both are set.
pub(crate) fn from_env(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Credentials>, OciError> {
    match (get(USER_ENV), get(PASSWORD_ENV)) {
        (Some(u), Some(p)) => Ok(Some(Credentials::new(
            u,
            p,
            format!("{USER_ENV}/{PASSWORD_ENV}"),
        ))),
        (None, None) => Ok(None),
        (Some(_), None) | (None, Some(_)) => Err(OciError::Credentials {
            origin: format!("{USER_ENV}/{PASSWORD_ENV}"),
            reason: format!(
                "only one of {USER_ENV} and {PASSWORD_ENV} is set; set both, or neither"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> DockerConfig {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("config.json");
        std::fs::write(&p, json).expect("write");
        DockerConfig::load(&p).expect("load")
    }

    fn basic(a: Option<Access>) -> (String, String) {
        match a {
            Some(Access::Basic(c)) => (c.username, c.password),
            other => panic!("expected credentials, got {other:?}"),
        }
    }

    #[test]
    fn auths_are_found_by_host_in_any_spelling() {
        let auth = B64.encode("toka:s3cret");
        let c = config(&format!(
            r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{auth}"}},"https://index.docker.io/v1/":{{"auth":"{auth}"}},"ghcr.io":{{"username":"u","password":"p"}}}}}}"#
        ));
        assert_eq!(
            basic(c.access("127.0.0.1:5000").expect("ok")),
            ("toka".into(), "s3cret".into())
        );
        assert_eq!(basic(c.access("docker.io").expect("ok")).0, "toka");
        assert_eq!(
            basic(c.access("GHCR.io").expect("ok")),
            ("u".into(), "p".into())
        );
        assert!(c.access("127.0.0.1:5001").expect("ok").is_none());
    }

    #[test]
    fn helpers_and_identity_tokens_are_reported_not_run() {
        let c = config(
            r#"{"auths":{"a.io":{},"b.io":{"identitytoken":"x"}},"credsStore":"desktop","credHelpers":{"gcr.io":"gcloud"}}"#,
        );
        for (reg, says) in [
            ("a.io", "credsStore: docker-credential-desktop"),
            ("b.io", "identity token"),
            ("gcr.io", "credHelpers: docker-credential-gcloud"),
        ] {
            match c.access(reg).expect("ok") {
                Some(Access::Anonymous { hint }) => {
                    assert!(hint.contains(says) && hint.contains(USER_ENV), "{hint}")
                }
                other => panic!("{reg}: {other:?}"),
            }
        }
    }

    #[test]
    fn broken_files_name_the_file_not_the_secret() {
        let c = config(r#"{"auths":{"h":{"auth":"!!!s3cret"}}}"#);
        let e = c.access("h").expect_err("bad base64").to_string();
        assert!(e.contains("config.json") && !e.contains("s3cret"), "{e}");
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("config.json");
        std::fs::write(&p, "{not json s3cret").expect("write");
        let e = DockerConfig::load(&p).expect_err("bad json").to_string();
        assert!(e.contains("config.json") && !e.contains("s3cret"), "{e}");
        assert!(DockerConfig::load(&dir.path().join("none.json")).is_ok());
    }

    #[test]
    fn env_credentials_need_both_variables() {
        let both = |k: &str| Some(format!("{k}-value"));
        assert!(from_env(&both).expect("ok").is_some());
        assert!(from_env(&|_| None).expect("ok").is_none());
        let half = |k: &str| (k == USER_ENV).then(|| "u".to_string());
        assert!(from_env(&half).is_err());
        let c = from_env(&both).expect("ok").expect("some");
        assert!(!format!("{c:?}").contains("value"));
    }
}
