//! AWS Lambda, local: the Runtime and Extensions APIs, a function binary run under them,
//! and the repository's sample events.

pub(crate) mod error;
pub(crate) mod extensions_api;
pub(crate) mod function_process;
pub(crate) mod runtime_api;
pub mod sample_events;
