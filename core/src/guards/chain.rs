//! The guard chain without a call site: guards chosen by name at run time (a tower layer's), around any
//! future, with the same order and rules as a `#[hardened]` function's, through the same pieces
//! (`guarded::attempt_through`, `retrying::retry_delay`).
//!
//! A call through it has no call site, so no `hardened_calls_total` or span of its own: the guards count
//! it as they count every call (breaker verdicts in the breaker's shared cells, refusals by each guard,
//! retries in the policy's counts); a timeout is the breaker's failure, and has no counter of its own
//! (`hardened_rejections_total{guard="timeout"}` counts those of functions).

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::guarded::attempt_through;
use super::kinds::guard_kinds;
use super::names::{DeclaredNames, record_chain_names};
use super::registry;
use super::retrying::retry_delay;
use super::site::Resolved;
use super::tokens::{self, KeepCost};
use crate::events;
use crate::outcome::Outcome;
use crate::rate_limit::{Demand, LimitKey};
use crate::rejected::Rejected;
use crate::support::key_hash::key_hash;

macro_rules! guard_names {
    ($($field:ident: $guard:ty, $settings:ty, $on_site:ident, $one:ident, $all:ident;)*) => {
        /// The name of the guard of each kind a chain goes through, if any.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
        pub struct GuardNames {
            $(
                #[doc = concat!("The name of the `", stringify!($field), "` guard.")]
                pub $field: Option<String>,
            )*
        }

        impl GuardNames {
            /// `name` for each kind that has a section `[kind.name]` in the configuration in force or a
            /// function declaring a guard of that kind called `name`.
            #[must_use]
            pub fn configured_or_declared(name: &str) -> GuardNames {
                let installed = super::sections::installed();
                let declared = registry::declared_names();
                GuardNames {
                    $(
                        $field: (installed.$field.contains_key(name) || declared.$field.iter().any(|known| known == name))
                            .then(|| name.to_owned()),
                    )*
                }
            }

            /// Whether no kind has a name.
            #[must_use]
            pub fn is_empty(&self) -> bool {
                true $( && self.$field.is_none() )*
            }

            /// The guards, made from the configuration in force where none exists yet.
            fn resolve(&self) -> Resolved {
                Resolved::of($( self.$field.as_deref().map(registry::$one), )*)
            }

            /// Adds these names to `declared`.
            fn declare(&self, declared: &mut DeclaredNames) {
                $(
                    if let Some(name) = &self.$field {
                        declared.$field.push(name.clone());
                    }
                )*
            }
        }

        impl GuardChain {
            $(
                #[doc = concat!("The chain's `", stringify!($field), "` guard.")]
                #[must_use]
                pub fn $on_site(&self) -> Option<&'static $guard> {
                    self.resolved.$field
                }
            )*
        }
    };
}

guard_kinds!(guard_names);

/// The chains made so far, each resolved once however many layers name the same guards: for unkeyed
/// calls, and for keyed ones.
static CHAINS: Mutex<Vec<(GuardNames, &'static Resolved, &'static Resolved)>> = Mutex::new(Vec::new());

/// Guards chosen by name, resolved once, and a timeout: what a call goes through without a call site.
#[derive(Debug, Clone, Copy)]
pub struct GuardChain {
    resolved: &'static Resolved,
    /// The same guards for a keyed call: the rate limiter and the bulkhead taken by key, before the rest.
    per_key: &'static Resolved,
    timeout: Option<Duration>,
}

impl GuardChain {
    /// The guards `names` names, made from the configuration in force where none exists yet (and retuned
    /// with it from then on), and `timeout` around each attempt.
    #[must_use]
    pub fn new(names: &GuardNames, timeout: Option<Duration>) -> GuardChain {
        let mut chains = CHAINS.lock().unwrap_or_else(PoisonError::into_inner);
        let known =
            chains.iter().find_map(|(known, resolved, per_key)| (known == names).then_some((*resolved, *per_key)));
        let (resolved, per_key) = known.unwrap_or_else(|| {
            let resolved = names.resolve();
            let (resolved, per_key): (&'static Resolved, &'static Resolved) =
                (Box::leak(Box::new(resolved)), Box::leak(Box::new(resolved.per_key(true, true))));
            chains.push((names.clone(), resolved, per_key));
            // Counted as declared, for the configuration's unused-name check.
            record_chain_names(|declared| names.declare(declared));
            (resolved, per_key)
        });
        GuardChain { resolved, per_key, timeout }
    }

