//! Language-model providers: the host's client for the OpenAI-compatible
//! Chat Completions API and the Anthropic Messages API, configured by the
//! operator from the environment. The provider's key lives here and only
//! here: it goes into a request header, never into a sandbox, a log line or
//! the audit log.

use crate::audit::AuditLog;
use serde_json::{Value, json};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which API the provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// `POST {base}/chat/completions`, `Authorization: Bearer KEY`.
    OpenAi,
    /// `POST {base}/messages`, `x-api-key: KEY`.
    Anthropic,
}

impl Provider {
    fn as_str(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to reach the provider. `Debug` never shows the key.
#[derive(Clone)]
pub struct LlmConfig {
    /// The API spoken.
    pub provider: Provider,
    /// API root including the version, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The provider's key.
    api_key: String,
    /// Model used when a request names none.
    pub model: String,
    /// Time for one HTTP attempt.
    pub timeout: Duration,
    /// Further attempts after a 429, a 5xx, a timeout or a failed connection.
    pub retries: u32,
    /// `max_tokens` when a request sets none (Anthropic requires one).
    pub max_tokens: u32,
}

impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmConfig")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("api_key", &"<hidden>")
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .finish()
    }
}

/// The environment variables the configuration is read from, for `--help`.
pub const ENV_HELP: &str = "\
Language model (for workflows that call llm.complete), from the environment:
  TOKA_LLM_PROVIDER   openai (any Chat Completions server) or anthropic
                      [default: whichever of OPENAI_API_KEY / ANTHROPIC_API_KEY is set]
  TOKA_LLM_API_KEY    the key (or OPENAI_API_KEY / ANTHROPIC_API_KEY); never enters a sandbox
  TOKA_LLM_BASE_URL   API root with version [default: https://api.openai.com/v1 or
                      https://api.anthropic.com/v1]
  TOKA_LLM_MODEL      model when the workflow names none [default: gpt-4o-mini or
                      claude-3-5-haiku-latest]
  TOKA_LLM_TIMEOUT    per attempt [default: 60s]
  TOKA_LLM_RETRIES    further attempts after a 429, 5xx or timeout [default: 3]";

impl LlmConfig {
    /// Reads the configuration from `env` (the process environment in the
    /// CLI). `Ok(None)` when no provider is configured.
    ///
    /// # Errors
    ///
    /// A message naming the variable when one is set to something unusable.
    pub fn from_env(
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<LlmConfig>, LlmConfigError> {
        let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let provider = match get("TOKA_LLM_PROVIDER").as_deref() {
            Some("openai") => Provider::OpenAi,
            Some("anthropic") => Provider::Anthropic,
            Some(other) => {
                return Err(LlmConfigError::Provider {
                    value: other.to_string(),
                });
            }
            None if get("OPENAI_API_KEY").is_some() => Provider::OpenAi,
            None if get("ANTHROPIC_API_KEY").is_some() => Provider::Anthropic,
            None => return Ok(None),
        };
        let (key_var, default_url, default_model) = match provider {
            Provider::OpenAi => ("OPENAI_API_KEY", "https://api.openai.com/v1", "gpt-4o-mini"),
            Provider::Anthropic => (
                "ANTHROPIC_API_KEY",
                "https://api.anthropic.com/v1",
                "claude-3-5-haiku-latest",
            ),
        };
        let api_key = get("TOKA_LLM_API_KEY")
            .or_else(|| get(key_var))
            .ok_or(LlmConfigError::MissingKey { provider, key_var })?;
        let base_url = get("TOKA_LLM_BASE_URL")
            .unwrap_or_else(|| default_url.to_string())
            .trim_end_matches('/')
            .to_string();
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(LlmConfigError::BaseUrl {
                value: base_url,
                example: default_url,
            });
        }
        let timeout = match get("TOKA_LLM_TIMEOUT") {
            None => Duration::from_secs(60),
            Some(t) => {
                t.parse::<toka_spec::units::HumanDuration>()
                    .map_err(|reason| LlmConfigError::Timeout {
                        value: t.clone(),
                        reason,
                    })?
                    .0
            }
        };
        let retries = match get("TOKA_LLM_RETRIES") {
            None => 3,
            Some(r) => r
                .parse::<u32>()
                .ok()
                .filter(|r| *r <= 10)
                .ok_or(LlmConfigError::Retries { value: r.clone() })?,
        };
        Ok(Some(LlmConfig {
            provider,
            base_url,
            api_key,
            model: get("TOKA_LLM_MODEL").unwrap_or_else(|| default_model.to_string()),
            timeout,
            retries,
            max_tokens: 1024,
        }))
    }

    /// The URL requests go to.
    pub fn endpoint(&self) -> String {
        match self.provider {
            Provider::OpenAi => format!("{}/chat/completions", self.base_url),
            Provider::Anthropic => format!("{}/messages", self.base_url),
        }
    }
}

/// Who said a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Instructions.
    System,
    /// The user (or the workflow speaking for one).
    User,
    /// The model.
    Assistant,
}

