//! Where a run store lives: the URL forms `open` takes (`sqlite:PATH`,
//! `postgres://…`, `postgresql://…`), the default SQLite path, and the one
//! redacted form of a URL that every message prints (a password never leaves
//! this module).

use crate::StoreError;
use std::path::{Path, PathBuf};

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `sqlite:PATH`: a SQLite file (created on first use).
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`: a PostgreSQL database, as given
    /// (the password, if any, stays in here and is only handed to the driver).
    Postgres(String),
}

impl Location {
    /// Parses `url`: `sqlite:PATH` (also `sqlite://PATH`, so that
    /// `sqlite:///abs/runs.db` means `/abs/runs.db`), `postgres://…` or
    /// `postgresql://…`.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidUrl`] for any other scheme or an empty path.
    pub fn parse(url: &str) -> Result<Location, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidUrl {
            url: redact_url(url),
            reason: reason.to_string(),
        };
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(invalid("the SQLite path is empty"));
            }
            if path == ":memory:" || path.starts_with(":memory:") {
                // A pool of in-memory connections would be several separate
                // databases; a store that forgets runs is not one.
                return Err(invalid(
                    "in-memory SQLite is not supported (each pooled connection would be its own database); give a file path",
                ));
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_string()));
        }
        Err(invalid(
            "unknown scheme; use sqlite:PATH or postgres://USER@HOST:PORT/DATABASE",
        ))
    }

    /// The URL as messages print it: `sqlite:PATH`, or the PostgreSQL URL
    /// with its password replaced by `***`.
    pub fn display(&self) -> String {
        match self {
            Location::Sqlite(path) => sqlite_display(path),
            Location::Postgres(url) => redact_url(url),
        }
    }
}

/// `sqlite:PATH`, the way messages name a SQLite store.
pub(crate) fn sqlite_display(path: &Path) -> String {
    format!("sqlite:{}", path.display())
}

/// The default store: `$XDG_STATE_HOME/toka/runs.db`, else
/// `~/.local/state/toka/runs.db` (the XDG base-directory rule: state that
/// should survive a restart but is not configuration). `None` when neither
/// `XDG_STATE_HOME` (absolute) nor `HOME` is set.
pub fn default_sqlite_path() -> Option<PathBuf> {
    default_sqlite_path_from(
        std::env::var_os("XDG_STATE_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

/// [`default_sqlite_path`] with the environment passed in.
fn default_sqlite_path_from(xdg_state: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    // The spec says a relative XDG_STATE_HOME is invalid and to be ignored.
    let base = match xdg_state {
        Some(d) if d.is_absolute() => d,
        _ => home
            .filter(|h| !h.as_os_str().is_empty())?
            .join(".local/state"),
    };
    Some(base.join("toka").join("runs.db"))
}

/// `url` with any password replaced by `***`: the userinfo password
/// (`postgres://user:SECRET@host/db`) and a `password=` query parameter.
/// Works on text that does not parse as a URL too, so that an invalid URL can
/// be quoted in its own error message without leaking what it holds.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let after = scheme_end + 3;
    let rest = &url[after..];
    // The authority ends at the first '/', '?' or '#'; a password can hold
    // none of them unescaped, but it can hold '@', so the last '@' of the
    // authority ends the userinfo.
    let auth_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_len);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.find(':') {
                Some(colon) => format!("{}:***{host}", &userinfo[..colon]),
                None => authority.to_string(),
            }
        }
        None => authority.to_string(),
    };
    let tail = match tail.find('?') {
        Some(q) => {
            let (path, query) = tail.split_at(q + 1);
            let (query, fragment) = match query.find('#') {
                Some(h) => query.split_at(h),
                None => (query, ""),
            };
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}{}{fragment}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{}{authority}{tail}", &url[..after])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_survive_redaction() {
        let cases = [
            (
                "postgres://toka:s3cret@127.0.0.1:5432/runs",
                "postgres://toka:***@127.0.0.1:5432/runs",
            ),
            (
                "postgresql://toka:p@ss@db.example:5432/runs?sslmode=require",
                "postgresql://toka:***@db.example:5432/runs?sslmode=require",
            ),
            (
                "postgres://toka@h/db?sslmode=disable&password=s3cret",
                "postgres://toka@h/db?sslmode=disable&password=***",
            ),
            ("postgres://toka@h:5432/db", "postgres://toka@h:5432/db"),
            ("postgres://h", "postgres://h"),
            ("postgres://u:s3cret@", "postgres://u:***@"),
            (
                "sqlite:/var/lib/toka/runs.db",
                "sqlite:/var/lib/toka/runs.db",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
            assert!(!redact_url(url).contains("s3cret"));
        }
    }

    #[test]
    fn url_forms() {
        assert_eq!(
            Location::parse("sqlite:runs.db").unwrap(),
            Location::Sqlite("runs.db".into())
        );
        assert_eq!(
            Location::parse("sqlite:///var/x.db").unwrap(),
            Location::Sqlite("/var/x.db".into())
        );
        assert_eq!(
            Location::parse("sqlite:/var/x.db").unwrap(),
            Location::Sqlite("/var/x.db".into())
        );
        assert!(matches!(
            Location::parse("postgresql://u@h/d").unwrap(),
            Location::Postgres(_)
        ));
        for bad in [
            "sqlite:",
            "sqlite::memory:",
            "mysql://u:s3cret@h/d",
            "/tmp/x.db",
        ] {
            let e = Location::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("s3cret"), "{e}");
            assert!(e.contains("sqlite:"), "{e}");
        }
    }

    #[test]
    fn default_path_follows_xdg() {
        let home = Some(PathBuf::from("/home/a"));
        assert_eq!(
            default_sqlite_path_from(Some("/state".into()), home.clone()),
            Some("/state/toka/runs.db".into())
        );
        assert_eq!(
            default_sqlite_path_from(Some("relative".into()), home.clone()),
            Some("/home/a/.local/state/toka/runs.db".into())
        );
        assert_eq!(
            default_sqlite_path_from(None, home),
            Some("/home/a/.local/state/toka/runs.db".into())
        );
        assert_eq!(default_sqlite_path_from(None, None), None);
    }
}
