//! `agent-server` as a library: what the binary runs ([`run`]), and the pieces [`serve`](serve::serve)
//! assembles the service from ([`serve`]), which the benchmarks drive in-process.
//!
//! See this example's README for the service itself.

mod agent;
mod api;
mod audit_commands;
mod auth;
mod calculator;
mod cli;
mod conversation;
mod model;
pub mod serve;
mod sessions;
mod settings;
mod slo_rules;
mod tool_names;
mod tools;
mod trail;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{AuditCommand, Cli, Command, ConfigCommand, SloCommand};
pub use crate::settings::{Settings, SettingsError};

/// The command line of `agent-server`: parses the arguments, reads the configuration, and runs the command
/// (by default, serves until a signal).
#[must_use]
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("agent-server: no tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let command = cli.command.unwrap_or_default();
    // A key pair is made before any configuration exists (it is what the configuration will name).
    if let Command::Audit { command: AuditCommand::Keygen { out } } = &command {
        return exit_code(audit_commands::keygen(out));
    }
    let settings = match settings::Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("agent-server: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(async move {
        match command {
            Command::Serve => serve::serve(settings).await,
            Command::Config { command: ConfigCommand::Check } => {
                print!("{}", settings.effective());
                Ok(())
            }
            Command::Audit { command: AuditCommand::Verify { public_keys, checkpoints } } => {
                audit_commands::verify(&settings, &public_keys, checkpoints.as_deref()).await
            }
            Command::Audit { command: AuditCommand::Keygen { out } } => audit_commands::keygen(&out),
            Command::Audit { command: AuditCommand::Report { since, json } } => {
                audit_commands::report(&settings, since.into(), json).await
            }
            Command::Slo { command: SloCommand::Rules { out, check } } => {
                slo_rules::run(out.as_deref(), check.as_deref())
            }
        }
    });
    exit_code(outcome)
}

fn exit_code(outcome: Result<(), Box<dyn std::error::Error>>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("agent-server: {error}");
            ExitCode::FAILURE
        }
    }
}
