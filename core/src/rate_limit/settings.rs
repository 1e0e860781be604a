//! The settings of a `[rate.<name>]` section: each key optional, only those written change a limiter.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use hardened_schema::{self as schema, Spec};

use super::{OnUnavailable, RateConfig, Scope};
use crate::keys::value::{self, Problem, Raw, text_of};
use crate::keys::{Keys, config_keys, int, not_a_config_key, push};
use crate::support::overlay;

/// The settings of a `[rate.<name>]` section. Its `Debug` masks the secrets of `redis_url` as
/// [`redact::urls`](crate::redact::urls) does.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RateSettings {
    /// `per_second`: calls admitted per period, and the period (also set by `per_minute` and `per_hour`:
    /// the three are one setting, and the one set last, such as the environment's over the file's, holds).
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
    /// `max_keys`: the most keys' buckets a keyed limiter holds.
    pub max_keys: Option<u32>,
}

impl fmt::Debug for RateSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Taken apart, so that a new field is a compile error here rather than missing from the output.
        let RateSettings {
            per_second,
            burst,
            wait,
            scope,
            redis_url,
            on_unavailable,
            redis_timeout,
            replicas,
            max_keys,
        } = self;
        f.debug_struct("RateSettings")
            .field("per_second", per_second)
            .field("burst", burst)
            .field("wait", wait)
            .field("scope", scope)
            .field("redis_url", &redis_url.as_deref().map(crate::redact::urls))
            .field("on_unavailable", on_unavailable)
            .field("redis_timeout", redis_timeout)
            .field("replicas", replicas)
            .field("max_keys", max_keys)
            .finish()
    }
}

impl RateSettings {
    /// A section that sets nothing: what the attribute's settings start from (`..RateSettings::UNSET`).
    pub const UNSET: RateSettings = RateSettings {
        per_second: None,
        burst: None,
        wait: None,
        scope: None,
        redis_url: None,
        on_unavailable: None,
        redis_timeout: None,
        replicas: None,
        max_keys: None,
    };

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
            max_keys: Some(config.max_keys),
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
        overlay(&mut config.max_keys, self.max_keys);
    }
}

impl Keys for RateSettings {
    fn keys() -> &'static [&'static str] {
        static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
        config_keys(&schema::rate::KIND, &KEYS)
    }

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem> {
        use schema::rate::Key;
        let Some(found) = Key::from_name(key) else { not_a_config_key(&schema::rate::KIND, key) };
        let spec = found.spec();
        match found {
            Key::PerSecond => self.per_second = Some(value::rate(raw)?),
            Key::PerMinute => self.per_second = Some((value::whole(raw, spec)?, Duration::from_mins(1))),
            Key::PerHour => self.per_second = Some((value::whole(raw, spec)?, Duration::from_hours(1))),
            Key::Burst => self.burst = Some(value::whole(raw, spec)?),
            Key::Wait => self.wait = Some(value::duration(raw)?),
            Key::Scope => self.scope = Some(scope(raw, spec)?),
            Key::RedisUrl => self.redis_url = Some(value::redis_url(raw)?),
            Key::OnUnavailable => self.on_unavailable = Some(on_unavailable(raw, spec)?),
            Key::RedisTimeout => self.redis_timeout = Some(value::duration(raw)?),
            Key::Replicas => self.replicas = Some(value::whole(raw, spec)?),
            Key::MaxKeys => self.max_keys = Some(value::whole(raw, spec)?),
            Key::Name | Key::Key | Key::Cost | Key::Settle => not_a_config_key(&schema::rate::KIND, key),
        }
        Ok(())
    }

    fn entries(&self) -> Vec<(&'static str, toml::Value)> {
        use schema::rate::Key;
        let text = |text: &str| toml::Value::String(text.to_owned());
        let mut entries = Vec::new();
        push(&mut entries, Key::PerSecond.name(), self.per_second, value::rate_value);
        push(&mut entries, Key::Burst.name(), self.burst, int);
        push(&mut entries, Key::Wait.name(), self.wait, value::duration_value);
        push(&mut entries, Key::Scope.name(), self.scope, |scope| text(scope.as_str()));
        push(&mut entries, Key::RedisUrl.name(), self.redis_url.as_deref(), |url| text(&crate::redact::urls(url)));
        push(&mut entries, Key::OnUnavailable.name(), self.on_unavailable, |policy| text(policy.as_str()));
        push(&mut entries, Key::RedisTimeout.name(), self.redis_timeout, value::duration_value);
        push(&mut entries, Key::Replicas.name(), self.replicas, int);
        push(&mut entries, Key::MaxKeys.name(), self.max_keys, int);
        entries
    }
}

/// `"local"` or `"global"`, as `spec` lists them; `"global"` only in a build with the `redis` feature.
fn scope(raw: Raw<'_>, spec: &Spec) -> Result<Scope, Problem> {
    let wrong = || Problem::new("is not a scope", spec.value.to_string());
    match text_of(raw).ok_or_else(wrong)? {
        "local" => Ok(Scope::Local),
        "global" if cfg!(feature = "redis") => Ok(Scope::Global),
        "global" => Err(Problem::new(
            "needs the `redis` feature of hardened, which this build lacks",
            "\"local\", or \"global\" in a build with the `redis` feature",
        )),
        _ => Err(wrong()),
    }
}

/// `"local"` or `"reject"`, as `spec` lists them.
fn on_unavailable(raw: Raw<'_>, spec: &Spec) -> Result<OnUnavailable, Problem> {
    let wrong = || Problem::new("is not a policy", spec.value.to_string());
    match text_of(raw).ok_or_else(wrong)? {
        "local" => Ok(OnUnavailable::Local),
        "reject" => Ok(OnUnavailable::Reject),
        _ => Err(wrong()),
    }
}
