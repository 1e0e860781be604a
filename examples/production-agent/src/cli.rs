//! The command line: `serve` (the default), `config check`, `audit verify`, `audit report`,
//! `audit keygen` and `slo rules`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// An AI agent HTTP service: sessions, a model, tools, audit, probes and metrics.
#[derive(Debug, Parser)]
#[command(name = "agent-server", version)]
pub(crate) struct Cli {
    /// A configuration directory holding `hardened.toml` and `agent.toml`, such as
    /// `examples/production-agent/config/production`. Without one, the embedded development defaults.
    #[arg(long, global = true, env = "AGENT_CONFIG_DIR")]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Debug, Default, Subcommand)]
pub(crate) enum Command {
    /// Serves the API and the ops endpoints until SIGTERM or SIGINT (the default).
    #[default]
    Serve,
    /// Configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The service level objectives the functions declare.
    Slo {
        #[command(subcommand)]
        command: SloCommand,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SloCommand {
    /// Prints the Prometheus rules of the objectives: recording rules and burn-rate alerts. With `--out`,
    /// writes them with their promtool tests and the Grafana dashboard under a deploy directory
    /// (`prometheus/slo.yml`, `prometheus/slo_page_test.yml` and `slo_ticket_test.yml`,
    /// `grafana/dashboards/slo.json`); with `--check`, compares those files instead and fails when one
    /// differs.
    Rules {
        /// The deploy directory to write the files under, such as `deploy`.
        #[arg(long, value_name = "DIR", conflicts_with = "check")]
        out: Option<PathBuf>,
        /// The deploy directory whose files to compare.
        #[arg(long, value_name = "DIR")]
        check: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validates the configuration and prints the settings in force, defaults included.
    Check,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Verifies the hash chain of every stream of the audit trail and, with public keys, its signed
    /// checkpoints: that no record was rewritten, cut from the start or cut from the end.
    Verify {
        /// A public key (PEM) checkpoints may be signed with; repeat it for the keys the current one
        /// replaced. Without one, those of `[audit] public_key_files`.
        #[arg(long = "public-key", value_name = "FILE")]
        public_keys: Vec<PathBuf>,
        /// The checkpoint file (default: the log's path with `.checkpoints` appended; with `DATABASE_URL`,
        /// none: the table `audit_checkpoint` is read, and this file too when given).
        #[arg(long, value_name = "FILE")]
        checkpoints: Option<PathBuf>,
    },
    /// A security report: events by type and outcome, failed authentications, bursts, failing tools.
    Report {
        /// How far back, such as `24h`, `30m` or `7d`.
        #[arg(long, default_value = "24h")]
        since: humantime::Duration,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Makes a key pair for signing audit checkpoints: the private key in FILE (0600) and the public key
    /// beside it (`signing.pem` gives `signing.pub.pem`). Neither file may exist.
    Keygen {
        /// Where the private key goes.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}
