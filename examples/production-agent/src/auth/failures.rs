//! Failed authentications per client address. An address may fail a few times per interval, answered
//! 401; for the rest of the interval it is answered 429 before any key is compared, so that guessing keys
//! goes no faster than the limit. Its failures of an interval become one audit event with their count,
//! so that a flood of failures cannot flood the audit trail.
//!
//! Memory is bounded: at most `capacity` addresses are followed; past it the one followed longest is let
//! go, its failures reported then. IPv6 addresses are followed by their /64 prefix, the block one
//! subscriber usually holds, so that one client cannot escape the limit by changing addresses in it.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hardened::clock::Clock;

/// How many failures an address may make, over what interval, and how many addresses are followed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FailureLimits {
    pub(crate) per_address: u64,
    pub(crate) interval: Duration,
    pub(crate) capacity: usize,
}

/// The failures of one address in one interval, to record as one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FailureSummary {
    /// The address of the latest failure (of the /64 followed, for IPv6).
    pub(crate) address: IpAddr,
    /// The route of the latest failure.
    pub(crate) route: String,
    /// Why the latest failure failed.
    pub(crate) reason: &'static str,
    /// Every failed request of the interval, those refused included.
    pub(crate) attempts: u64,
    /// The requests refused with 429, their key not even compared.
    pub(crate) refused: u64,
    /// When the interval began: the address's first failure in it.
    pub(crate) since: DateTime<Utc>,
}

/// The addresses that failed recently and their failures.
#[derive(Debug)]
pub(crate) struct FailedAttempts {
    limits: FailureLimits,
    clock: Clock,
    followed: Mutex<Followed>,
    /// How many addresses are followed, read without the lock: with none, a request takes no lock.
    count: AtomicUsize,
}

#[derive(Debug, Default)]
struct Followed {
    by_address: HashMap<IpAddr, Interval>,
    /// Addresses with the time their interval began, oldest first: the order in which intervals end. An
    /// entry whose address has since begun a new interval is stale and skipped.
    by_age: VecDeque<(IpAddr, u64)>,
}

#[derive(Debug)]
struct Interval {
    began: u64,
    summary: FailureSummary,
}

/// What to answer a request before its key is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Compare its key.
    Check,
    /// Refuse it with 429: its address failed too often; retry after this long.
    Refuse(Duration),
}

impl FailedAttempts {
    pub(crate) fn new(limits: FailureLimits, clock: Clock) -> FailedAttempts {
        FailedAttempts { limits, clock, followed: Mutex::new(Followed::default()), count: AtomicUsize::new(0) }
    }

    /// Whether a request from `address` may have its key compared. A refusal counts as a failed attempt;
    /// `ended` receives the summaries of intervals this call closed.
    pub(crate) fn admit(&self, address: IpAddr, route: &str, ended: &mut Vec<FailureSummary>) -> Admission {
        if self.count.load(Ordering::Acquire) == 0 {
            return Admission::Check;
        }
        let now = self.clock.now_nanos();
        let mut followed = self.followed.lock().unwrap_or_else(PoisonError::into_inner);
        let key = followed_key(address);
        if let Some(summary) = followed.end_if_over(key, now, self.limits.interval) {
            ended.push(summary);
        }
        let admission = match followed.by_address.get_mut(&key) {
            Some(interval) if interval.summary.attempts >= self.limits.per_address => {
                interval.summary.attempts += 1;
                interval.summary.refused += 1;
                interval.summary.address = address;
                route.clone_into(&mut interval.summary.route);
                let left =
                    self.limits.interval.saturating_sub(Duration::from_nanos(now.saturating_sub(interval.began)));
                Admission::Refuse(left)
            }
            _ => Admission::Check,
        };
        self.count.store(followed.by_address.len(), Ordering::Release);
        admission
    }

    /// Counts a failed authentication from `address`; `ended` receives the summaries of intervals this
    /// call closed.
    pub(crate) fn failed(&self, address: IpAddr, route: &str, reason: &'static str, ended: &mut Vec<FailureSummary>) {
        let now = self.clock.now_nanos();
        let mut followed = self.followed.lock().unwrap_or_else(PoisonError::into_inner);
        let key = followed_key(address);
        if let Some(summary) = followed.end_if_over(key, now, self.limits.interval) {
            ended.push(summary);
        }
        if let Some(interval) = followed.by_address.get_mut(&key) {
            interval.summary.attempts += 1;
            interval.summary.address = address;
            interval.summary.reason = reason;
            route.clone_into(&mut interval.summary.route);
        } else {
            while followed.by_address.len() >= self.limits.capacity {
                match followed.pop_oldest() {
                    Some(summary) => ended.push(summary),
                    None => break,
                }
            }
            let summary =
                FailureSummary { address, route: route.to_owned(), reason, attempts: 1, refused: 0, since: Utc::now() };
            followed.by_address.insert(key, Interval { began: now, summary });
            followed.by_age.push_back((key, now));
        }
        self.count.store(followed.by_address.len(), Ordering::Release);
    }

    /// The summaries of the intervals that have ended, forgetting their addresses.
    pub(crate) fn ended(&self) -> Vec<FailureSummary> {
        self.take(|began, now, interval| now.saturating_sub(began) >= interval)
    }

    /// Every summary, ended or not: what is left at shutdown.
    pub(crate) fn drain(&self) -> Vec<FailureSummary> {
        self.take(|_, _, _| true)
    }

