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
    let dir = tempfile::tempdir()?;
    let remote =
        json!({"name": "r", "type": "rclone", "config": {"backend": "local", "root": dir.path()}});
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
    // Chosen automatically, it goes to the node with rclone.
    let ok: stowage_shared::api::StorageTestResult = server
        .post(routes::STORAGE_TARGETS_TEST, Some(&admin), &remote)
        .await?
        .expect_ok()?;
    assert_eq!(ok.node_id, a.id);
    Ok(())
}
