//! `agent-server`: an AI agent HTTP service built on `hardened` the way a team would build one, and the
//! system the load, fault and shutdown evidence is measured on. See this example's README.

mod agent;
mod api;
mod audit_commands;
mod auth;
mod calculator;
mod cli;
mod conversation;
mod model;
mod serve;
mod sessions;
mod settings;
mod slo_rules;
mod tool_names;
mod tools;
mod trail;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{AuditCommand, Cli, Command, ConfigCommand, SloCommand};

/// Every request allocates across threads (audit events are made on the request's thread and freed on the
/// audit writer's), which mimalloc's per-thread free lists serve far faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
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
