//! Keyed bulkheads: at most `max` calls in flight for each key (a tenant), whatever the others do; a
//! key's count lives only while it has calls in flight. Through the API and the attribute, sync and async.

use std::sync::Arc;
use std::time::Duration;

use hardened::bulkhead::{Bulkhead, BulkheadConfig};
use hardened::{Rejected, hardened};
use hardened_tests::{calls, sample};
use tokio::sync::{Barrier, Notify};

#[test]
fn each_key_has_max_calls_in_flight() {
    let bulkhead = Bulkhead::new("keyed_api", BulkheadConfig::new(2));
    let first = bulkhead.try_acquire_keyed(&"acme").expect("a free place");
    let second = bulkhead.try_acquire_keyed(&"acme").expect("a second place");
    assert_eq!(bulkhead.try_acquire_keyed(&"acme").map(drop), Err(Rejected::BulkheadFull { name: "keyed_api" }));
    let other = bulkhead.try_acquire_keyed(&"globex").expect("another tenant is not held back");
    assert_eq!(bulkhead.keys_in_flight(), 2);
    assert_eq!(bulkhead.available(), 2, "keyed permits are apart from the bulkhead's own");
    drop(first);
    let third = bulkhead.try_acquire_keyed(&"acme").expect("a place came back");
    drop((second, third, other));
    assert_eq!(bulkhead.keys_in_flight(), 0, "a key without calls in flight costs nothing");
    assert_eq!(bulkhead.refused(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_keyed_call_waits_for_its_keys_place_within_the_wait() {
    let mut config = BulkheadConfig::new(1);
    config.wait = Some(Duration::from_secs(2));
    let bulkhead: &'static Bulkhead = Box::leak(Box::new(Bulkhead::new("keyed_wait", config)));
    let held = bulkhead.try_acquire_keyed(&7_u64).expect("a free place");
    let waiter = tokio::spawn(async move { bulkhead.acquire_keyed(&7_u64).await.map(drop) });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiter.is_finished(), "key 7's place is held");
    drop(held);
    assert_eq!(waiter.await.expect("the task ends"), Ok(()), "the place freed within the wait");

    let _held = bulkhead.try_acquire_keyed(&7_u64).expect("free again");
    let started = tokio::time::Instant::now();
    assert_eq!(bulkhead.acquire_keyed(&7_u64).await.map(drop), Err(Rejected::BulkheadFull { name: "keyed_wait" }));
    assert_eq!(started.elapsed(), Duration::from_secs(2), "refused at the end of its wait");
}

#[derive(Debug, PartialEq, thiserror::Error)]
enum AppError {
    #[error("refused: {0}")]
    Refused(#[from] Rejected),
}

#[hardened(bulkhead(name = "per_tenant_sync", max = 1, key = tenant))]
fn nested(tenant: &str, depth: u32) -> Result<Vec<bool>, AppError> {
    // A call inside a call of the same tenant finds its one place taken; another tenant's does not.
    if depth == 0 {
        return Ok(Vec::new());
    }
    Ok(vec![nested(tenant, depth - 1).is_ok(), nested("other", depth - 1).is_ok()])
}

#[test]
fn a_keyed_sync_function_holds_its_keys_place_for_the_call() {
    assert_eq!(nested("acme", 1), Ok(vec![false, true]));
    assert_eq!(calls("nested", "rejected"), 1);
}

#[hardened(bulkhead(name = "per_tenant", max = 2, key = tenant), timeout = "30s")]
async fn hold(tenant: String, entered: Arc<Barrier>, release: Arc<Notify>) -> Result<(), AppError> {
    entered.wait().await;
    release.notified().await;
    drop(tenant);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_calls_in_flight_is_refused_and_others_are_not() {
    let (entered, release) = (Arc::new(Barrier::new(3)), Arc::new(Notify::new()));
    let holders: Vec<_> =
        (0..2).map(|_| tokio::spawn(hold("acme".to_owned(), Arc::clone(&entered), Arc::clone(&release)))).collect();
    entered.wait().await;
    let refused = hold("acme".to_owned(), Arc::new(Barrier::new(1)), Arc::new(Notify::new())).await;
    assert_eq!(refused, Err(AppError::Refused(Rejected::BulkheadFull { name: "per_tenant" })));
    assert_eq!(sample("hardened_bulkhead_keys", &[("name", "per_tenant")]), Some(1));
    let globex_release = Arc::new(Notify::new());
    globex_release.notify_one();
    let globex = hold("globex".to_owned(), Arc::new(Barrier::new(1)), globex_release).await;
    assert_eq!(globex, Ok(()), "another tenant has its own places");
    release.notify_waiters();
    for holder in holders {
        assert_eq!(holder.await.expect("the holder ends"), Ok(()));
    }
    assert_eq!(hardened::bulkhead("per_tenant").keys_in_flight(), 0);
}

#[hardened(rate(name = "keyed_refund", per_hour = 10, cost = 4_u32), bulkhead(name = "refund_places", max = 1, key = tenant))]
fn budgeted(tenant: &str, depth: u32) -> Result<u32, AppError> {
    if depth == 0 { Ok(0) } else { budgeted(tenant, depth - 1) }
}

#[test]
fn a_call_refused_by_its_keyed_bulkhead_gets_its_tokens_back() {
    // The outer call takes 4 tokens and the place; the inner one takes 4 more, is refused its place,
    // and gives them back.
    assert_eq!(budgeted("acme", 1), Err(AppError::Refused(Rejected::BulkheadFull { name: "refund_places" })));
    assert_eq!(hardened::rate_limiter("keyed_refund").available(), 6);
}

#[derive(Debug, Clone)]
enum Step {
    /// Take a place for this key.
    Enter(u8),
    /// Give back the permit held at this position (modulo those held), if any.
    Leave(usize),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![(0..4_u8).prop_map(Step::Enter), any::<usize>().prop_map(Step::Leave)]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..proptest::prelude::ProptestConfig::default() })]

    /// Against a model of counts per key: a key is let in exactly while it has fewer than `max` calls in
    /// flight, whatever the others hold, and a key without calls in flight is not kept.
    #[test]
    fn keyed_places_follow_the_model(max in 1_u32..4, steps in proptest::collection::vec(step(), 1..120)) {
        let bulkhead = Bulkhead::new("keyed_model", BulkheadConfig::new(max));
        let mut held = Vec::new();
        let mut model = std::collections::BTreeMap::<u8, u32>::new();
        for step in steps {
            match step {
                Step::Enter(key) => {
                    let entered = bulkhead.try_acquire_keyed(&key);
                    let in_flight = model.entry(key).or_default();
                    proptest::prop_assert_eq!(entered.is_ok(), *in_flight < max, "key {} with {} in flight", key, in_flight);
                    if let Ok(permit) = entered {
                        *in_flight += 1;
                        held.push((key, permit));
                    }
                }
                Step::Leave(at) if !held.is_empty() => {
                    let (key, permit) = held.swap_remove(at % held.len());
                    drop(permit);
                    *model.get_mut(&key).expect("a key with a call in flight") -= 1;
                }
                Step::Leave(_) => {}
            }
            model.retain(|_, in_flight| *in_flight > 0);
            proptest::prop_assert_eq!(bulkhead.keys_in_flight(), model.len());
        }
    }
}
