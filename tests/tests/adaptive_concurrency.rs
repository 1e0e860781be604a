//! Adaptive concurrency limits: their invariants against arbitrary round trips, and the evidence that
//! they find a dependency's capacity: a simulated dependency whose latency grows with the calls it serves
//! beyond its capacity, driven by many callers in a discrete-event loop on a manual clock.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use hardened::clock::Clock;
use hardened::concurrency::{Algorithm, ConcurrencyConfig, ConcurrencyLimit, Estimator, Limit};
use proptest::prelude::*;

fn leaked(config: ConcurrencyConfig) -> &'static ConcurrencyLimit {
    Box::leak(Box::new(ConcurrencyLimit::new("adaptive", config)))
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![Just(Algorithm::Aimd), Just(Algorithm::Vegas), Just(Algorithm::Gradient)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the windows say, the estimate stays within `min` and `max`.
    #[test]
    fn an_estimate_stays_within_its_bounds(
        algorithm in algorithm(),
        (min, max) in (1u32..50).prop_flat_map(|min| (Just(min), min..400)),
        start in 0u32..1000,
        windows in prop::collection::vec((0u64..5_000_000_000, any::<bool>(), 0u32..1000), 1..300),
    ) {
        let mut estimator = Estimator::new(algorithm, min, max, start);
        prop_assert!((min..=max).contains(&estimator.limit()));
        for (rtt, dropped, in_flight) in windows {
            let limit = estimator.update(rtt, dropped, in_flight);
            prop_assert!((min..=max).contains(&limit), "{limit} outside {min}..={max}");
        }
    }

    /// Calls taking and giving back turns with arbitrary round trips: the limit stays within its bounds,
    /// and a turn is granted only while fewer calls than the limit hold one.
    #[test]
    fn no_call_is_let_in_over_the_limit(
        algorithm in algorithm(),
        steps in prop::collection::vec((any::<bool>(), 1u64..2_000, any::<bool>()), 1..1500),
    ) {
        let limit = leaked(ConcurrencyConfig::adaptive(algorithm, 2, 40));
        let mut held = Vec::new();
        for (take, rtt_ms, dropped) in steps {
            prop_assert!((2..=40).contains(&limit.limit()));
            if take {
                let before = limit.in_flight();
                let allowed = limit.limit();
                match limit.try_acquire() {
                    Ok(permit) => {
                        prop_assert!(before < allowed, "let in with {before} in flight under a limit of {allowed}");
                        held.push(permit);
                    }
                    Err(_) => prop_assert!(before >= allowed, "refused with {before} in flight under {allowed}"),
                }
            } else if let Some(permit) = held.pop() {
                drop(permit);
                limit.observe(Duration::from_millis(rtt_ms), dropped);
            }
        }
    }
}

/// A dependency that serves `capacity` calls at once in `base`, and more only slower: a call started
/// with `in_flight` calls (itself included) takes `base × max(1, in_flight / capacity)`.
fn latency(base: Duration, in_flight: u32, capacity: u32) -> Duration {
    base.mul_f64((f64::from(in_flight) / f64::from(capacity)).max(1.0))
}

/// What one phase of a run measured, over its second half.
#[derive(Debug)]
struct Phase {
    capacity: u32,
    mean_limit: f64,
    mean_latency: Duration,
}

/// `callers` callers, each calling again as soon as its call returns, through `limit`, to a dependency
/// whose capacity is each of `capacities` in turn for `calls_per_phase` calls. Time is a manual clock,
/// advanced from one completion to the next.
fn simulate(
    limit: &'static ConcurrencyLimit,
    callers: usize,
    capacities: &[u32],
    calls_per_phase: usize,
) -> Vec<Phase> {
    let base = Duration::from_millis(100);
    let (clock, manual) = Clock::manual();
    // Completions to come: (time in nanoseconds, caller), earliest first; the permits they hold.
    let mut completions = BinaryHeap::new();
    let mut permits = HashMap::new();
    let mut waiting: Vec<usize> = (0..callers).collect();
    let mut started_at = vec![0u64; callers];
    let mut phases = Vec::new();
    for &capacity in capacities {
        let (mut limits, mut latencies) = (Vec::new(), Vec::new());
        for call in 0..calls_per_phase {
            // Let in every waiting caller the limit allows.
            while let Some(&caller) = waiting.last() {
                let Ok(permit) = limit.try_acquire() else { break };
                waiting.pop();
                let took = latency(base, limit.in_flight(), capacity);
                started_at[caller] = clock.now_nanos();
                completions.push(Reverse((
                    clock.now_nanos() + u64::try_from(took.as_nanos()).expect("under 584 years"),
                    caller,
                )));
                permits.insert(caller, permit);
            }
            let Reverse((at, caller)) = completions.pop().expect("a call in flight");
            manual.advance(Duration::from_nanos(at - clock.now_nanos()));
            let rtt = Duration::from_nanos(clock.now_nanos() - started_at[caller]);
            drop(permits.remove(&caller));
            limit.observe(rtt, false);
            waiting.insert(0, caller);
            if call >= calls_per_phase / 2 {
                limits.push(f64::from(limit.limit()));
                latencies.push(rtt);
            }
        }
        let mean_limit = limits.iter().sum::<f64>() / limits.len() as f64;
        let mean_latency =
            latencies.iter().sum::<Duration>() / u32::try_from(latencies.len()).expect("fewer than 2^32 calls");
        phases.push(Phase { capacity, mean_limit, mean_latency });
    }
    phases
}

