//! Where the agent's settings come from: flags, then `STOWAGE_*` environment variables (both via
//! clap), then a TOML config file — all three one [`Options`] struct. The token is read from a file or the environment in preference
//! to a flag, because flags are visible to every user of the machine in `ps`.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use stowage_shared::SecretString;

/// The agent's options: one struct for the flags, the `STOWAGE_*` environment (through clap) and
/// the TOML config file (through serde), as rustic does. Flags and environment win over the file
/// ([`Config::resolve`] merges them and checks every value). The `--help` text is these doc
/// comments.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Base URL of the Stowage control plane, e.g. https://stowage.example.workers.dev
    #[arg(long, env = "STOWAGE_SERVER")]
    pub server: Option<String>,
    /// The node's token. Prefer --token-file or STOWAGE_TOKEN: arguments are visible in `ps`.
    #[arg(long, env = "STOWAGE_TOKEN", hide_env_values = true, value_parser = secret)]
    pub token: Option<SecretString>,
    /// A file holding the node's token (keep it readable by the agent's user only).
    #[arg(long, env = "STOWAGE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// A TOML config file with any of these options (`server`, `token_file`, `max_concurrent`,
    /// `allow_paths`, …); flags and environment win over it.
    #[arg(long, env = "STOWAGE_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// The rclone binary for rclone targets [default: `rclone` on PATH].
    #[arg(long, env = "STOWAGE_RCLONE")]
    pub rclone: Option<PathBuf>,
    /// How many commands run at once [default: 4].
    #[arg(long, env = "STOWAGE_MAX_CONCURRENT")]
    pub max_concurrent: Option<usize>,
    /// A directory the control plane may read (backup sources, browsing) and write (restores,
    /// local-disk targets) on this node; repeat it for several. Without any, every path the
    /// agent's user can reach is allowed. STOWAGE_ALLOW_PATHS takes a colon-separated list.
    #[arg(
        long = "allow-path",
        env = "STOWAGE_ALLOW_PATHS",
        value_delimiter = ':'
    )]
    pub allow_paths: Vec<PathBuf>,
    /// Accept a plain http:// server that is not on this machine (the token and the work's
    /// credentials then cross the network unencrypted).
    #[arg(long, env = "STOWAGE_INSECURE_HTTP")]
    pub insecure_http: bool,
}

fn secret(raw: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::new(raw))
}

impl Options {
    /// The options a config file sets.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }
}

/// What the agent runs with, every value checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL of the control plane, without a trailing slash.
    pub server: String,
    pub token: SecretString,
    pub max_concurrent: usize,
    /// Empty: every path is allowed.
    pub allow_paths: Vec<PathBuf>,
    /// The rclone binary the flags or the file name, if any.
    pub rclone: Option<PathBuf>,
}

/// Whether `server` may be spoken to over plain HTTP: only on this machine (the token and every
/// credential of the work would cross the network in the clear otherwise).
fn is_loopback_http(server: &str) -> bool {
    let Some(rest) = server.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Config {
    /// `given` (flags and environment) over `file`, every value checked.
    pub fn resolve(given: Options, file: Options) -> Result<Self> {
        let server = given
            .server
            .or(file.server)
            .context("no server: pass --server URL, set STOWAGE_SERVER, or put server = \"…\" in the config file")?;
        let server = server.trim().trim_end_matches('/').to_owned();
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            bail!("server {server:?} must be an http:// or https:// URL");
        }
        if server.starts_with("http://")
            && !is_loopback_http(&server)
            && !(given.insecure_http || file.insecure_http)
        {
            bail!(
                "server {server:?} is plain http:// on another machine: the node's token and the credentials of its work would cross the network in the clear. Use https://, or pass --insecure-http if you really mean it"
            );
        }
        let token = match (given.token, given.token_file) {
            (Some(token), _) => token,
            (None, Some(path)) => read_token(&path)?,
            (None, None) => match (file.token, file.token_file) {
                (Some(token), _) => token,
                (None, Some(path)) => read_token(&path)?,
                (None, None) => bail!(
                    "no token: pass --token-file FILE, set STOWAGE_TOKEN, or put token_file = \"…\" in the config file"
                ),
            },
        };
        if token.expose().trim().is_empty() {
            bail!("the token is empty");
        }
        let max_concurrent = given.max_concurrent.or(file.max_concurrent).unwrap_or(4);
        if !(1..=64).contains(&max_concurrent) {
            bail!("max concurrent commands must be 1 to 64 (got {max_concurrent})");
        }
        let allow_paths = if given.allow_paths.is_empty() {
            file.allow_paths
        } else {
            given.allow_paths
        };
        for path in &allow_paths {
            if !path.is_absolute() {
                bail!("allowed path {} must be absolute", path.display());
            }
        }
        Ok(Self {
            server,
            token: SecretString::new(token.expose().trim()),
            max_concurrent,
            allow_paths,
            rclone: given.rclone.or(file.rclone),
        })
    }
}

