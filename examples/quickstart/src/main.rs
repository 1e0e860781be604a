//! The smallest service with `hardened`: run it with `cargo run -p quickstart`.
//!
//! It calls a few annotated functions (a sync reducer, an async tool behind a circuit breaker, a timeout
//! and a retry that sometimes fails, a method) and prints the spans they produced, the configuration in
//! force and the Prometheus metrics they recorded. A `hardened.toml` in the current directory, or
//! `HARDENED_*` variables such as `HARDENED_BREAKER__WEATHER__CONSECUTIVE_FAILURES=1`, retune the guards.

use std::fmt;

use hardened::hardened;

/// Why the weather tool could not answer.
#[derive(Debug)]
enum WeatherError {
    UnknownCity(String),
    Refused(hardened::Rejected),
}

impl fmt::Display for WeatherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeatherError::UnknownCity(city) => write!(f, "no forecast for {city}"),
            WeatherError::Refused(rejected) => write!(f, "refused: {rejected}"),
        }
    }
}

impl From<hardened::Rejected> for WeatherError {
    fn from(rejected: hardened::Rejected) -> Self {
        WeatherError::Refused(rejected)
    }
}

/// A tool an agent can call; the city is recorded on the span, nothing else is. A breaker shared under
/// the name `weather`, a timeout and one retry guard it.
#[hardened(kind = "tool", fields(city), breaker(name = "weather", consecutive_failures = 3), timeout = "2s", retry = 1)]
async fn forecast(city: &str) -> Result<i32, WeatherError> {
    tokio::task::yield_now().await;
    match city {
        "Lisbon" => Ok(21),
        "Oslo" => Ok(4),
        other => Err(WeatherError::UnknownCity(other.to_owned())),
    }
}

/// The conversation state the reducer folds messages into.
#[derive(Debug, Default)]
struct Conversation {
    messages: Vec<String>,
}

#[hardened(kind = "reducer")]
impl Conversation {
    /// Appends a message; a reducer is pure and fast, and is measured in microseconds.
    fn reduce(&mut self, message: &str) -> usize {
        self.messages.push(message.to_owned());
        self.messages.len()
    }

    /// Reads the last message; opted out because it is too trivial to observe.
    #[hardened(skip)]
    fn last(&self) -> Option<&str> {
        self.messages.last().map(String::as_str)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    tracing_subscriber::fmt().with_target(false).init();
    if let Err(error) = hardened::config::load() {
        eprintln!("invalid configuration: {error}");
        std::process::exit(2);
    }

    let mut conversation = Conversation::default();
    for city in ["Lisbon", "Oslo", "Atlantis"] {
        conversation.reduce(&format!("weather in {city}?"));
        match forecast(city).await {
            Ok(degrees) => tracing::info!(city, degrees, "forecast"),
            Err(error) => tracing::warn!(%error, "tool failed"),
        }
    }
    tracing::info!(last = ?conversation.last(), "conversation done");

    println!("\n# call sites");
    for site in hardened::sites() {
        println!("{}::{} kind={} at {}:{}", site.module(), site.name(), site.kind(), site.file(), site.line());
    }
    println!("\n# effective configuration of the guards\n{}", hardened::config::effective());
    println!("# metrics");
    for line in hardened::metrics::render().lines().filter(|line| line.starts_with("hardened_calls_total")) {
        println!("{line}");
    }
}