const CALLERS: usize = 400;
const CALLS_PER_PHASE: usize = 40_000;

/// The capacity is 50 calls at once, then halves to 25.
const CAPACITIES: [u32; 2] = [50, 25];

fn run(config: ConcurrencyConfig) -> Vec<Phase> {
    let limit = config.limit;
    let phases = simulate(leaked(config), CALLERS, &CAPACITIES, CALLS_PER_PHASE);
    println!("{limit}: {phases:?}");
    phases
}

/// The limit settles within `within` (a share) of the capacity, and the latency near the unloaded 100 ms.
fn assert_converges(phases: &[Phase], algorithm: &str, within: f64) {
    for phase in phases {
        let capacity = f64::from(phase.capacity);
        assert!(
            (phase.mean_limit - capacity).abs() <= within * capacity,
            "{algorithm}: a mean limit of {:.1} for a capacity of {capacity}",
            phase.mean_limit
        );
        assert!(
            phase.mean_latency <= Duration::from_millis(100).mul_f64(1.0 + within),
            "{algorithm}: a mean latency of {:?} at a capacity of {capacity}",
            phase.mean_latency
        );
    }
}

#[test]
fn a_gradient_limit_finds_the_capacity_and_keeps_the_latency_low() {
    assert_converges(&run(ConcurrencyConfig::adaptive(Algorithm::Gradient, 1, 1000)), "gradient", 0.2);
}

#[test]
fn an_aimd_limit_finds_the_capacity_and_keeps_the_latency_low() {
    assert_converges(&run(ConcurrencyConfig::adaptive(Algorithm::Aimd, 1, 1000)), "aimd", 0.2);
}

/// Vegas keeps from 3 to 6 times log10 of the limit queued at the dependency by design: at a capacity of 25,
/// some 30% over it.
#[test]
fn a_vegas_limit_finds_the_capacity_and_keeps_the_latency_low() {
    assert_converges(&run(ConcurrencyConfig::adaptive(Algorithm::Vegas, 1, 1000)), "vegas", 0.3);
}

#[test]
fn a_fixed_limit_over_the_capacity_lets_the_latency_climb() {
    let phases = run(ConcurrencyConfig::new(200));
    assert!(phases.iter().all(|phase| (phase.mean_limit - 200.0).abs() < f64::EPSILON));
    // 200 calls at once where 50 are served in 100 ms: 400 ms each, then 800 ms.
    assert_eq!(phases[0].mean_latency, Duration::from_millis(400));
    assert_eq!(phases[1].mean_latency, Duration::from_millis(800));
}

#[test]
fn the_limit_and_its_round_trip_are_gauges() {
    let limit = hardened::concurrency_limit("adaptive_gauges");
    limit.retune(&ConcurrencyConfig::adaptive(Algorithm::Aimd, 2, 50));
    assert_eq!(limit.config().limit, Limit::Adaptive(Algorithm::Aimd));
    let start = limit.limit();
    for _ in 0..start.max(8) {
        let permit = limit.try_acquire().expect("a turn");
        drop(permit);
        limit.observe(Duration::from_millis(250), false);
    }
    let exposition = hardened::metrics::render();
    assert!(exposition.contains("hardened_concurrency_rtt_seconds{name=\"adaptive_gauges\"} 0.25"), "{exposition}");
    assert!(exposition.contains(&format!("hardened_concurrency_limit{{name=\"adaptive_gauges\"}} {}", limit.limit())));
    // Fixed again, it keeps the limit given and reports no round trip.
    limit.retune(&ConcurrencyConfig::new(7));
    assert_eq!(limit.limit(), 7);
    limit.observe(Duration::from_secs(9), true);
    assert_eq!(limit.limit(), 7);
    assert!(!hardened::metrics::render().contains("hardened_concurrency_rtt_seconds{name=\"adaptive_gauges\"}"));
}