fn read_token(path: &Path) -> Result<SecretString> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading token file {}", path.display()))?;
    Ok(SecretString::new(text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_tokens_come_from_files() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "stn_from_file\n")?;
        let file: Options = toml::from_str(&format!(
            "server = \"http://file.example/\"\ntoken_file = {:?}\nmax_concurrent = 2\n",
            token_file
        ))?;
        let config = Config::resolve(
            Options {
                server: Some("https://flag.example/".into()),
                ..Options::default()
            },
            file,
        )?;
        assert_eq!(config.server, "https://flag.example");
        assert_eq!(config.token.expose(), "stn_from_file");
        assert_eq!(config.max_concurrent, 2);
        Ok(())
    }

    #[test]
    fn missing_or_bad_values_say_what_to_do() {
        let err = Config::resolve(Options::default(), Options::default()).expect_err("no server");
        assert!(err.to_string().contains("--server"));
        let err = Config::resolve(
            Options {
                server: Some("ftp://x".into()),
                token: Some("t".into()),
                ..Options::default()
            },
            Options::default(),
        )
        .expect_err("bad scheme");
        assert!(err.to_string().contains("http"));
        let err = Config::resolve(
            Options {
                server: Some("http://127.0.0.1:8787".into()),
                ..Options::default()
            },
            Options::default(),
        )
        .expect_err("no token");
        assert!(err.to_string().contains("--token-file"));
    }

    #[test]
    fn plain_http_is_for_this_machine_only() {
        let resolve = |server: &str, insecure_http: bool| {
            Config::resolve(
                Options {
                    server: Some(server.into()),
                    token: Some("t".into()),
                    insecure_http,
                    ..Options::default()
                },
                Options::default(),
            )
        };
        for ok in [
            "http://127.0.0.1:8787",
            "http://localhost:8787/",
            "http://[::1]:8787",
            "https://stowage.example",
        ] {
            assert!(resolve(ok, false).is_ok(), "{ok}");
        }
        for refused in [
            "http://stowage.example",
            "http://10.0.0.5:8787",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example:80",
        ] {
            let err = resolve(refused, false).expect_err(refused);
            assert!(err.to_string().contains("--insecure-http"), "{err}");
            assert!(
                resolve(refused, true).is_ok(),
                "{refused} with --insecure-http"
            );
        }
    }

    #[test]
    fn allowed_paths_come_from_flags_or_the_file_and_must_be_absolute() -> Result<()> {
        let file: Options = toml::from_str("allow_paths = [\"/srv\", \"/var/lib/mysql\"]")?;
        let given = Options {
            server: Some("http://127.0.0.1:1".into()),
            token: Some("t".into()),
            ..Options::default()
        };
        let config = Config::resolve(given.clone(), file)?;
        assert_eq!(
            config.allow_paths,
            [PathBuf::from("/srv"), PathBuf::from("/var/lib/mysql")]
        );
        let flags = Options {
            allow_paths: vec![PathBuf::from("/data")],
            ..given.clone()
        };
        let file: Options = toml::from_str("allow_paths = [\"/srv\"]")?;
        assert_eq!(
            Config::resolve(flags, file)?.allow_paths,
            [PathBuf::from("/data")]
        );
        let relative = Options {
            allow_paths: vec![PathBuf::from("data")],
            ..given
        };
        assert!(Config::resolve(relative, Options::default()).is_err());
        Ok(())
    }

    #[test]
    fn unknown_config_keys_are_errors() {
        assert!(toml::from_str::<Options>("sever = \"typo\"").is_err());
    }

    #[test]
    fn debug_output_hides_the_token() {
        let config = Config {
            server: "http://x".into(),
            token: "stn_secret".into(),
            max_concurrent: 1,
            allow_paths: Vec::new(),
            rclone: None,
        };
        assert!(!format!("{config:?}").contains("stn_secret"));
    }
}
