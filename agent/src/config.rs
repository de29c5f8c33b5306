//! Where the agent's settings come from: flags, then `STOWAGE_*` environment variables (both via
//! clap), then a TOML config file. The token is read from a file or the environment in preference
//! to a flag, because flags are visible to every user of the machine in `ps`.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use stowage_shared::SecretString;

/// The config file's shape (all keys optional; flags and environment win).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub server: Option<String>,
    pub token: Option<SecretString>,
    pub token_file: Option<PathBuf>,
    pub max_concurrent: Option<usize>,
    /// Directories the control plane may read and write on this node (default: everything).
    #[serde(default)]
    pub allow_paths: Vec<PathBuf>,
    /// Accept an `http://` server that is not on this machine.
    #[serde(default)]
    pub insecure_http: bool,
}

impl FileConfig {
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
}

/// Values given on the command line or in the environment.
#[derive(Debug, Default, Clone)]
pub struct Given {
    pub server: Option<String>,
    pub token: Option<SecretString>,
    pub token_file: Option<PathBuf>,
    pub max_concurrent: Option<usize>,
    pub allow_paths: Vec<PathBuf>,
    pub insecure_http: bool,
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
    pub fn resolve(given: Given, file: FileConfig) -> Result<Self> {
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
        let file: FileConfig = toml::from_str(&format!(
            "server = \"http://file.example/\"\ntoken_file = {:?}\nmax_concurrent = 2\n",
            token_file
        ))?;
        let config = Config::resolve(
            Given {
                server: Some("https://flag.example/".into()),
                ..Given::default()
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
        let err = Config::resolve(Given::default(), FileConfig::default()).expect_err("no server");
        assert!(err.to_string().contains("--server"));
        let err = Config::resolve(
            Given {
                server: Some("ftp://x".into()),
                token: Some("t".into()),
                ..Given::default()
            },
            FileConfig::default(),
        )
        .expect_err("bad scheme");
        assert!(err.to_string().contains("http"));
        let err = Config::resolve(
            Given {
                server: Some("http://127.0.0.1:8787".into()),
                ..Given::default()
            },
            FileConfig::default(),
        )
        .expect_err("no token");
        assert!(err.to_string().contains("--token-file"));
    }

    #[test]
    fn plain_http_is_for_this_machine_only() {
        let resolve = |server: &str, insecure_http: bool| {
            Config::resolve(
                Given {
                    server: Some(server.into()),
                    token: Some("t".into()),
                    insecure_http,
                    ..Given::default()
                },
                FileConfig::default(),
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
        let file: FileConfig = toml::from_str("allow_paths = [\"/srv\", \"/var/lib/mysql\"]")?;
        let given = Given {
            server: Some("http://127.0.0.1:1".into()),
            token: Some("t".into()),
            ..Given::default()
        };
        let config = Config::resolve(given.clone(), file)?;
        assert_eq!(
            config.allow_paths,
            [PathBuf::from("/srv"), PathBuf::from("/var/lib/mysql")]
        );
        let flags = Given {
            allow_paths: vec![PathBuf::from("/data")],
            ..given.clone()
        };
        let file: FileConfig = toml::from_str("allow_paths = [\"/srv\"]")?;
        assert_eq!(
            Config::resolve(flags, file)?.allow_paths,
            [PathBuf::from("/data")]
        );
        let relative = Given {
            allow_paths: vec![PathBuf::from("data")],
            ..given
        };
        assert!(Config::resolve(relative, FileConfig::default()).is_err());
        Ok(())
    }

    #[test]
    fn unknown_config_keys_are_errors() {
        assert!(toml::from_str::<FileConfig>("sever = \"typo\"").is_err());
    }

    #[test]
    fn debug_output_hides_the_token() {
        let config = Config {
            server: "http://x".into(),
            token: "stn_secret".into(),
            max_concurrent: 1,
            allow_paths: Vec::new(),
        };
        assert!(!format!("{config:?}").contains("stn_secret"));
    }
}