    /// The timeout around each attempt.
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Runs `attempt`'s futures through the chain: retry (when the chain has a policy), breaker, rate
    /// limiter, timeout, concurrency limit, bulkhead. `is_failure` is the breaker's verdict on a result,
    /// and says which results are retried. A refusal or a timeout is `Err(Rejected)`; a refusal gives the
    /// breaker's permit back uncounted and is never retried, a timeout counts as a failure and is.
    ///
    /// `attempt` is called once per attempt: once when the chain has no retry policy.
    pub async fn call<T, E, F, Fut>(
        self,
        attempt: F,
        is_failure: impl Fn(&Result<T, E>) -> bool,
    ) -> Result<Result<T, E>, Rejected>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        attempts(self.resolved, self.timeout, attempt, is_failure).await
    }

    /// [`GuardChain::call`] for a call of `key` (a tenant, user or API key): the rate limiter takes its
    /// token from the key's bucket and the bulkhead bounds the key's calls in flight, each once per call,
    /// before the breaker and the attempts, as `rate(key = ..)` and `bulkhead(key = ..)` do. A call
    /// refused inside gives its token back; one that timed out keeps it.
    pub async fn call_keyed<K, T, E, F, Fut>(
        self,
        key: &K,
        attempt: F,
        is_failure: impl Fn(&Result<T, E>) -> bool,
    ) -> Result<Result<T, E>, Rejected>
    where
        K: LimitKey,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let per_key = self.per_key;
        let ticket = match per_key.tokens {
            Some(limiter) => Some((limiter, limiter.take(Demand::keyed(key, 1_u32)).await.map_err(refused)?)),
            None => None,
        };
        let permit = match per_key.keyed.map(|slots| slots.acquire_keyed(key_hash(key))) {
            Some(entering) => match entering.await {
                Ok(permit) => Some(permit),
                Err(rejected) => {
                    if let Some((limiter, ticket)) = ticket {
                        limiter.settle(ticket, 0).await;
                    }
                    return Err(refused(rejected));
                }
            },
            None => None,
        };
        let value = attempts(per_key, self.timeout, attempt, is_failure).await;
        drop(permit);
        if let Some((limiter, ticket)) = ticket {
            // The rule of the attribute's calls: what a guard imposed on the call, and no `settle`.
            let imposed = match &value {
                Ok(_) => None,
                Err(Rejected::TimedOut { .. }) => Some(Outcome::Timeout),
                Err(_) => Some(Outcome::Rejected),
            };
            let used = tokens::used(&ticket, &value, imposed, &KeepCost);
            limiter.settle(ticket, used).await;
        }
        value
    }
}

/// A refusal before the attempts, told to the guard events.
#[cold]
fn refused(rejected: Rejected) -> Rejected {
    events::refused(None, &rejected);
    rejected
}

/// The attempts of a call through `resolved`, each within `timeout`, retried as its policy allows.
async fn attempts<T, E, F, Fut>(
    resolved: &'static Resolved,
    timeout: Option<Duration>,
    mut attempt: F,
    is_failure: impl Fn(&Result<T, E>) -> bool,
) -> Result<Result<T, E>, Rejected>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let retry = resolved.retry;
    if let Some(policy) = retry {
        policy.deposit();
    }
    let judged = |value: &Result<Result<T, E>, Rejected>| value.as_ref().is_ok_and(&is_failure);
    let mut retries = 0;
    loop {
        let (value, imposed) = attempt_through(resolved, timeout, None, || async { Ok(attempt().await) }, judged).await;
        let Some(policy) = retry else { return value };
        let Some(delay) = retry_delay(policy, retries, imposed, || judged(&value)) else { return value };
        tokio::time::sleep(delay).await;
        retries += 1;
    }
}
