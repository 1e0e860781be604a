//! An objective as it is in force: the numbers layered from the functions' literals and the
//! configuration, the functions whose calls count towards it, and every way that can be wrong.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::{SloMember, SloSettings};
use crate::guards::histograms::{MetricsSections, planned};

/// A function whose calls count towards an objective: the labels of its call series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    /// The `function` label.
    pub function: &'static str,
    /// The `module` label.
    pub module: &'static str,
    /// The `kind` label.
    pub kind: &'static str,
}

/// The latency objective: `target` percent of calls finish within `threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyObjective {
    /// The threshold, a bound of every member's duration histogram.
    pub threshold: Duration,
    /// The percentage of calls that must finish within it.
    pub target: f64,
}

/// A service level objective in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// Its name, the `slo` label.
    pub name: String,
    /// The percentage of calls that must succeed, when the objective has a success SLI.
    pub success: Option<f64>,
    /// The latency objective, when it has one.
    pub latency: Option<LatencyObjective>,
    /// The functions whose calls count towards it, sorted.
    pub members: Vec<Member>,
}

/// Why the objectives cannot be judged: each names the objective, the key and what would be right.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SloError {
    /// Two functions write different numbers for one objective, and the configuration does not settle it.
    #[error(
        "objective `{slo}`: `{key}` is {first} in `{first_site}` and {second} in `{second_site}`; write the \
         numbers once (in one function's `slo(..)`, or in [slo.{slo}])"
    )]
    Conflict {
        /// The objective.
        slo: String,
        /// The key written twice.
        key: &'static str,
        /// One value, and the function that writes it.
        first: String,
        /// Its function, as `module::function`.
        first_site: String,
        /// The other value.
        second: String,
        /// Its function.
        second_site: String,
    },
    /// An objective with no numbers at all.
    #[error(
        "objective `{slo}` has no numbers: give `success`, or `latency` with `latency_target`, in a function's \
         `slo(..)` or in [slo.{slo}]"
    )]
    Empty {
        /// The objective.
        slo: String,
    },
    /// `latency` without `latency_target`, or the other way round.
    #[error("objective `{slo}`: `{given}` needs `{missing}` too (in a function's `slo(..)` or in [slo.{slo}])")]
    Half {
        /// The objective.
        slo: String,
        /// The key given.
        given: &'static str,
        /// The key missing.
        missing: &'static str,
    },
    /// The latency threshold is not a bound of a member's histogram, so no series counts the calls within it.
    #[error(
        "objective `{slo}`: latency {latency} is not a bucket bound of `{site}`'s duration histogram; \
         allowed: one of {bounds}, or add it to the function's buckets (`buckets = [..]` in its attribute, or \
         `buckets` in [metrics.<name>])"
    )]
    NotABucket {
        /// The objective.
        slo: String,
        /// The threshold, as written in configuration.
        latency: String,
        /// The function, as `module::function`.
        site: String,
        /// Its bounds, as durations.
        bounds: String,
    },
    /// A member of a latency objective has no duration histogram, so no series counts its calls by
    /// duration.
    #[error(
        "objective `{slo}`: `{site}` has no duration histogram (`histogram = false` in its attribute or in \
         [metrics.<name>]), so its latency cannot be judged; allowed: a histogram for every function of a \
         latency objective, or an objective of `success` only"
    )]
    NoHistogram {
        /// The objective.
        slo: String,
        /// The function, as `module::function`.
        site: String,
    },
}

/// Several errors, one per line.
#[derive(Debug, Clone, PartialEq)]
pub struct SloErrors(pub Vec<SloError>);

impl fmt::Display for SloErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SloErrors {}

fn site_of(member: &SloMember) -> String {
    format!("{}::{}", member.site.module(), member.site.name())
}

fn written(duration: Duration) -> String {
    format!("\"{}\"", humantime::format_duration(duration))
}

