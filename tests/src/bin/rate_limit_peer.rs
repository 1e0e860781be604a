//! One replica of a service sharing a global rate limiter, run as a child process by the Redis tests.
//!
//! It makes the global limiter `LIMITER` (a burst of `BURST` calls per hour, so nothing refills while it
//! runs) at `REDIS_URL`, in the namespace of `OTEL_SERVICE_NAME`, tries `ATTEMPTS` calls from four
//! concurrent tasks, and prints `admitted <count>`. It fails if Redis did not answer every decision. With
//! `TENANT`, each call takes `COST` tokens (1 unless set) from that key's bucket instead.

use std::time::Duration;

use hardened::clock::Clock;
use hardened::rate_limit::{Demand, RateConfig, RateLimiter, Scope};

fn number(variable: &str) -> u32 {
    std::env::var(variable)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{variable} is a whole number"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let name = std::env::var("LIMITER").expect("LIMITER names the limiter");
    let (burst, attempts) = (number("BURST"), number("ATTEMPTS"));
    let tenant: &'static Option<String> = Box::leak(Box::new(std::env::var("TENANT").ok()));
    let cost = std::env::var("COST").map_or(1, |_| number("COST"));
    let mut config = RateConfig::per_second(burst);
    config.period = Duration::from_hours(1);
    config.scope = Scope::Global;
    let limiter: &'static RateLimiter =
        Box::leak(Box::new(RateLimiter::new(Box::leak(name.into_boxed_str()), config, Clock::system())));

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..4 {
        tasks.spawn(async move {
            let mut admitted = 0_u32;
            for _ in (task..attempts).step_by(4) {
                let taken = match tenant {
                    Some(tenant) => limiter.take(Demand::keyed(tenant, cost)).await.map(drop),
                    None => limiter.acquire().await,
                };
                admitted += u32::from(taken.is_ok());
            }
            admitted
        });
    }
    let admitted: u32 = tasks.join_all().await.into_iter().sum();
    assert_eq!(limiter.backend_errors(), 0, "Redis failed to answer some decisions");
    println!("admitted {admitted}");
}