#[test]
fn the_configuration_reads_an_algorithm_and_its_bounds() {
    use hardened::config::{self, ConcurrencySettings};
    let toml = r#"
        [concurrency.llm]
        limit = "gradient"
        min = 2
        max = 200

        [concurrency.db]
        limit = 8
    "#;
    let config = config::parse(toml, "hardened.toml").expect("a valid file");
    assert_eq!(
        config.concurrency["llm"],
        ConcurrencySettings {
            limit: Some(Limit::Adaptive(Algorithm::Gradient)),
            min: Some(2),
            max: Some(200),
            ..ConcurrencySettings::default()
        }
    );
    assert_eq!(config.concurrency["db"].limit, Some(Limit::Fixed(8)));
    let rendered = config::render(&config);
    assert!(rendered.contains("limit = \"gradient\""), "{rendered}");

    let error = |toml: &str| config::parse(toml, "hardened.toml").expect_err("refused").to_string();
    let unknown = error("[concurrency.llm]\nlimit = \"gradiant\"\n");
    assert!(
        unknown.contains(
            "concurrency.llm.limit = \"gradiant\" is neither a whole number nor a word it takes; allowed: a whole number from 1 to \
             4294967295, or \"aimd\", \"vegas\" or \"gradient\""
        ),
        "{unknown}"
    );
    let zero = error("[concurrency.llm]\nlimit = 0\n");
    assert!(zero.contains("concurrency.llm.limit = 0 is out of range"), "{zero}");
    let crossed = error("[concurrency.llm]\nlimit = \"aimd\"\nmin = 10\nmax = 5\n");
    assert!(crossed.contains("concurrency.llm.max = 5 is below min (10)"), "{crossed}");
    let fixed = error("[concurrency.llm]\nlimit = 8\nmin = 2\n");
    assert!(
        fixed.contains("concurrency.llm.min = 2 is set beside a fixed limit (8), which it does not change"),
        "{fixed}"
    );
}

#[test]
fn the_environment_sets_an_algorithm_and_refuses_an_unknown_one() {
    use hardened::config::{self, Config};
    let vars = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
    };
    let config = config::with_env(
        Config::default(),
        vars(&[("HARDENED_CONCURRENCY__LLM__LIMIT", "gradient"), ("HARDENED_CONCURRENCY__LLM__MAX", "64")]),
    )
    .expect("valid overrides");
    assert_eq!(config.concurrency["llm"].limit, Some(Limit::Adaptive(Algorithm::Gradient)));
    assert_eq!(config.concurrency["llm"].max, Some(64));
    let fixed = config::with_env(Config::default(), vars(&[("HARDENED_CONCURRENCY__DB__LIMIT", "12")]))
        .expect("a number is a fixed limit");
    assert_eq!(fixed.concurrency["db"].limit, Some(Limit::Fixed(12)));
    let unknown = config::with_env(Config::default(), vars(&[("HARDENED_CONCURRENCY__LLM__LIMIT", "fast")]))
        .expect_err("not an algorithm")
        .to_string();
    assert_eq!(
        unknown,
        "HARDENED_CONCURRENCY__LLM__LIMIT=fast (concurrency.llm.limit) is neither a whole number nor a word it \
         takes; allowed: a whole number from 1 to 4294967295, or \"aimd\", \"vegas\" or \"gradient\""
    );
}

#[derive(Debug)]
struct Refused;

impl From<hardened::Rejected> for Refused {
    fn from(_: hardened::Rejected) -> Self {
        Refused
    }
}

#[hardened::hardened(concurrency(name = "adaptive_calls", limit = "aimd", min = 1, max = 50))]
async fn adaptive_call(n: u32) -> Result<u32, Refused> {
    Ok(n)
}

#[tokio::test]
async fn each_call_of_a_guarded_function_feeds_its_round_trip_to_the_limit() {
    for n in 0..64 {
        assert_eq!(adaptive_call(n).await.expect("admitted"), n);
    }
    let limit = hardened::concurrency_limit("adaptive_calls");
    let estimate = limit.estimate().expect("an adaptive limit");
    assert_eq!(estimate.algorithm(), Algorithm::Aimd);
    assert!(estimate.baseline() > 0, "windows of calls were taken in");
    // One call at a time is far under the limit: no reason to raise it. (The system clock's jitter
    // may make a window slower than the fastest by more than the tolerance, which lowers it.)
    assert!(limit.limit() <= 10, "raised to {} by calls one at a time", limit.limit());
}
