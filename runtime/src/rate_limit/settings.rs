//! The settings of a `[rate.<name>]` section: each key optional, only those written change a limiter.

use std::time::Duration;

use super::{OnUnavailable, RateConfig, Scope};
use crate::support::overlay;

/// The settings of a `[rate.<name>]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateSettings {
    /// `per_second`: calls admitted per period, and the period.
    pub per_second: Option<(u32, Duration)>,
    /// `burst`: calls admitted at once after a quiet spell.
    pub burst: Option<u32>,
    /// `wait`: how long a call may wait for a token.
    pub wait: Option<Duration>,
    /// `scope`: `"local"` (each replica its own bucket) or `"global"` (one bucket in Redis).
    pub scope: Option<Scope>,
    /// `redis_url`: the Redis server of a global limiter, instead of `REDIS_URL`.
    pub redis_url: Option<String>,
    /// `on_unavailable`: `"local"` (this replica's share decides) or `"reject"`, while Redis is unavailable.
    pub on_unavailable: Option<OnUnavailable>,
    /// `redis_timeout`: how long one decision waits for Redis.
    pub redis_timeout: Option<Duration>,
    /// `replicas`: how many replicas share a global limiter's quota.
    pub replicas: Option<u32>,
}

impl RateSettings {
    /// Every setting of `config`, as a section that sets them all; the settings of a global limiter's
    /// Redis only for a global one, with the secrets of its URL [masked](crate::redact::urls).
    #[must_use]
    pub fn of(config: &RateConfig) -> RateSettings {
        let global = config.scope == Scope::Global;
        RateSettings {
            per_second: Some((config.calls, config.period)),
            burst: Some(config.burst),
            wait: config.wait,
            scope: Some(config.scope),
            redis_url: config.redis_url.as_deref().filter(|_| global).map(|url| crate::redact::urls(url).into_owned()),
            on_unavailable: global.then_some(config.on_unavailable),
            redis_timeout: global.then_some(config.redis_timeout),
            replicas: global.then_some(config.replicas),
        }
    }

    /// Sets in `config` what these settings say, and nothing else. Like the macro's `rate = ..`, a
    /// `per_second` without a `burst` also sets the burst to the number of calls.
    pub fn apply_to(&self, config: &mut RateConfig) {
        if let Some((calls, period)) = self.per_second {
            config.calls = calls;
            config.period = period;
            config.burst = calls.max(1);
        }
        overlay(&mut config.burst, self.burst);
        if self.wait.is_some() {
            config.wait = self.wait;
        }
        overlay(&mut config.scope, self.scope);
        if self.redis_url.is_some() {
            config.redis_url.clone_from(&self.redis_url);
        }
        overlay(&mut config.on_unavailable, self.on_unavailable);
        overlay(&mut config.redis_timeout, self.redis_timeout);
        overlay(&mut config.replicas, self.replicas);
    }
}