/// The numbers of one objective from its members' literals: the first member writing a key gives it;
/// another writing a different value is a conflict, unless `configured` sets that key.
fn declared(name: &str, members: &[&SloMember], configured: &SloSettings, errors: &mut Vec<SloError>) -> SloSettings {
    let mut layered = SloSettings::UNSET;
    let mut givers: [Option<&SloMember>; 3] = [None; 3];
    for member in members {
        let settings = &member.settings;
        let keys: [(&'static str, Option<String>, bool); 3] = [
            ("success", settings.success.map(|value| value.to_string()), configured.success.is_some()),
            ("latency", settings.latency.map(written), configured.latency.is_some()),
            (
                "latency_target",
                settings.latency_target.map(|value| value.to_string()),
                configured.latency_target.is_some(),
            ),
        ];
        for (index, (key, value, settled)) in keys.into_iter().enumerate() {
            let Some(value) = value else { continue };
            match givers[index] {
                None => givers[index] = Some(member),
                Some(first) => {
                    let first_value = match index {
                        0 => first.settings.success.map(|value| value.to_string()),
                        1 => first.settings.latency.map(written),
                        _ => first.settings.latency_target.map(|value| value.to_string()),
                    };
                    if !settled && first_value.as_deref() != Some(value.as_str()) {
                        errors.push(SloError::Conflict {
                            slo: name.to_owned(),
                            key,
                            first: first_value.unwrap_or_default(),
                            first_site: site_of(first),
                            second: value,
                            second_site: site_of(member),
                        });
                    }
                }
            }
        }
        layered = SloSettings {
            success: layered.success.or(settings.success),
            latency: layered.latency.or(settings.latency),
            latency_target: layered.latency_target.or(settings.latency_target),
        };
    }
    layered
}

/// The objectives `members` count towards, with the numbers of `sections` (`[slo.<name>]`) over the
/// functions' literals, sorted by name; or every error found. A latency threshold is checked against the
/// histograms the members have under `histograms` (`[metrics.<name>]`).
pub fn resolve(
    members: &[SloMember],
    sections: &BTreeMap<String, SloSettings>,
    histograms: &MetricsSections,
) -> Result<Vec<Objective>, SloErrors> {
    let mut by_name: BTreeMap<&str, Vec<&SloMember>> = BTreeMap::new();
    for member in members {
        by_name.entry(member.name).or_default().push(member);
    }
    let mut errors = Vec::new();
    let mut objectives = Vec::new();
    for (name, mut of_objective) in by_name {
        // The link order is not the source order: sort, so that messages and files do not depend on it.
        of_objective.sort_by_key(|member| (member.site.module(), member.site.name()));
        let configured = sections.get(name).copied().unwrap_or_default();
        let settings = declared(name, &of_objective, &configured, &mut errors).layered(&configured);
        let latency = match (settings.latency, settings.latency_target) {
            (Some(threshold), Some(target)) => Some(LatencyObjective { threshold, target }),
            (Some(_), None) => {
                errors.push(SloError::Half { slo: name.to_owned(), given: "latency", missing: "latency_target" });
                None
            }
            (None, Some(_)) => {
                errors.push(SloError::Half { slo: name.to_owned(), given: "latency_target", missing: "latency" });
                None
            }
            (None, None) => None,
        };
        if settings.success.is_none() && settings.latency.is_none() && settings.latency_target.is_none() {
            errors.push(SloError::Empty { slo: name.to_owned() });
        }
        if let Some(latency) = latency {
            let threshold = u64::try_from(latency.threshold.as_nanos()).unwrap_or(u64::MAX);
            for member in &of_objective {
                match planned(member.site, histograms) {
                    None => errors.push(SloError::NoHistogram { slo: name.to_owned(), site: site_of(member) }),
                    Some(bounds) if !bounds.contains(&threshold) => {
                        let bounds: Vec<String> =
                            bounds.iter().map(|bound| written(Duration::from_nanos(*bound))).collect();
                        errors.push(SloError::NotABucket {
                            slo: name.to_owned(),
                            latency: written(latency.threshold),
                            site: site_of(member),
                            bounds: bounds.join(", "),
                        });
                    }
                    Some(_) => {}
                }
            }
        }
        let mut joined: Vec<Member> = of_objective
            .iter()
            .filter(|member| member.site.metrics_enabled())
            .map(|member| Member {
                function: member.site.name(),
                module: member.site.module(),
                kind: member.site.kind(),
            })
            .collect();
        joined.dedup();
        objectives.push(Objective { name: name.to_owned(), success: settings.success, latency, members: joined });
    }
    if errors.is_empty() { Ok(objectives) } else { Err(SloErrors(errors)) }
}