    fn take(&self, over: impl Fn(u64, u64, u64) -> bool) -> Vec<FailureSummary> {
        let mut ended = Vec::new();
        if self.count.load(Ordering::Acquire) == 0 {
            return ended;
        }
        let now = self.clock.now_nanos();
        let interval = duration_nanos(self.limits.interval);
        let mut followed = self.followed.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(&(key, began)) = followed.by_age.front() {
            let live = followed.by_address.get(&key).is_some_and(|followed| followed.began == began);
            if live && !over(began, now, interval) {
                break;
            }
            followed.by_age.pop_front();
            if live && let Some(ended_interval) = followed.by_address.remove(&key) {
                ended.push(ended_interval.summary);
            }
        }
        self.count.store(followed.by_address.len(), Ordering::Release);
        ended
    }
}

impl Followed {
    /// Ends the interval of `key` if it is over, and returns its summary.
    fn end_if_over(&mut self, key: IpAddr, now: u64, interval: Duration) -> Option<FailureSummary> {
        let began = self.by_address.get(&key)?.began;
        if now.saturating_sub(began) < duration_nanos(interval) {
            return None;
        }
        // Its place in `by_age` goes stale and is skipped when reached.
        self.by_address.remove(&key).map(|ended| ended.summary)
    }

    /// Lets go of the address followed longest; its summary, unless its entry was stale.
    fn pop_oldest(&mut self) -> Option<FailureSummary> {
        while let Some((key, began)) = self.by_age.pop_front() {
            if self.by_address.get(&key).is_some_and(|interval| interval.began == began) {
                return self.by_address.remove(&key).map(|ended| ended.summary);
            }
        }
        None
    }
}

/// The address as followed: an IPv4 address itself, an IPv6 address by its /64 prefix.
fn followed_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

fn duration_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use hardened::clock::ManualClock;

    use super::*;

    const MINUTE: Duration = Duration::from_mins(1);

    fn limiter(per_address: u64, capacity: usize) -> (FailedAttempts, ManualClock) {
        let (clock, manual) = Clock::manual();
        (FailedAttempts::new(FailureLimits { per_address, interval: MINUTE, capacity }, clock), manual)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn an_address_is_refused_after_its_failures_until_the_interval_ends_then_reported_once() {
        let (failures, clock) = limiter(3, 16);
        let mut ended = Vec::new();
        for _ in 0..3 {
            assert_eq!(failures.admit(ip("192.0.2.1"), "/r", &mut ended), Admission::Check);
            failures.failed(ip("192.0.2.1"), "/r", "unknown API key", &mut ended);
        }
        clock.advance(Duration::from_secs(20));
        assert_eq!(failures.admit(ip("192.0.2.1"), "/r", &mut ended), Admission::Refuse(Duration::from_secs(40)));
        assert_eq!(failures.admit(ip("192.0.2.2"), "/r", &mut ended), Admission::Check, "another address is not held");
        assert!(failures.ended().is_empty(), "the interval is not over");

        clock.advance(Duration::from_secs(40));
        let summaries = failures.ended();
        assert_eq!(summaries.len(), 1);
        assert_eq!((summaries[0].attempts, summaries[0].refused), (4, 1));
        assert_eq!(summaries[0].reason, "unknown API key");
        assert!(ended.is_empty());
        assert_eq!(failures.admit(ip("192.0.2.1"), "/r", &mut ended), Admission::Check, "a new interval");
        assert!(failures.ended().is_empty(), "an address is reported once per interval");
    }

    #[test]
    fn a_failure_after_the_interval_reports_the_last_one_and_begins_another() {
        let (failures, clock) = limiter(3, 16);
        let mut ended = Vec::new();
        failures.failed(ip("192.0.2.1"), "/r", "no API key", &mut ended);
        clock.advance(MINUTE);
        failures.failed(ip("192.0.2.1"), "/r", "no API key", &mut ended);
        assert_eq!(ended.len(), 1, "the first interval, ended by the failure that follows it");
        assert_eq!(ended[0].attempts, 1);
        assert!(failures.ended().is_empty(), "its stale place is skipped");
        assert_eq!(failures.drain().len(), 1, "the interval in course, at shutdown");
        assert!(failures.drain().is_empty());
    }

    #[test]
    fn memory_is_bounded_by_letting_go_of_the_oldest_address_and_reporting_it() {
        let (failures, clock) = limiter(3, 2);
        let mut ended = Vec::new();
        failures.failed(ip("192.0.2.1"), "/r", "no API key", &mut ended);
        clock.advance(Duration::from_secs(1));
        failures.failed(ip("192.0.2.2"), "/r", "no API key", &mut ended);
        failures.failed(ip("192.0.2.3"), "/r", "no API key", &mut ended);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].address, ip("192.0.2.1"), "the oldest goes, reported");
        assert_eq!(failures.followed.lock().expect("not poisoned").by_address.len(), 2);
    }

    #[test]
    fn ipv6_addresses_are_followed_by_their_64_prefix() {
        let (failures, _clock) = limiter(2, 16);
        let mut ended = Vec::new();
        failures.failed(ip("2001:db8:1:2::1"), "/r", "no API key", &mut ended);
        failures.failed(ip("2001:db8:1:2::ffff"), "/r", "no API key", &mut ended);
        assert!(matches!(failures.admit(ip("2001:db8:1:2:3::9"), "/r", &mut ended), Admission::Refuse(_)));
        assert_eq!(failures.admit(ip("2001:db8:1:3::1"), "/r", &mut ended), Admission::Check);
        assert_eq!(followed_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
