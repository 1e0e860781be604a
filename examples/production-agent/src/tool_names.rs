//! The names of the agent's tools: what the configuration's tool lists are checked against, before any
//! tool exists.

/// Every tool, as keys name them.
pub(crate) const NAMES: &[&str] = &["calculator", "clock", "fetch", "memory", "faulty"];
