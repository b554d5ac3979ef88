//! The token check of the door (`serve --auth-keys DIR`): every endpoint but
//! `/health`, `/ready` and the protected-resource metadata needs
//! `Authorization: Bearer TOKEN`, verified against the key directory and the
//! revocation file (both re-read when they change); a missing, expired,
//! revoked, tampered or foreign token is 401 with `WWW-Authenticate`; the
//! operator's endpoints (`/status`, `/metrics`, `/v1/events`, the list of
//! agents) need a token for every tool (`--tool '*'`); each token has its
//! own rate limit. What the token allows reaches the handlers, and through
//! them the call path, as [`Authenticated`].

use super::App;
use super::error::error;
use super::limit::RateLimiter;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use toka_auth::Verifier;
use toka_spec::outcome::ErrorKind;
use toka_spec::policy::CallerScope;

/// A request's verified token, in the request's extensions.
#[derive(Clone, Debug)]
pub(crate) struct Authenticated(pub(crate) Arc<dyn CallerScope>);

/// The door's token check.
pub(crate) struct Auth {
    pub(crate) verifier: Verifier,
    pub(crate) limiter: Option<RateLimiter>,
}

/// Paths answered without a token.
const PUBLIC: [&str; 4] = [
    "/health",
    "/ready",
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp",
];

/// Paths only a token for every tool may read.
const OPERATOR: [&str; 3] = ["/status", "/metrics", "/v1/events"];

/// The base URL of this server as the client addressed it.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn metadata_url(headers: &HeaderMap, path: &str) -> String {
    let suffix = if path == "/mcp" || path.starts_with("/mcp/") {
        "/mcp"
    } else {
        ""
    };
    format!(
        "{}/.well-known/oauth-protected-resource{suffix}",
        base_url(headers)
    )
}

/// A 401 with the `WWW-Authenticate` challenge RFC 6750 and RFC 9728 ask
/// for.
fn unauthorized(headers: &HeaderMap, path: &str, problem: Option<&str>) -> Response {
    let message = problem.unwrap_or(
        "this server needs `Authorization: Bearer TOKEN`; the operator issues tokens with `toka-host token issue`",
    );
    let mut r = error(ErrorKind::Unauthorized, message);
    let mut challenge = String::from("Bearer realm=\"toka\"");
    if let Some(p) = problem {
        let p = p.replace(['"', '\\'], "'");
        challenge.push_str(&format!(
            ", error=\"invalid_token\", error_description=\"{p}\""
        ));
    }
    challenge.push_str(&format!(
        ", resource_metadata=\"{}\"",
        metadata_url(headers, path)
    ));
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Checks the token of every request that needs one.
pub(crate) async fn authenticate(
    State(app): State<Arc<App>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(auth) = &app.auth else {
        return next.run(request).await;
    };
    let path = request.uri().path().to_string();
    if PUBLIC.contains(&path.as_str()) {
        return next.run(request).await;
    }
    let in_query = request.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv.starts_with("access_token=") || kv.starts_with("token="))
    });
    if in_query {
        return error(
            ErrorKind::InvalidInput,
            "tokens are never accepted in the URL (it ends up in logs and histories): send `Authorization: Bearer TOKEN`",
        );
    }
    let headers = request.headers();
    let Some(token) = bearer(headers) else {
        return unauthorized(headers, &path, None);
    };
    let scope = match auth.verifier.verify(token) {
        Ok(scope) => scope,
        Err(e) => return unauthorized(headers, &path, Some(&e.to_string())),
    };
    if let Some(limiter) = &auth.limiter
        && let Err(wait) = limiter.check(scope.token_id())
    {
        let mut r = error(
            ErrorKind::RateLimited,
            "this token is over its rate limit (--rate-limit); retry after the time in Retry-After",
        );
        let secs = wait.max(Duration::from_secs(1)).as_secs_f64().ceil() as u64;
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let operator_only = OPERATOR.contains(&path.as_str())
        || (path == "/v1/agents" && request.method() == axum::http::Method::GET);
    if operator_only && !scope.allows_all_tools() {
        let mut r = error(
            ErrorKind::Denied,
            &format!(
                "{path} is for the operator: it needs a token for every tool (`toka-host token issue --tool '*'`)"
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&format!(
            "Bearer realm=\"toka\", error=\"insufficient_scope\", resource_metadata=\"{}\"",
            metadata_url(request.headers(), &path)
        )) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        return r;
    }
    let scope: Arc<dyn CallerScope> = scope;
    request.extensions_mut().insert(Authenticated(scope));
    next.run(request).await
}

/// RFC 9728 protected-resource metadata for this server's endpoints.
pub(crate) async fn resource_metadata(
    State(app): State<Arc<App>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let base = base_url(&headers);
    let resource = if uri.path().ends_with("/mcp") {
        format!("{base}/mcp")
    } else {
        base.clone()
    };
    if app.auth.is_none() {
        return error(
            ErrorKind::NotFound,
            "this server takes no tokens (it was started without --auth-keys)",
        );
    }
    (
        StatusCode::OK,
        axum::Json(json!({
            "resource": resource,
            "resource_name": "Toka",
            "bearer_methods_supported": ["header"],
            // Tokens are issued by the operator, offline, not by an OAuth
            // authorization server.
            "authorization_servers": [],
            "resource_documentation": "Ask the operator for a token: toka-host token issue --keys DIR --tool NAME",
        })),
    )
        .into_response()
}
