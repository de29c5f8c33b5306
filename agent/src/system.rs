//! What the agent tells the server about its machine: identity and the tools it can use.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::time::Duration;
use stowage_shared::api::Capabilities;
use tokio::process::Command;

#[derive(Debug, Clone)]
pub struct Identity {
    pub hostname: String,
    pub ip_address: String,
    pub os: String,
    pub arch: String,
}

impl Identity {
    pub fn detect(server: &str) -> Self {
        Self {
            hostname: hostname(),
            ip_address: outbound_ip(server).unwrap_or_default(),
            os: os_name(),
            arch: std::env::consts::ARCH.to_owned(),
        }
    }
}

/// Linux keeps the hostname in procfs; reading it avoids a dependency for one string.
pub fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// `PRETTY_NAME` from os-release (e.g. "Debian GNU/Linux 12 (bookworm)"), else the OS family.
fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_owned())
}

/// The local address the machine would use to reach the server. Connecting a UDP socket sends
/// nothing; it only asks the kernel for a route.
fn outbound_ip(server: &str) -> Option<String> {
    let host_port = server.split("://").nth(1)?.split('/').next()?;
    let with_port = if host_port.contains(':') {
        host_port.to_owned()
    } else if server.starts_with("https://") {
        format!("{host_port}:443")
    } else {
        format!("{host_port}:80")
    };
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect(with_port).ok()?;
    Some(socket.local_addr().ok()?.ip().to_string())
}

/// A private directory (0700) for the copies database work needs on the node: an SQLite
/// snapshot on its way into the pass, a dump fetched for a restore until it is verified. Files in
/// it older than a day are what a killed agent left behind, and are removed whenever it is
/// opened (a day is longer than any copy is in use).
pub fn scratch_dir() -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join("stowage-agent");
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    remove_stale(&dir, |_| true);
    Ok(dir)
}

/// Removes the files in `dir` older than a day whose names `pick` chooses.
pub fn remove_stale(dir: &std::path::Path, pick: impl Fn(&str) -> bool) {
    const STALE: Duration = Duration::from_secs(24 * 3600);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let old = entry
            .metadata()
            .ok()
            .filter(std::fs::Metadata::is_file)
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE);
        if old && pick(&entry.file_name().to_string_lossy()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The first `name` executable on PATH.
pub fn find_on_path(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// The tools later backups need, found on PATH, with their first line of `--version`; rclone is
/// the one given (the agent's `--rclone`), if any.
pub async fn capabilities(max_concurrent: usize, rclone: Option<&std::path::Path>) -> Capabilities {
    const TOOLS: [&str; 7] = [
        "pg_dump",
        "pg_dumpall",
        "psql",
        "mariadb-dump",
        "mysqldump",
        "mariadb",
        "mysql",
    ];
    let mut tools = BTreeMap::new();
    // SQLite needs no program: the agent carries it (its backup API does the copies).
    tools.insert(
        "sqlite".to_owned(),
        format!("{} (built into the agent)", rusqlite::version()),
    );
    for tool in TOOLS {
        if let Some(version) = version_of(tool).await {
            tools.insert(tool.to_owned(), version);
        }
    }
    Capabilities {
        rclone: match rclone {
            Some(path) => version_of(&path.to_string_lossy()).await,
            None => None,
        },
        tools,
        max_concurrent: u32::try_from(max_concurrent).unwrap_or(u32::MAX),
    }
}

async fn version_of(tool: &str) -> Option<String> {
    let run = Command::new(tool)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .ok()?
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_ip_to_loopback_is_loopback() {
        assert_eq!(
            outbound_ip("http://127.0.0.1:8787").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(outbound_ip("not a url"), None);
    }

    #[tokio::test]
    async fn missing_tools_are_simply_absent() {
        assert_eq!(version_of("stowage-no-such-tool").await, None);
    }
}
