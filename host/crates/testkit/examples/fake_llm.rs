//! A fake language-model provider on loopback speaking the OpenAI Chat
//! Completions and Anthropic Messages APIs (the one the tests use), for
//! trying workflows and benchmarking agents without a real key:
//!
//! ```sh
//! cargo run -p toka-testkit --example fake_llm            # prints the environment to use
//! cargo run -p toka-testkit --example fake_llm -- 127.0.0.1:8089
//! ```
//!
//! Every answer is the same short text with fixed token counts.

use toka_testkit::{FakeLlm, Mode};

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let llm = FakeLlm::start_on(&addr, Mode::Ok);
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
