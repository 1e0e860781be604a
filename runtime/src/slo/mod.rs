//! Service level objectives declared in the attribute, and the Prometheus rules, promtool tests and
//! Grafana dashboard that judge them.
//!
//! A function counts its calls towards an objective with `slo(..)`, giving the numbers, or with
//! `slo = "name"`, sharing the numbers another function or the configuration (`[slo.<name>]`) gives:
//!
//! ```
//! use hardened::hardened;
//!
//! #[derive(Debug)]
//! struct ChatError;
//! impl std::fmt::Display for ChatError {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         f.write_str("no answer")
//!     }
//! }
//!
//! #[hardened(slo(name = "faq", success = 99.9, latency = "2.5s", latency_target = 99))]
//! async fn answer(question: &str) -> Result<String, ChatError> {
//!     Ok(question.to_uppercase())
//! }
//!
//! #[hardened(slo = "faq")]
//! async fn follow_up(question: &str) -> Result<String, ChatError> {
//!     Ok(question.to_lowercase())
//! }
//!
//! let objectives = hardened::slo::objectives()?;
//! let faq = objectives.iter().find(|objective| objective.name == "faq").unwrap();
//! assert_eq!(faq.success, Some(99.9));
//! let functions: Vec<&str> = faq.members.iter().map(|member| member.function).collect();
//! assert_eq!(functions, ["answer", "follow_up"]);
//! let rules = hardened::slo::rules()?;
//! assert!(rules.contains("alert: HardenedSLOFastBurn"));
//! # Ok::<(), hardened::slo::SloErrors>(())
//! ```
//!
//! An objective is not a guard: nothing runs in the call for it. The calls already count in
//! `hardened_calls_total` and `hardened_call_duration_seconds`; `hardened_slo_info{slo,function,module,kind}`
//! (always 1) joins each function's series to its objective, and the rules of [`rules()`] judge them:
//!
//! - success: calls that end in `error`, `panic`, `timeout` or `rejected` are bad; `cancelled` calls do not
//!   count (the caller gave up; the call says nothing of the service);
//! - latency: calls slower than `latency` are bad. The threshold must be a bound of every member's
//!   duration histogram (the default buckets, or `buckets = [..]`): the attribute refuses one that is not,
//!   and so does loading a configuration whose `[slo.<name>]` gives one.
//!
//! The error budget is spent over 30 days; the alerts are the SRE workbook's multiwindow, multi-burn-rate
//! ones (`HardenedSLOFastBurn` pages at 14.4x over 1 h and 5 m or 6x over 6 h and 30 m,
//! `HardenedSLOSlowBurn` opens a ticket at 3x over 1 d and 2 h or 1x over 3 d and 6 h). [`files()`] makes
//! the rule file, its promtool unit tests and the dashboard together; docs/observability.md shows them.

mod burn;
mod dashboard;
mod promtool;
mod rules;
mod sli;

use std::io;
use std::path::{Path, PathBuf};

pub use crate::config::SloSettings;
pub use hardened_core::slo::{LatencyObjective, Member, Objective, SloError, SloErrors};

/// Where [`files()`] puts the rule file, under a deploy directory.
pub const RULES_FILE: &str = "prometheus/slo.yml";
/// Where [`files()`] puts the rule file's unit tests: one file per alert, each evaluating the rules at
/// the interval of its samples.
pub const TESTS_FILES: [&str; 2] = ["prometheus/slo_page_test.yml", "prometheus/slo_ticket_test.yml"];
/// Where [`files()`] puts the dashboard.
pub const DASHBOARD_FILE: &str = "grafana/dashboards/slo.json";

/// The objectives in force: every objective the functions linked into this program count towards, with
/// the numbers of the installed configuration's `[slo.<name>]` sections over the functions' literals.
///
/// # Errors
///
/// Every objective whose numbers conflict, are missing or name a latency that is not a bucket bound.
pub fn objectives() -> Result<Vec<Objective>, SloErrors> {
    check(&crate::config::current())
}

/// The objectives `config`'s `[slo.<name>]` sections make of the functions' declarations.
fn check(config: &crate::config::Config) -> Result<Vec<Objective>, SloErrors> {
    hardened_core::slo::resolve(hardened_core::slo::members(), &config.slo, &config.metrics)
}

/// The Prometheus rule file of [`objectives()`]: the recording rules and the burn-rate alerts.
///
/// # Errors
///
/// As [`objectives()`].
pub fn rules() -> Result<String, SloErrors> {
    Ok(rules_for(&objectives()?))
}

/// The Prometheus rule file of `objectives`.
#[must_use]
pub fn rules_for(objectives: &[Objective]) -> String {
    rules::render(objectives)
}

/// The `promtool test rules` files of `objectives`, testing the rule file named `rules` beside them: the
/// name and text of one file per alert (`slo_page_test.yml`, `slo_ticket_test.yml`).
#[must_use]
pub fn rule_tests_for(objectives: &[Objective], rules: &str) -> Vec<(String, String)> {
    promtool::render_all(objectives, rules)
}

/// The Grafana dashboard of the objectives (the same for any: it lists them by the `slo` label).
#[must_use]
pub fn dashboard() -> String {
    dashboard::render()
}

/// A file [`files()`] makes: its path under a deploy directory, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Such as `prometheus/slo.yml`.
    pub path: &'static str,
    /// The whole file.
    pub text: String,
}

/// The rule file, its unit tests and the dashboard of [`objectives()`], made together so they agree.
///
/// # Errors
///
/// As [`objectives()`].
pub fn files() -> Result<Vec<GeneratedFile>, SloErrors> {
    let objectives = objectives()?;
    let rules_name = Path::new(RULES_FILE).file_name().and_then(|name| name.to_str()).unwrap_or(RULES_FILE);
    let mut files = vec![GeneratedFile { path: RULES_FILE, text: rules_for(&objectives) }];
    for (path, (name, text)) in TESTS_FILES.into_iter().zip(rule_tests_for(&objectives, rules_name)) {
        debug_assert!(path.ends_with(&name), "{path} is {name}");
        files.push(GeneratedFile { path, text });
    }
    files.push(GeneratedFile { path: DASHBOARD_FILE, text: dashboard() });
    Ok(files)
}

/// Writes `files` under `deploy`, returning the paths written.
///
/// # Errors
///
/// The first file that cannot be written.
pub fn write(files: &[GeneratedFile], deploy: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::with_capacity(files.len());
    for file in files {
        let path = deploy.join(file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &file.text)?;
        written.push(path);
    }
    Ok(written)
}

/// The paths under `deploy` whose text is not that of `files` (missing ones included).
#[must_use]
pub fn stale(files: &[GeneratedFile], deploy: &Path) -> Vec<PathBuf> {
    files
        .iter()
        .map(|file| deploy.join(file.path))
        .zip(files)
        .filter(|(path, file)| std::fs::read_to_string(path).ok().as_deref() != Some(file.text.as_str()))
        .map(|(path, _)| path)
        .collect()
}
