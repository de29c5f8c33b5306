//! `rclone/backends` comes from the agents' own rclone, and rclone work only goes to nodes that
//! have rclone.

use anyhow::Result;
use serde_json::json;
use stowage_shared::api::{NodeWithToken, RcloneBackendsOutput, routes};
use stowage_tests::{AgentProcess, Server, ServerOptions};

#[tokio::test]
async fn backends_are_reported_by_agents_and_rclone_work_needs_rclone() -> Result<()> {
    let server = Server::start_with(
        ServerOptions::default()
            .var("HEARTBEAT_SECS", 1)
            .var("POLL_SECS", 1)
            .var("RPC_WAIT_SECS", 30),
    )
    .await?;
    let admin = server.admin("admin", "correct horse battery").await?;

    // No node has rclone yet: an empty answer that says so, not an error.
    let empty: RcloneBackendsOutput = server
        .get(routes::RCLONE_BACKENDS, Some(&admin))
        .await?
        .expect_ok()?;
    assert!(empty.backends.is_empty() && empty.nodes.is_empty());

    let with: NodeWithToken = server
        .post(routes::NODES, Some(&admin), &json!({"name": "with-rclone"}))
        .await?
        .expect_ok()?;
    let without: NodeWithToken = server
        .post(routes::NODES, Some(&admin), &json!({"name": "without"}))
        .await?
        .expect_ok()?;
    let _a = AgentProcess::start(&server.base_url, with.token.expose())?;
    let _b = AgentProcess::start_without_rclone(&server.base_url, without.token.expose())?;
    let a = server.wait_online(&admin, with.node.id).await?;
    let b = server.wait_online(&admin, without.node.id).await?;
    let version = a.capabilities.rclone.clone().expect("rclone reported");
    assert_eq!(b.capabilities.rclone, None);

    let reply = server.get(routes::RCLONE_BACKENDS, Some(&admin)).await?;
    let out: RcloneBackendsOutput = reply.expect_ok()?;
    assert_eq!(out.nodes.len(), 1, "{}", reply.raw);
    assert_eq!(
        (out.nodes[0].id, out.nodes[0].rclone_version.as_str()),
        (a.id, version.as_str())
    );
    assert!(out.unavailable_versions.is_empty());
    // What rclone itself says about its sftp backend.
    let sftp = out
        .backends
        .iter()
        .find(|b| b.backend.name == "sftp")
        .expect("rclone has sftp");
    assert!(sftp.backend.description.to_lowercase().contains("ssh"));
    assert_eq!(sftp.node_ids, [a.id]);
    let option = |name: &str| sftp.backend.options.iter().find(|o| o.name == name);
    assert!(option("host").is_some_and(|o| o.required && !o.secret));
    assert!(option("pass").is_some_and(|o| o.secret));
    assert!(option("port").is_some_and(|o| o.default == "22"));
    assert!(out.backends.len() > 30, "rclone has dozens of backends");
    // Every option rclone calls a password is one Stowage seals and masks in rclone targets.
    for backend in &out.backends {
        for o in backend.backend.options.iter().filter(|o| o.secret) {
            assert!(
                stowage_shared::storage::is_secret_rclone_option(&o.name),
                "{}.{} is a password to rclone but would be stored unmasked",
                backend.backend.name,
                o.name
            );
        }
    }
    for wrapper in ["crypt", "union", "alias", "chunker"] {
        assert!(out.backends.iter().all(|b| b.backend.name != wrapper));
    }

    // The list is asked once per rclone version and then kept.
    let again: RcloneBackendsOutput = server
        .get(routes::RCLONE_BACKENDS, Some(&admin))
        .await?
        .expect_ok()?;
    assert_eq!(again, out);
    let asked =
        server.query("SELECT count(*) AS n FROM agent_commands WHERE kind = 'rclone_backends'")?;
    assert_eq!(asked[0]["n"], 1);

    // rclone work never lands on the node without rclone.
    let dav = stowage_tests::RcloneServer::start("webdav", &[]).await?;
    let remote = json!({"name": "r", "type": "rclone", "config": {"backend": "webdav",
        "options": {"url": format!("http://127.0.0.1:{}", dav.port)}}});
    let mut on_b = remote.clone();
    on_b["nodeId"] = json!(b.id);
    let refused = server
        .post(routes::STORAGE_TARGETS_TEST, Some(&admin), &on_b)
        .await?;
    refused.expect_error(400, "NODE_MISSING_TOOL")?;
    assert!(
        refused.envelope.message.contains("without"),
        "{}",
        refused.raw
    );
    // Not named, it goes nowhere; named, to the node with rclone.
    server
        .post(routes::STORAGE_TARGETS_TEST, Some(&admin), &remote)
        .await?
        .expect_error(400, "NODE_REQUIRED")?;
    let mut on_a = remote.clone();
    on_a["nodeId"] = json!(a.id);
    let ok: stowage_shared::api::StorageTestResult = server
        .post(routes::STORAGE_TARGETS_TEST, Some(&admin), &on_a)
        .await?
        .expect_ok()?;
    assert_eq!(ok.node_id, a.id);
    Ok(())
}

/// `shared/src/rclone_options.txt` was made from the pinned rclone: every backend rclone has is
/// either allowed or refused with a reason, and every option of an allowed backend is either on
/// the list or refused with a reason. A new rclone with new backends or options fails here until
/// someone has looked at them.
#[test]
fn the_rclone_allow_list_matches_the_installed_rclone() -> Result<()> {
    use stowage_shared::rclone::{
        REFUSED_BACKENDS, REFUSED_OPTIONS, allowed_backends, allowed_options,
    };
    let out = std::process::Command::new(stowage_tests::rclone_binary()?)
        .args(["config", "providers"])
        .env("RCLONE_CONFIG", "/dev/null")
        .output()?;
    anyhow::ensure!(out.status.success(), "rclone config providers failed");
    let providers: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)?;
    let mut unreviewed = Vec::new();
    for provider in &providers {
        let backend = provider["Prefix"].as_str().unwrap_or_default();
        let options: Vec<&str> = provider["Options"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["Name"].as_str())
            .collect();
        match allowed_options(backend) {
            None if REFUSED_BACKENDS.iter().any(|(b, _)| *b == backend) => {}
            None => unreviewed.push(format!("backend {backend}")),
            Some(allowed) => {
                let allowed: Vec<&str> = allowed.collect();
                for option in &options {
                    if !allowed.contains(option)
                        && !REFUSED_OPTIONS.iter().any(|(o, _)| o == option)
                    {
                        unreviewed.push(format!("{backend}.{option}"));
                    }
                }
                for option in allowed {
                    if !options.contains(&option) {
                        unreviewed.push(format!("{backend}.{option} (gone from rclone)"));
                    }
                }
            }
        }
    }
    for backend in allowed_backends() {
        if !providers.iter().any(|p| p["Prefix"] == backend) {
            unreviewed.push(format!("backend {backend} (gone from rclone)"));
        }
    }
    assert!(unreviewed.is_empty(), "review these: {unreviewed:?}");
    Ok(())
}
