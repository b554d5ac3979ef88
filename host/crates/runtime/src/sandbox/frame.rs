//! The seam between a workflow's sandbox and the run it belongs to. The
//! call path puts a [`Frame`] into a workflow's store; the host side of
//! `tools.call` and `llm.complete` asks it, and the store's fuel hook tells
//! it how much fuel the guest had when it entered the host. The sandbox
//! itself knows nothing of catalogs, policies or models.

use super::host_api::{GuestResult, LlmRequest, LlmResponse};
use crate::events::EventSink;

/// A workflow's place in a run, as its sandbox sees it.
#[async_trait::async_trait]
pub trait Frame: Send {
    /// Answers the guest's `tools.call(name, input)`. `output_left` is what
    /// the workflow may still write; `events` is where the callee's logs go.
    ///
    /// # Errors
    ///
    /// A trap (`Err`) ends the workflow itself, when its own budget ran out
    /// during the nested call; a refused or failed call is `Ok(Err(_))`,
    /// which the guest sees and may handle.
    async fn call_tool(
        &mut self,
        name: String,
        input: String,
        output_left: u64,
        events: EventSink,
    ) -> GuestResult<String>;

    /// Answers the guest's `llm.complete(request)`.
    ///
    /// # Errors
    ///
    /// As [`Frame::call_tool`].
    async fn complete(&mut self, request: LlmRequest) -> GuestResult<LlmResponse>;

    /// The guest entered the host with `fuel` left: the most a nested call
    /// may get.
    fn entering_host(&mut self, fuel: u64);

    /// Fuel nested calls consumed since the guest entered the host, to be
    /// charged to it now.
    fn take_owed_fuel(&mut self) -> u64;

    /// Language-model tokens the whole run spent so far.
    fn llm_tokens(&self) -> u64;
}
