//! A boxed future, for object-safe traits whose methods are asynchronous.

use std::future::Future;
use std::pin::Pin;

/// A boxed future, for object-safe traits such as the audit `Sink` and the health `HealthCheck`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
