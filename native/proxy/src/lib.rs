//! microloop-proxy: MicroLoop in front of an LLM API.
//!
//! An agent that cannot be changed is guarded by pointing its base URL here. Each request is
//! forwarded upstream; each tool call the model proposes in the answer is checked against the
//! agent's history, rebuilt from the request itself ([`trajectory`]), before the agent sees it.
//! A blocked call is withheld: the model is re-asked with the verdict as the call's result, or the
//! turn is ended with a text explaining the block. Streams are followed event by event: text passes at once, tool calls are released once complete and allowed.
//!
//! * [`cli`]: the `microloop-proxy` command;
//! * [`config`]: command line and environment;
//! * [`dialect`]: one module per wire format (OpenAI Chat Completions and Responses, Anthropic
//!   Messages, Gemini) behind one trait;
//! * [`server`]: routes, the upstream client, the on-block ladder, written once for every dialect;
//! * [`store`]: conversations kept between requests (`previous_response_id`), in memory or Redis;
//! * [`metrics`]: Prometheus counters;
//! * [`memory`]: memory freed after a burst goes back to the system.

pub mod cli;
pub mod config;
pub mod dialect;
pub mod memory;
pub mod metrics;
mod redis;
pub mod server;
pub mod store;
pub mod trajectory;
