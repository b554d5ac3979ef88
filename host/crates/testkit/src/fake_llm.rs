//! A fake language-model provider on loopback that speaks the real HTTP APIs
//! of both providers (OpenAI Chat Completions at `/v1/chat/completions`,
//! Anthropic Messages at `/v1/messages`), records every request with its
//! headers, and fails on demand (status codes, hangs, garbage).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the provider does with the next requests.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Answer properly.
    Ok,
    /// Answer `status` to the first `n` requests (with `Retry-After: 0` for
    /// 429), then properly.
    FailFirst(u16, usize),
    /// Never answer.
    Hang,
    /// Answer 200 with a body that is not JSON.
    Garbage,
    /// Answer 200 with 64 MiB.
    Huge,
}

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The request path (`/v1/chat/completions` or `/v1/messages`).
    pub path: String,
    /// Every header, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`null` if it was not JSON).
    pub body: Value,
}

impl Seen {
    /// The value of header `name` (lowercase), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    mode: Mode,
    seen: Vec<Seen>,
}

/// The running provider; stops when dropped.
pub struct FakeLlm {
    /// The API root to give the host (`http://127.0.0.1:PORT/v1`).
    pub base_url: String,
    shared: Arc<Mutex<Shared>>,
    _runtime: tokio::runtime::Runtime,
}

/// What every successful answer says.
pub const CONTENT: &str = "A short summary of the notes.";
/// Input tokens every successful answer reports.
pub const INPUT_TOKENS: u64 = 42;
/// Output tokens every successful answer reports.
pub const OUTPUT_TOKENS: u64 = 7;

impl FakeLlm {
    /// Starts on a free loopback port.
    pub fn start(mode: Mode) -> FakeLlm {
        FakeLlm::start_on("127.0.0.1:0", mode)
    }

    /// Starts on `addr` (`127.0.0.1:0` picks a free port).
    pub fn start_on(addr: &str, mode: Mode) -> FakeLlm {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let shared = Arc::new(Mutex::new(Shared {
            mode,
            seen: Vec::new(),
        }));
        let app = Router::new()
            .route("/v1/chat/completions", post(answer))
            .route("/v1/messages", post(answer))
            .with_state(shared.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeLlm {
            base_url: format!("http://{addr}/v1"),
            shared,
            _runtime: runtime,
        }
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.lock().expect("lock").seen.clone()
    }

    /// The environment that points the host at this provider.
    pub fn env(&self, provider: &str, key: &str) -> Vec<(String, String)> {
        vec![
            ("TOKA_LLM_PROVIDER".into(), provider.into()),
            ("TOKA_LLM_API_KEY".into(), key.into()),
            ("TOKA_LLM_BASE_URL".into(), self.base_url.clone()),
        ]
    }
}

async fn answer(
    State(shared): State<Arc<Mutex<Shared>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mode = {
        let mut s = shared.lock().expect("lock");
        s.seen.push(Seen {
            path: uri.path().to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body: body.clone(),
        });
        let mode = s.mode.clone();
        if let Mode::FailFirst(code, n) = mode {
            s.mode = if n > 1 {
                Mode::FailFirst(code, n - 1)
            } else {
                Mode::Ok
            };
        }
        mode
    };
    match mode {
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Mode::Garbage => (StatusCode::OK, "<html>this is not json").into_response(),
        Mode::Huge => (StatusCode::OK, vec![b' '; 64 << 20]).into_response(),
        Mode::FailFirst(code, _) => {
            let status = StatusCode::from_u16(code).expect("status");
            let mut r = (status, r#"{"error":{"message":"try again"}}"#).into_response();
            if code == 429 {
                r.headers_mut()
                    .insert("retry-after", "0".parse().expect("header"));
            }
            r
        }
        Mode::Ok if uri.path().ends_with("/chat/completions") => axum::Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion",
            "model": body["model"],
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": CONTENT }, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": INPUT_TOKENS, "completion_tokens": OUTPUT_TOKENS, "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS },
        }))
        .into_response(),
        Mode::Ok => axum::Json(json!({
            "id": "msg_1", "type": "message", "role": "assistant",
            "model": body["model"],
            "content": [{ "type": "text", "text": CONTENT }],
            "stop_reason": "end_turn",
            "usage": { "input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS },
        }))
        .into_response(),
    }
}
