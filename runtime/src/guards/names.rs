//! The names of the guards that functions declare.

/// The guard names that functions declare, by kind: what configuration sections may name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclaredNames {
    /// Breaker names.
    pub breaker: Vec<String>,
    /// Rate limiter names.
    pub rate: Vec<String>,
    /// Bulkhead names.
    pub bulkhead: Vec<String>,
    /// Retry policy names.
    pub retry: Vec<String>,
}
