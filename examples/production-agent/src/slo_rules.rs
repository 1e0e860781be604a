//! `agent-server slo rules`: the Prometheus rules, promtool tests and Grafana dashboard of the objectives
//! the agent's functions declare (the message route's `messages`, the model call's `model`), made by
//! `hardened::slo` with the configuration in force.

use std::error::Error;
use std::path::Path;

/// Prints the rule file; with `out`, writes every file under it; with `check`, fails when one of the
/// files under it differs from what would be written.
pub(crate) fn run(out: Option<&Path>, check: Option<&Path>) -> Result<(), Box<dyn Error>> {
    let files = hardened::slo::files()?;
    if let Some(deploy) = check {
        let stale = hardened::slo::stale(&files, deploy);
        if stale.is_empty() {
            println!("{} files of the objectives are up to date under {}", files.len(), deploy.display());
            return Ok(());
        }
        let listed: Vec<String> = stale.iter().map(|path| path.display().to_string()).collect();
        return Err(format!(
            "out of date: {} (run `agent-server slo rules --out {}`)",
            listed.join(", "),
            deploy.display()
        )
        .into());
    }
    if let Some(deploy) = out {
        for path in hardened::slo::write(&files, deploy)? {
            println!("wrote {}", path.display());
        }
        return Ok(());
    }
    print!("{}", hardened::slo::rules()?);
    Ok(())
}
