//! Error responses of the HTTP API: one JSON shape for every error
//! (`{"error": {"kind", "message", ...}}`) and one mapping from the shared
//! error-kind vocabulary to HTTP status codes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use toka_spec::outcome::ErrorKind;

/// The HTTP status of an error of `kind`.
pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidInput | ErrorKind::InvalidJson | ErrorKind::WrongKind => {
            StatusCode::BAD_REQUEST
        }
        ErrorKind::Denied => StatusCode::FORBIDDEN,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::ToolError => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::LimitExceeded => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Busy | ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::BadHost => StatusCode::MISDIRECTED_REQUEST,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::Cancelled => StatusCode::CONFLICT,
        ErrorKind::Trap
        | ErrorKind::Link
        | ErrorKind::HashMismatch
        | ErrorKind::WeakerSandbox
        | ErrorKind::InvalidManifest
        | ErrorKind::InvalidWasm
        | ErrorKind::Host => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error response of `kind` with `message`.
pub(crate) fn error(kind: ErrorKind, message: &str) -> Response {
    with_body(
        status_of(kind),
        json!({ "error": { "kind": kind, "message": message } }),
    )
}

/// A JSON response.
pub(crate) fn with_body(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// 503 (or 429) with `Retry-After: 1`.
pub(crate) fn retry_later(kind: ErrorKind, message: &str) -> Response {
    let mut r = error(kind, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}
