//! Test helpers shared by Toka's test suite, examples and benchmarks: real
//! servers on loopback that stand in for the outside world.

pub mod fake_llm;
pub mod postgres;
pub mod registry;

pub use fake_llm::{FakeLlm, Mode};
pub use postgres::PgServer;
pub use registry::Registry;
