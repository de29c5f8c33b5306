//! `stowage-agent`: runs on each server or NAS, dials out to the Stowage control plane, and does the
//! data moving for it.
//!
//! Exit codes: 0 stopped cleanly (SIGINT/SIGTERM), 1 unexpected failure, 2 usage or configuration
//! error, 3 the server rejected the agent's token, 4 the server needs a newer agent.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use stowage_agent::client::{Client, ClientError};
use stowage_agent::config::{Config, FileConfig, Given};
use stowage_agent::paths::PathPolicy;
use stowage_agent::poll::Agent;
use stowage_agent::storage::Tools;
use stowage_agent::system::{self, Identity};
use stowage_shared::{ErrorCode, SecretString};
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
    Run(RunArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Base URL of the Stowage control plane, e.g. https://stowage.example.workers.dev
    #[arg(long, env = "STOWAGE_SERVER")]
    server: Option<String>,
    /// The node's token. Prefer --token-file or STOWAGE_TOKEN: arguments are visible in `ps`.
    #[arg(long, env = "STOWAGE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A file holding the node's token (keep it readable by the agent's user only).
    #[arg(long, env = "STOWAGE_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// A TOML config file with `server`, `token_file` (or `token`) and `max_concurrent`.
    #[arg(long, env = "STOWAGE_CONFIG")]
    config: Option<PathBuf>,
    /// The rclone binary for rclone targets [default: `rclone` on PATH].
    #[arg(long, env = "STOWAGE_RCLONE")]
    rclone: Option<PathBuf>,
    /// How many commands run at once [default: 4].
    #[arg(long, env = "STOWAGE_MAX_CONCURRENT")]
    max_concurrent: Option<usize>,
    /// A directory the control plane may read (backup sources, browsing) and write (restores,
    /// local-disk targets) on this node; repeat it for several. Without any, every path the
    /// agent's user can reach is allowed. STOWAGE_ALLOW_PATHS takes a colon-separated list.
    #[arg(
        long = "allow-path",
        env = "STOWAGE_ALLOW_PATHS",
        value_delimiter = ':'
    )]
    allow_paths: Vec<PathBuf>,
    /// Accept a plain http:// server that is not on this machine (the token and the work's
    /// credentials then cross the network unencrypted).
    #[arg(long, env = "STOWAGE_INSECURE_HTTP")]
    insecure_http: bool,
}

const EXIT_FAILURE: u8 = 1;
const EXIT_CONFIG: u8 = 2;
const EXIT_TOKEN_REJECTED: u8 = 3;
const EXIT_TOO_OLD: u8 = 4;

fn main() -> ExitCode {
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

fn load_config(args: RunArgs) -> anyhow::Result<(Config, Tools)> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let given = Given {
        server: args.server,
        token: args.token.map(SecretString::new),
        token_file: args.token_file,
        max_concurrent: args.max_concurrent,
        allow_paths: args.allow_paths,
        insecure_http: args.insecure_http,
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
        rclone: args.rclone.or_else(|| system::find_on_path("rclone")),
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