/// A completion request, provider-neutral.
#[derive(Clone, Debug)]
pub struct ChatRequest {
    /// The conversation.
    pub messages: Vec<(Role, String)>,
    /// Model, or the configured default.
    pub model: Option<String>,
    /// Most tokens to generate.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
}

/// A completion, provider-neutral.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatResponse {
    /// The text of the answer.
    pub content: String,
    /// The model that answered.
    pub model: String,
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Generated tokens.
    pub output_tokens: u32,
    /// Why generation stopped.
    pub stop_reason: Option<String>,
}

/// Why the operator's model configuration cannot be used. Each message
/// names the variable and what it takes; none shows a key.
#[derive(Debug, thiserror::Error)]
pub enum LlmConfigError {
    /// `TOKA_LLM_PROVIDER` names no provider.
    #[error(
        "TOKA_LLM_PROVIDER={value}: use `openai` (any OpenAI-compatible Chat Completions server) or `anthropic`"
    )]
    Provider {
        /// What it was set to.
        value: String,
    },
    /// A provider but no key.
    #[error("TOKA_LLM_PROVIDER is {provider} but no key is set: set TOKA_LLM_API_KEY or {key_var}")]
    MissingKey {
        /// The provider.
        provider: Provider,
        /// The provider's usual variable.
        key_var: &'static str,
    },
    /// `TOKA_LLM_BASE_URL` is not an HTTP URL.
    #[error("TOKA_LLM_BASE_URL={value}: give an http:// or https:// URL such as {example}")]
    BaseUrl {
        /// What it was set to.
        value: String,
        /// The provider's default.
        example: &'static str,
    },
    /// `TOKA_LLM_TIMEOUT` is not a duration.
    #[error("TOKA_LLM_TIMEOUT={value}: {reason}")]
    Timeout {
        /// What it was set to.
        value: String,
        /// Why it does not parse.
        reason: String,
    },
    /// `TOKA_LLM_RETRIES` out of range.
    #[error("TOKA_LLM_RETRIES={value}: give a number from 0 to 10")]
    Retries {
        /// What it was set to.
        value: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the LLM HTTP client: {reason}")]
    Client {
        /// Why.
        reason: String,
    },
}

/// Why a completion failed. Messages name the provider and URL, never the key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    /// The provider answered with an error status (after retries, for 429/5xx).
    #[error(
        "the {provider} provider at {url} answered {status} after {attempts} attempt(s): {body}"
    )]
    Status {
        /// Provider.
        provider: Provider,
        /// URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// The start of the body.
        body: String,
    },
    /// No answer in time (after retries).
    #[error("the {provider} provider at {url} did not answer within {} ({attempts} attempt(s)); raise TOKA_LLM_TIMEOUT or the workflow's timeout", toka_spec::units::HumanDuration(*timeout))]
    Timeout {
        /// Provider.
        provider: Provider,
        /// URL.
        url: String,
        /// Per-attempt timeout.
        timeout: Duration,
        /// Attempts made.
        attempts: u32,
    },
    /// Could not connect or the connection broke (after retries).
    #[error("cannot reach the {provider} provider at {url} ({attempts} attempt(s)): {message}")]
    Connect {
        /// Provider.
        provider: Provider,
        /// URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// What went wrong.
        message: String,
    },
    /// The answer was larger than the host reads.
    #[error(
        "the {provider} provider at {url} answered with more than {} bytes; refusing to read more",
        limit
    )]
    TooLarge {
        /// Provider.
        provider: Provider,
        /// URL.
        url: String,
        /// The most the host reads.
        limit: usize,
    },
    /// A 200 whose body is not what the API defines.
    #[error(
        "the {provider} provider at {url} answered with a body that is not a {api} response ({message}): {body}"
    )]
    BadResponse {
        /// Provider.
        provider: Provider,
        /// URL.
        url: String,
        /// Which API was expected.
        api: &'static str,
        /// What is wrong.
        message: String,
        /// The start of the body.
        body: String,
    },
}

