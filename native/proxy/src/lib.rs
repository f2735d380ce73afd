//! microloop-proxy: MicroLoop in front of an LLM API.
//!
//! An agent that cannot be changed is guarded by pointing its base URL here. Each request is
//! forwarded upstream; each tool call the model proposes in the answer is checked against the
//! agent's history, rebuilt from the request itself ([`trajectory`]), before the agent sees it.
//! A blocked call is withheld: the model is re-asked with the verdict as the call's result, or the
//! turn is ended with a text explaining the block ([`wire`]). Streams are followed event by event
//! ([`stream`]): text passes at once, tool calls are released once complete and allowed.
//!
//! * [`config`]: command line and environment;
//! * [`server`]: routes, the upstream client, the on-block ladder;
//! * [`metrics`]: Prometheus counters.

pub mod config;
pub mod metrics;
pub mod server;
pub mod stream;
pub mod trajectory;
pub mod wire;

/// The wire format of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// OpenAI Chat Completions (`/v1/chat/completions`).
    OpenAi,
    /// Anthropic Messages (`/v1/messages`).
    Anthropic,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::OpenAi => "openai",
            Api::Anthropic => "anthropic",
        }
    }
}
