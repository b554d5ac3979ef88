//! A fake language-model provider on loopback speaking the OpenAI Chat
//! Completions and Anthropic Messages APIs (the one the tests use), for
//! trying workflows and benchmarking agents without a real key:
//!
//! ```sh
//! cargo run --example fake_llm            # prints the environment to use
//! cargo run --example fake_llm -- 127.0.0.1:8089
//! ```
//!
//! Every answer is the same short text with fixed token counts.

// Only some of what the tests use is needed here.
#[allow(dead_code)]
#[path = "../../tests/all/fake_llm.rs"]
mod fake_llm;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let llm = fake_llm::FakeLlm::start_on(&addr, fake_llm::Mode::Ok);
    println!(
        "TOKA_LLM_PROVIDER=openai TOKA_LLM_API_KEY=fake-key TOKA_LLM_BASE_URL={}",
        llm.base_url
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