/// Where a request comes from, for the audit log.
#[derive(Clone, Debug)]
pub struct RequestOrigin {
    /// The run.
    pub run: String,
    /// The workflow that asked.
    pub workflow: String,
}

/// The client: one connection pool for every run of the process.
pub struct LlmClient {
    config: LlmConfig,
    http: reqwest::Client,
    audit: Option<Arc<AuditLog>>,
}

const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(8);
const BODY_SNIPPET: usize = 300;
/// The largest answer read from a provider.
const MAX_RESPONSE: usize = 16 << 20;

impl LlmClient {
    /// A client for `config`, recording requests and responses in `audit`.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built (no TLS roots).
    pub fn new(
        config: LlmConfig,
        audit: Option<Arc<AuditLog>>,
    ) -> Result<LlmClient, LlmConfigError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("toka-host/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| LlmConfigError::Client {
                reason: e.to_string(),
            })?;
        Ok(LlmClient {
            config,
            http,
            audit,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// Runs one completion, retrying 429, 5xx, timeouts and broken
    /// connections with exponential backoff (honouring `Retry-After`), and
    /// giving up at `deadline` whatever is left.
    ///
    /// # Errors
    ///
    /// [`LlmError`] naming the provider, URL and what went wrong.
    pub async fn complete(
        &self,
        request: &ChatRequest,
        deadline: Instant,
        origin: &RequestOrigin,
    ) -> Result<ChatResponse, LlmError> {
        let c = &self.config;
        let url = c.endpoint();
        let body = self.body(request);
        self.record(json!({
            "event": "llm-request", "run": origin.run, "workflow": origin.workflow,
            "provider": c.provider, "url": url, "request": body,
        }));
        let started = Instant::now();
        let result = self.send_with_retries(&url, &body, deadline).await;
        match &result {
            Ok((r, attempts)) => self.record(json!({
                "event": "llm-response", "run": origin.run, "workflow": origin.workflow,
                "provider": c.provider, "url": url, "attempts": attempts,
                "ms": started.elapsed().as_secs_f64() * 1000.0,
                "response": {
                    "content": r.content, "model": r.model, "stop_reason": r.stop_reason,
                    "usage": { "input_tokens": r.input_tokens, "output_tokens": r.output_tokens },
                },
            })),
            Err(e) => self.record(json!({
                "event": "llm-error", "run": origin.run, "workflow": origin.workflow,
                "provider": c.provider, "url": url,
                "ms": started.elapsed().as_secs_f64() * 1000.0, "error": e.to_string(),
            })),
        }
        result.map(|(r, _)| r)
    }

    fn record(&self, line: Value) {
        if let Some(a) = &self.audit {
            a.record(line);
        }
    }

    /// The request body in the provider's format (no key: that is a header).
    fn body(&self, r: &ChatRequest) -> Value {
        let c = &self.config;
        let model = r.model.clone().unwrap_or_else(|| c.model.clone());
        let max_tokens = r.max_tokens.unwrap_or(c.max_tokens);
        let role = |role: Role| match role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let mut body = match c.provider {
            Provider::OpenAi => json!({
                "model": model,
                "max_tokens": max_tokens,
                "messages": r.messages.iter()
                    .map(|(ro, content)| json!({ "role": role(*ro), "content": content }))
                    .collect::<Vec<_>>(),
            }),
            Provider::Anthropic => {
                // The Messages API takes system text as a top-level field.
                let system: Vec<&str> = r
                    .messages
                    .iter()
                    .filter(|(ro, _)| *ro == Role::System)
                    .map(|(_, t)| t.as_str())
                    .collect();
                let mut b = json!({
                    "model": model,
                    "max_tokens": max_tokens,
                    "messages": r.messages.iter()
                        .filter(|(ro, _)| *ro != Role::System)
                        .map(|(ro, content)| json!({ "role": role(*ro), "content": content }))
                        .collect::<Vec<_>>(),
                });
                if !system.is_empty()
                    && let Some(o) = b.as_object_mut()
                {
                    o.insert("system".into(), json!(system.join("\n\n")));
                }
                b
            }
        };
        if let (Some(t), Some(o)) = (r.temperature, body.as_object_mut()) {
            o.insert("temperature".into(), json!(t));
        }
        body
    }

    async fn send_with_retries(
        &self,
        url: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<(ChatResponse, u32), LlmError> {
        let c = &self.config;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = c.timeout.min(left);
            let last = attempt > c.retries;
            let outcome = self.send_once(url, body, timeout).await;
            let (retry_after, error) = match outcome {
                Ok(Ok(r)) => return Ok((r, attempt)),
                Ok(Err(Attempt::Final(e))) => return Err(e(attempt)),
                Ok(Err(Attempt::Retry(after, e))) => (after, e(attempt)),
                Err(()) => (
                    None,
                    LlmError::Timeout {
                        provider: c.provider,
                        url: url.to_string(),
                        timeout,
                        attempts: attempt,
                    },
                ),
            };
            let backoff = retry_after
                .unwrap_or(BACKOFF_BASE * 2u32.saturating_pow(attempt - 1))
                .min(BACKOFF_MAX);
            if last || Instant::now() + backoff >= deadline {
                return Err(error);
            }
            tokio::time::sleep(backoff).await;
        }
    }

    /// One HTTP attempt. `Err(())` is a timeout.
    async fn send_once(
        &self,
        url: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Result<ChatResponse, Attempt>, ()> {
        let c = &self.config;
        let provider = c.provider;
        let mut req = self.http.post(url).json_body(body);
        req = match provider {
            Provider::OpenAi => req.bearer_auth(&c.api_key),
            Provider::Anthropic => req
                .header("x-api-key", &c.api_key)
                .header("anthropic-version", "2023-06-01"),
        };
        let attempt = async {
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) if e.is_timeout() => return Err(()),
                Err(e) => return Ok(Err(broken(provider, url, &e))),
            };
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            // Read at most MAX_RESPONSE: a provider (or something posing as
            // one) must not be able to make the host buffer without bound.
            let mut resp = resp;
            let mut bytes: Vec<u8> = Vec::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        if bytes.len() + chunk.len() > MAX_RESPONSE {
                            let url = url.to_string();
                            return Ok(Err(Attempt::Final(Box::new(move |_| {
                                LlmError::TooLarge {
                                    provider,
                                    url,
                                    limit: MAX_RESPONSE,
                                }
                            }))));
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) if e.is_timeout() => return Err(()),
                    Err(e) => return Ok(Err(broken(provider, url, &e))),
                }
            }
            let text = snippet(&bytes);
            if !status.is_success() {
                let code = status.as_u16();
                let url = url.to_string();
                let make = Box::new(move |attempts| LlmError::Status {
                    provider,
                    url,
                    status: code,
                    attempts,
                    body: text,
                });
                return Ok(Err(if code == 429 || status.is_server_error() {
                    Attempt::Retry(retry_after, make)
                } else {
                    Attempt::Final(make)
                }));
            }
            Ok(parse(provider, &bytes).map_err(|(api, message)| {
                let url = url.to_string();
                Attempt::Final(Box::new(move |_| LlmError::BadResponse {
                    provider,
                    url,
                    api,
                    message,
                    body: text,
                }))
            }))
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(()),
        }
    }
}

