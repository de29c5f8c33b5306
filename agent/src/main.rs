//! `stowage-agent`: runs on each server or NAS, dials out to the Stowage control plane, and does all
//! data moving (backups, uploads, restores, retention).
//!
//! This first version only identifies itself; enrolment, heartbeats and the command loop come with
//! the nodes issue. Exit codes: 0 success, 2 usage error (clap).

use clap::Parser;

/// The Stowage agent: runs backups and restores on this machine for a Stowage control plane.
#[derive(Debug, Parser)]
#[command(name = "stowage-agent", version, about, long_about = None)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    println!(
        "stowage-agent {} (protocol {}): no command given; see --help",
        env!("CARGO_PKG_VERSION"),
        stowage_shared::api::AGENT_PROTOCOL_VERSION
    );
    Ok(())
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
        let err = Cli::try_parse_from(["stowage-agent", "--frobnicate"]).expect_err("usage");
        assert_eq!(err.exit_code(), 2);
    }
}
