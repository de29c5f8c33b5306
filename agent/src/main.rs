//! `stowage-agent`: runs on each server or NAS, dials out to the Stowage control plane, and does the
//! data moving for it.
//!
//! Exit codes: 0 stopped cleanly (SIGINT/SIGTERM), 1 unexpected failure, 2 usage or configuration
//! error, 3 the server rejected the agent's token, 4 the server needs a newer agent.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use stowage_agent::client::{Client, ClientError};
use stowage_agent::config::{Config, Options};
use stowage_agent::paths::PathPolicy;
use stowage_agent::poll::Agent;
use stowage_agent::storage::Tools;
use stowage_agent::system::{self, Identity};
use stowage_shared::ErrorCode;
use tokio::sync::watch;
use tracing::{error, info};

/// The Stowage agent: runs backups and restores on this machine for a Stowage control plane.
#[derive(Debug, Parser)]
#[command(name = "stowage-agent", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect to the control plane and run the commands it sends until stopped.
    Run(Options),
}

const EXIT_FAILURE: u8 = 1;
const EXIT_CONFIG: u8 = 2;
const EXIT_TOKEN_REJECTED: u8 = 3;
const EXIT_TOO_OLD: u8 = 4;

fn main() -> ExitCode {
    stowage_agent::cap_malloc_arenas();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let Command::Run(args) = cli.command;
    let (config, tools) = match load_config(args) {
        Ok(loaded) => loaded,
        Err(e) => {
            error!("{e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(run(config, tools)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(ClientError::Rejected {
            code: ErrorCode::AgentProtocolUnsupported,
            message,
        }) => {
            error!("this agent is too old for the server: {message}");
            ExitCode::from(EXIT_TOO_OLD)
        }
        Err(ClientError::Rejected { message, .. }) => {
            error!("the server rejected this agent's token: {message}");
            ExitCode::from(EXIT_TOKEN_REJECTED)
        }
        Err(e) => {
            error!("{e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn load_config(given: Options) -> anyhow::Result<(Config, Tools)> {
    let file = match &given.config {
        Some(path) => Options::load(path)?,
        None => Options::default(),
    };
    let config = Config::resolve(given, file).context("configuration")?;
    let paths = if config.allow_paths.is_empty() {
        info!(
            "no --allow-path given: the control plane may read and write every path this user can reach"
        );
        PathPolicy::everything()
    } else {
        let policy = PathPolicy::only(&config.allow_paths).map_err(anyhow::Error::msg)?;
        info!(allowed = ?policy.roots(), "the control plane may read and write only these paths");
        policy
    };
    let tools = Tools {
        rclone: config
            .rclone
            .clone()
            .or_else(|| system::find_on_path("rclone")),
        paths,
    };
    Ok((config, tools))
}

async fn run(config: Config, tools: Tools) -> Result<(), ClientError> {
    let (stop_tx, mut stop) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("stop requested");
        let _ = stop_tx.send(true);
    });

    let client = Client::new(&config.server, config.token.clone())?;
    let identity = Identity::detect(&config.server);
    let capabilities = system::capabilities(config.max_concurrent, tools.rclone.as_deref()).await;
    info!(
        version = env!("CARGO_PKG_VERSION"),
        server = %config.server,
        hostname = %identity.hostname,
        rclone = capabilities.rclone.as_deref().unwrap_or("not found"),
        tools = ?capabilities.tools.keys().collect::<Vec<_>>(),
        "starting"
    );
    let agent = Agent::new(client, identity, capabilities, tools, config.max_concurrent);
    let Some(hello) = agent.connect(&mut stop).await? else {
        return Ok(());
    };
    info!(node = hello.node_id, name = %hello.node_name, "connected");
    agent.run(stop).await?;
    info!("stopped");
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM (systemd stop).
async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn version_flag_prints_the_crate_version() {
        let err = Cli::try_parse_from(["stowage-agent", "--version"]).expect_err("exits");
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
        assert!(err.to_string().contains(env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn unknown_flags_are_usage_errors() {
        let err = Cli::try_parse_from(["stowage-agent", "run", "--frobnicate"]).expect_err("usage");
        assert_eq!(err.exit_code(), 2);
    }
}