type MakeError = Box<dyn FnOnce(u32) -> LlmError + Send>;

/// A connection that failed or broke: worth another attempt.
fn broken(provider: Provider, url: &str, e: &reqwest::Error) -> Attempt {
    let message = error_chain(e);
    let url = url.to_string();
    Attempt::Retry(
        None,
        Box::new(move |attempts| LlmError::Connect {
            provider,
            url,
            attempts,
            message,
        }),
    )
}

/// A failed attempt: worth retrying (with the server's `Retry-After`) or not.
enum Attempt {
    Retry(Option<Duration>, MakeError),
    Final(MakeError),
}

trait JsonBody {
    fn json_body(self, body: &Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, body: &Value) -> Self {
        self.header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut s: String = text.chars().take(BODY_SNIPPET).collect();
    if text.chars().count() > BODY_SNIPPET {
        s.push('…');
    }
    s
}

/// Reads the provider's answer; `Err((api, what is wrong))`.
fn parse(provider: Provider, bytes: &[u8]) -> Result<ChatResponse, (&'static str, String)> {
    let api = match provider {
        Provider::OpenAi => "Chat Completions",
        Provider::Anthropic => "Messages",
    };
    let v: Value = serde_json::from_slice(bytes).map_err(|e| (api, e.to_string()))?;
    let missing = |what: &str| (api, format!("no {what}"));
    let tokens = |v: &Value| {
        v.as_u64()
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .unwrap_or(0)
    };
    match provider {
        Provider::OpenAi => {
            let choice = v["choices"].get(0).ok_or_else(|| missing("choices[0]"))?;
            let content = choice["message"]["content"]
                .as_str()
                .ok_or_else(|| missing("choices[0].message.content"))?;
            Ok(ChatResponse {
                content: content.to_string(),
                model: v["model"].as_str().unwrap_or_default().to_string(),
                input_tokens: tokens(&v["usage"]["prompt_tokens"]),
                output_tokens: tokens(&v["usage"]["completion_tokens"]),
                stop_reason: choice["finish_reason"].as_str().map(str::to_string),
            })
        }
        Provider::Anthropic => {
            let blocks = v["content"]
                .as_array()
                .ok_or_else(|| missing("content array"))?;
            let content: String = blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str())
                .collect();
            Ok(ChatResponse {
                content,
                model: v["model"].as_str().unwrap_or_default().to_string(),
                input_tokens: tokens(&v["usage"]["input_tokens"]),
                output_tokens: tokens(&v["usage"]["output_tokens"]),
                stop_reason: v["stop_reason"].as_str().map(str::to_string),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn configuration_from_the_environment() {
        assert!(LlmConfig::from_env(env(&[])).expect("ok").is_none());
        let c = LlmConfig::from_env(env(&[("OPENAI_API_KEY", "k")]))
            .expect("ok")
            .expect("some");
        assert_eq!(c.provider, Provider::OpenAi);
        assert_eq!(c.endpoint(), "https://api.openai.com/v1/chat/completions");
        let c = LlmConfig::from_env(env(&[
            ("TOKA_LLM_PROVIDER", "anthropic"),
            ("TOKA_LLM_API_KEY", "secret-key"),
            ("TOKA_LLM_BASE_URL", "http://127.0.0.1:9/v1/"),
        ]))
        .expect("ok")
        .expect("some");
        assert_eq!(c.endpoint(), "http://127.0.0.1:9/v1/messages");
        assert!(!format!("{c:?}").contains("secret-key"));
        let e = LlmConfig::from_env(env(&[("TOKA_LLM_PROVIDER", "gemini")]))
            .expect_err("bad")
            .to_string();
        assert!(e.contains("TOKA_LLM_PROVIDER=gemini"), "{e}");
        let e = LlmConfig::from_env(env(&[("TOKA_LLM_PROVIDER", "openai")]))
            .expect_err("no key")
            .to_string();
        assert!(e.contains("OPENAI_API_KEY"), "{e}");
    }

    #[test]
    fn both_response_formats_parse() {
        let r = parse(
            Provider::OpenAi,
            br#"{"model":"m","choices":[{"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
        )
        .expect("openai");
        assert_eq!(
            (r.content.as_str(), r.input_tokens, r.output_tokens),
            ("hi", 3, 1)
        );
        let r = parse(
            Provider::Anthropic,
            br#"{"model":"c","content":[{"type":"text","text":"yo"}],"stop_reason":"end_turn","usage":{"input_tokens":5,"output_tokens":2}}"#,
        )
        .expect("anthropic");
        assert_eq!(
            (r.content.as_str(), r.stop_reason.as_deref()),
            ("yo", Some("end_turn"))
        );
        assert!(parse(Provider::OpenAi, b"<html>").is_err());
        assert!(parse(Provider::Anthropic, br#"{"choices":[]}"#).is_err());
    }
}
