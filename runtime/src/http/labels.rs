//! The labels a request is counted and audited under: bounded, whatever a client sends.

/// The `route` label of a request that matched no route: never the raw path, which would make one series
/// per URL a client cares to send.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The `method` label of a method outside the standard nine.
pub const OTHER_METHOD: &str = "_OTHER";
