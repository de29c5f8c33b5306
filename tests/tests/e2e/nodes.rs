//! Nodes and agents end to end: real `stowage-agent` processes against the real `wrangler dev`.

use anyhow::{Result, ensure};
use nix::sys::signal::Signal;
use serde_json::json;
use std::time::{Duration, Instant};
use stowage_shared::ErrorCode;
use stowage_shared::api::{FsListing, NodeOutput, NodeStatus, NodeWithToken, routes};
use stowage_shared::protocol::{CommandError, CommandResult};
use stowage_tests::{AgentProcess, RawAgent, Server, ServerOptions, eventually, fs_list_path};

const PASSWORD: &str = "correct horse battery";

/// Agent timings in seconds instead of tens of seconds.
fn fast() -> ServerOptions {
    ServerOptions::default()
        .var("HEARTBEAT_SECS", 1)
        .var("POLL_SECS", 1)
        .var("LEASE_SECS", 3)
        .var("OFFLINE_AFTER_SECS", 3)
        .var("RPC_WAIT_SECS", 6)
}

async fn create_node(server: &Server, token: &str, name: &str) -> Result<NodeWithToken> {
    server
        .post(routes::NODES, Some(token), &json!({"name": name}))
        .await?
        .expect_ok()
}

async fn node(server: &Server, token: &str, id: i64) -> Result<NodeOutput> {
    server
        .get(&routes::node(id), Some(token))
        .await?
        .expect_ok()
}

async fn wait_status(
    server: &Server,
    token: &str,
    id: i64,
    want: NodeStatus,
) -> Result<NodeOutput> {
    eventually(
        &format!("node {id} to be {want:?}"),
        Duration::from_secs(20),
        || async {
            let n = node(server, token, id).await?;
            Ok((n.status == want).then_some(n))
        },
    )
    .await
}

#[tokio::test]
async fn node_crud_shows_the_token_once_and_stores_only_its_hash() -> Result<()> {
    let server = Server::start().await?;
    let admin = server.admin("admin", PASSWORD).await?;

    let created = server
        .post(routes::NODES, Some(&admin), &json!({"name": " nas-01 "}))
        .await?;
    assert_eq!(created.status, 201);
    let created: NodeWithToken = created.expect_ok()?;
    let token = created.token.expose().to_owned();
    assert!(token.starts_with("stn_"));
    assert_eq!(created.node.name, "nas-01");
    assert_eq!(created.node.status, NodeStatus::Offline);

    let fetched = server
        .get(&routes::node(created.node.id), Some(&admin))
        .await?;
    assert!(
        !fetched.raw.contains(&token),
        "the token is shown only once"
    );
    let listed = server.get(routes::NODES, Some(&admin)).await?;
    let nodes: Vec<NodeOutput> = listed.expect_ok()?;
    assert_eq!(nodes.len(), 1);
    assert!(!listed.raw.contains(&token));

    server
        .post(routes::NODES, Some(&admin), &json!({"name": "NAS-01"}))
        .await?
        .expect_error(409, "NODE_DUPLICATE_NAME")?;
    server
        .post(routes::NODES, Some(&admin), &json!({"name": "a/b"}))
        .await?
        .expect_error(400, "NODE_INVALID")?;
    server
        .post(routes::NODES, Some(&admin), &json!({}))
        .await?
        .expect_error(400, "NODE_INVALID")?;
    server
        .post(routes::NODES, None, &json!({"name": "x"}))
        .await?
        .expect_error(401, "AUTH_REQUIRED")?;
    server
        .get("/api/nodes/abc", Some(&admin))
        .await?
        .expect_error(400, "INVALID_ID")?;
    server
        .get("/api/nodes/999", Some(&admin))
        .await?
        .expect_error(404, "NODE_NOT_FOUND")?;

    let other: NodeWithToken = create_node(&server, &admin, "other").await?;
    server
        .put(
            &routes::node(other.node.id),
            Some(&admin),
            &json!({"name": "nas-01"}),
        )
        .await?
        .expect_error(409, "NODE_DUPLICATE_NAME")?;
    let renamed: NodeOutput = server
        .put(
            &routes::node(other.node.id),
            Some(&admin),
            &json!({"name": "backup box"}),
        )
        .await?
        .expect_ok()?;
    assert_eq!(renamed.name, "backup box");

    // The plaintext tokens are nowhere in D1, in any table.
    for table in [
        "nodes",
        "agent_commands",
        "audit_logs",
        "sessions",
        "users",
        "system_state",
    ] {
        let rows = server.query(&format!("SELECT * FROM {table}"))?;
        let text = serde_json::to_string(&rows)?;
        for t in [token.as_str(), other.token.expose()] {
            assert!(!text.contains(t), "{table} holds a plaintext node token");
            assert!(
                !text.contains(&t[4..]),
                "{table} holds a node token's secret part"
            );
        }
    }
    let stored = server.query("SELECT token_hash FROM nodes ORDER BY id")?;
    assert_eq!(stored[0]["token_hash"].as_str().map(str::len), Some(64));

    let deleted = server
        .call::<()>(
            reqwest::Method::DELETE,
            &routes::node(other.node.id),
            Some(&admin),
            None,
        )
        .await?;
    deleted.expect_ok::<serde_json::Value>()?;
    server
        .get(&routes::node(other.node.id), Some(&admin))
        .await?
        .expect_error(404, "NODE_NOT_FOUND")?;
    let audit =
        server.query("SELECT action FROM audit_logs WHERE action LIKE 'node.%' AND result = 'success' ORDER BY id")?;
    let actions: Vec<&str> = audit.iter().filter_map(|r| r["action"].as_str()).collect();
    assert_eq!(
        actions,
        ["node.create", "node.create", "node.update", "node.delete"]
    );
    // The refused calls above are in the log too, each with its error code.
    crate::operations::assert_refusals_audited(&server, "node.")?;
    Ok(())
}

#[tokio::test]
async fn agent_comes_online_and_lists_a_real_directory() -> Result<()> {
    let server = Server::start_with(fast()).await?;
    let admin = server.admin("admin", PASSWORD).await?;
    let created = create_node(&server, &admin, "box").await?;
    let id = created.node.id;
    let _agent = AgentProcess::start(&server.base_url, created.token.expose())?;

    let online = wait_status(&server, &admin, id, NodeStatus::Online).await?;
    assert_eq!(online.agent_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(online.ip_address, "127.0.0.1");
    assert!(!online.hostname.is_empty() && !online.os.is_empty());
    assert_eq!(online.capabilities.max_concurrent, 4);

    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("子目录"))?;
    std::fs::create_dir(dir.path().join("Alpha dir"))?;
    std::fs::write(dir.path().join("Ünïcødé 文件.txt"), "hello, 世界")?;
    std::fs::write(dir.path().join("b.bin"), vec![7u8; 1000])?;
    let listing: FsListing = server
        .get(&fs_list_path(id, dir.path()), Some(&admin))
        .await?
        .expect_ok()?;
    let seen: Vec<(String, bool, u64)> = listing
        .entries
        .iter()
        .map(|e| (e.name.clone(), e.is_dir, e.size))
        .collect();
    assert_eq!(
        seen,
        [
            ("Alpha dir".to_owned(), true, 0),
            ("子目录".to_owned(), true, 0),
            ("b.bin".to_owned(), false, 1000),
            (
                "Ünïcødé 文件.txt".to_owned(),
                false,
                "hello, 世界".len() as u64
            ),
        ]
    );
    assert_eq!(listing.path, dir.path().to_string_lossy());
    assert!(
        listing
            .entries
            .iter()
            .all(|e| e.path.starts_with(&listing.path) && e.modified_at.is_some())
    );

    let file = dir.path().join("b.bin");
    server
        .get(&fs_list_path(id, &dir.path().join("missing")), Some(&admin))
        .await?
        .expect_error(404, "NODE_FS_NOT_FOUND")?;
    server
        .get(&fs_list_path(id, &file), Some(&admin))
        .await?
        .expect_error(400, "NODE_FS_NOT_A_DIRECTORY")?;
    server
        .get(
            &format!("{}?path=relative", routes::node_fs_list(id)),
            Some(&admin),
        )
        .await?
        .expect_error(400, "NODE_FS_PATH_INVALID")?;
    Ok(())
}

#[tokio::test]
async fn killed_agent_goes_offline_and_listing_fails_fast() -> Result<()> {
    let server = Server::start_with(fast()).await?;
    let admin = server.admin("admin", PASSWORD).await?;
    let created = create_node(&server, &admin, "box").await?;
    let id = created.node.id;
    let agent = AgentProcess::start(&server.base_url, created.token.expose())?;
    wait_status(&server, &admin, id, NodeStatus::Online).await?;

    agent.signal(Signal::SIGKILL)?;
    wait_status(&server, &admin, id, NodeStatus::Offline).await?;
    // The tick writes the verdict down (the API already reads it from the silence).
    eventually(
        "the tick to mark the node offline",
        Duration::from_secs(10),
        || async {
            server.trigger_cron().await?;
            let rows = server.query(&format!("SELECT status FROM nodes WHERE id = {id}"))?;
            Ok((rows[0]["status"] == "offline").then_some(()))
        },
    )
    .await?;

    let started = Instant::now();
    server
        .get(
            &format!("{}?path=/", routes::node_fs_list(id)),
            Some(&admin),
        )
        .await?
        .expect_error(400, "NODE_OFFLINE")?;
    ensure!(
        started.elapsed() < Duration::from_secs(3),
        "an offline node must fail fast, took {:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn a_claim_whose_agent_falls_silent_expires_and_a_late_result_is_refused() -> Result<()> {
    let server = Server::start_with(fast()).await?;
    let admin = server.admin("admin", PASSWORD).await?;
    let created = create_node(&server, &admin, "box").await?;
    let id = created.node.id;
    let raw = RawAgent::new(&server, created.token.expose());
    raw.heartbeat().await?.expect_ok::<serde_json::Value>()?;

    // A listing is requested; the "agent" claims it and then goes silent, as a killed one would.
    let waiting = server.spawn_get(&format!("{}?path=/", routes::node_fs_list(id)), &admin);
    let claimed = eventually(
        "the command to be claimable",
        Duration::from_secs(10),
        || raw.poll(),
    )
    .await?;
    let reply = waiting.await??;
    reply.expect_error(504, "AGENT_COMMAND_TIMEOUT")?;

    eventually(
        "the lapsed lease to expire",
        Duration::from_secs(15),
        || async {
            server.trigger_cron().await?;
            let rows = server.query(&format!(
                "SELECT status, error_message FROM agent_commands WHERE id = {}",
                claimed.id
            ))?;
            Ok((rows[0]["status"] == "expired").then(|| rows[0].clone()))
        },
    )
    .await
    .and_then(|row| {
        ensure!(
            row["error_message"]
                .as_str()
                .is_some_and(|m| m.contains("lease expired")),
            "{row}"
        );
        Ok(())
    })?;

    let late = CommandResult::Succeeded {
        result: json!({"path": "/", "entries": [], "truncated": false}),
    };
    raw.report(claimed.id, &late)
        .await?
        .expect_error(409, "AGENT_COMMAND_LEASE_EXPIRED")?;
    Ok(())
}

#[tokio::test]
async fn results_are_idempotent_and_only_the_claiming_node_may_report() -> Result<()> {
    let server = Server::start_with(fast()).await?;
    let admin = server.admin("admin", PASSWORD).await?;
    let a = create_node(&server, &admin, "a").await?;
    let b = create_node(&server, &admin, "b").await?;
    let raw_a = RawAgent::new(&server, a.token.expose());
    let raw_b = RawAgent::new(&server, b.token.expose());
    raw_a.heartbeat().await?.expect_ok::<serde_json::Value>()?;
    raw_b.heartbeat().await?.expect_ok::<serde_json::Value>()?;

    let waiting = server.spawn_get(
        &format!("{}?path=/srv", routes::node_fs_list(a.node.id)),
        &admin,
    );
    let claimed = eventually("a's command", Duration::from_secs(10), || raw_a.poll()).await?;
    assert!(raw_b.poll().await?.is_none(), "b never sees a's commands");

    let failure = CommandResult::Failed {
        error: CommandError {
            code: ErrorCode::NodeFsPermissionDenied,
            message: "/srv cannot be read".into(),
        },
    };
    raw_b
        .report(claimed.id, &failure)
        .await?
        .expect_error(403, "AGENT_COMMAND_FORBIDDEN")?;
    let first: serde_json::Value = raw_a.report(claimed.id, &failure).await?.expect_ok()?;
    assert_eq!(first["recorded"], true);
    let again: serde_json::Value = raw_a.report(claimed.id, &failure).await?.expect_ok()?;
    assert_eq!(again["recorded"], false, "a retried report changes nothing");
    let success = CommandResult::Succeeded { result: json!({}) };
    raw_a
        .report(claimed.id, &success)
        .await?
        .expect_error(400, "AGENT_RESULT_INVALID")?;
    raw_a
        .report(99_999, &success)
        .await?
        .expect_error(404, "AGENT_COMMAND_NOT_FOUND")?;

    // The caller got the agent's error, with its code.
    let reply = waiting.await??;
    reply.expect_error(403, "NODE_FS_PERMISSION_DENIED")?;
    assert!(reply.envelope.message.contains("/srv cannot be read"));
    Ok(())
}

#[tokio::test]
async fn two_agents_on_one_node_never_run_the_same_command() -> Result<()> {
    let server = Server::start_with(fast()).await?;
    let admin = server.admin("admin", PASSWORD).await?;
    let created = create_node(&server, &admin, "box").await?;
    let id = created.node.id;
    let _one = AgentProcess::start(&server.base_url, created.token.expose())?;
    let _two = AgentProcess::start(&server.base_url, created.token.expose())?;
    wait_status(&server, &admin, id, NodeStatus::Online).await?;

    let dir = tempfile::tempdir()?;
    let path = fs_list_path(id, dir.path());
    let calls = (0..10).map(|_| server.get(&path, Some(&admin)));
    for reply in futures_util::future::join_all(calls).await {
        reply?.expect_ok::<FsListing>()?;
    }
    let rows = server.query(&format!(
        "SELECT id, status, attempts FROM agent_commands WHERE node_id = {id}"
    ))?;
    assert_eq!(rows.len(), 10);
    for row in &rows {
        assert_eq!(row["status"], "succeeded", "{row}");
        assert_eq!(row["attempts"], 1, "claimed exactly once: {row}");
    }
    Ok(())
}

#[tokio::test]
async fn wrong_and_rotated_tokens_are_rejected_and_old_agents_told_to_upgrade() -> Result<()> {
    let server = Server::start_with(fast()).await?;
    let admin = server.admin("admin", PASSWORD).await?;
    let created = create_node(&server, &admin, "box").await?;
    let id = created.node.id;

    let mut wrong = AgentProcess::start(&server.base_url, "stn_not-a-real-token")?;
    assert_eq!(wrong.wait_exit(Duration::from_secs(20)).await?, Some(3));
    assert!(
        wrong.log().contains("rejected this agent's token"),
        "{}",
        wrong.log()
    );

    let mut agent = AgentProcess::start(&server.base_url, created.token.expose())?;
    wait_status(&server, &admin, id, NodeStatus::Online).await?;
    let rotated: NodeWithToken = server
        .post(&routes::node_rotate_token(id), Some(&admin), &json!({}))
        .await?
        .expect_ok()?;
    assert_ne!(rotated.token, created.token);
    // The running agent learns at its next heartbeat and stops with the documented code.
    assert_eq!(agent.wait_exit(Duration::from_secs(20)).await?, Some(3));
    RawAgent::new(&server, created.token.expose())
        .heartbeat()
        .await?
        .expect_error(401, "NODE_INVALID_TOKEN")?;
    RawAgent::new(&server, rotated.token.expose())
        .heartbeat()
        .await?
        .expect_ok::<serde_json::Value>()?;

    // Protocol version and token headers.
    let post = |headers: Vec<(&'static str, String)>| {
        let mut req = server
            .http()
            .post(server.url(routes::AGENT_HEARTBEAT))
            .json(&json!({}));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move { stowage_tests::Reply::read(req.send().await?).await }
    };
    post(vec![("X-Agent-Token", rotated.token.expose().to_owned())])
        .await?
        .expect_error(426, "AGENT_PROTOCOL_UNSUPPORTED")?;
    // Version 1 agents cannot read the run commands of database tasks.
    for old in ["0", "1"] {
        post(vec![
            ("X-Agent-Token", rotated.token.expose().to_owned()),
            ("X-Stowage-Protocol", old.into()),
        ])
        .await?
        .expect_error(426, "AGENT_PROTOCOL_UNSUPPORTED")?;
    }
    post(vec![(
        "X-Stowage-Protocol",
        stowage_shared::protocol::AGENT_PROTOCOL_VERSION.to_string(),
    )])
    .await?
    .expect_error(401, "NODE_INVALID_TOKEN")?;
    Ok(())
}

#[tokio::test]
async fn agent_waits_for_an_unreachable_server_and_stops_cleanly_on_sigterm() -> Result<()> {
    // A port nothing listens on: bind, note, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut lonely = AgentProcess::start(&format!("http://127.0.0.1:{port}"), "stn_whatever")?;
    lonely
        .wait_for_log("cannot reach the server; retrying", Duration::from_secs(20))
        .await?;
    lonely.signal(Signal::SIGTERM)?;
    assert_eq!(
        lonely.wait_exit(Duration::from_secs(20)).await?,
        Some(0),
        "{}",
        lonely.log()
    );

    let server = Server::start_with(fast()).await?;
    let admin = server.admin("admin", PASSWORD).await?;
    let created = create_node(&server, &admin, "box").await?;
    let mut agent = AgentProcess::start(&server.base_url, created.token.expose())?;
    wait_status(&server, &admin, created.node.id, NodeStatus::Online).await?;
    agent.signal(Signal::SIGTERM)?;
    assert_eq!(
        agent.wait_exit(Duration::from_secs(20)).await?,
        Some(0),
        "{}",
        agent.log()
    );
    assert!(agent.log().contains("stopped"));
    Ok(())
}

#[tokio::test]
async fn heartbeats_listing_a_running_command_keep_its_lease_alive() -> Result<()> {
    let server = Server::start_with(fast()).await?;
    let admin = server.admin("admin", PASSWORD).await?;
    let created = create_node(&server, &admin, "box").await?;
    let raw = RawAgent::new(&server, created.token.expose());
    raw.heartbeat().await?.expect_ok::<serde_json::Value>()?;
    let waiting = server.spawn_get(
        &format!("{}?path=/", routes::node_fs_list(created.node.id)),
        &admin,
    );
    let claimed = eventually("the command", Duration::from_secs(10), || raw.poll()).await?;

    // Work "runs" for well past the 3 s lease, renewed by heartbeats that list it, with ticks in
    // between that would expire it otherwise.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(7) {
        let body = json!({
            "hostname": "raw-agent", "ipAddress": "127.0.0.1", "os": "test", "arch": "test",
            "agentVersion": "0.0.0", "capabilities": {}, "running": [claimed.id]
        });
        let beat: serde_json::Value = raw
            .post(routes::AGENT_HEARTBEAT, &body)
            .await?
            .expect_ok()?;
        assert_eq!(beat["lost"], json!([]), "the lease was renewed");
        server.trigger_cron().await?;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let listing = json!({"path": "/", "entries": [], "truncated": false});
    let accepted: serde_json::Value = raw
        .report(claimed.id, &CommandResult::Succeeded { result: listing })
        .await?
        .expect_ok()?;
    assert_eq!(accepted["recorded"], true);
    // The caller may have given up waiting (RPC_WAIT_SECS is 6), but the work was never lost.
    let reply = waiting.await??;
    ensure!(
        reply.status == 200 || reply.code() == "AGENT_COMMAND_TIMEOUT",
        "{}",
        reply.raw
    );
    let rows = server.query(&format!(
        "SELECT status FROM agent_commands WHERE id = {}",
        claimed.id
    ))?;
    assert_eq!(rows[0]["status"], "succeeded");
    Ok(())
}

/// The agent library's `poll_once` step, driven alone against a real server.
#[tokio::test]
async fn poll_once_is_a_step_that_claims_and_runs_one_command() -> Result<()> {
    use stowage_agent::client::Client;
    use stowage_agent::poll::{Agent, Step};
    use stowage_agent::system::Identity;

    let server = Server::start_with(fast()).await?;
    let admin = server.admin("admin", PASSWORD).await?;
    let created = create_node(&server, &admin, "box").await?;
    let client = Client::new(&server.base_url, created.token.clone())?;
    let agent = Agent::new(
        client,
        Identity::detect(&server.base_url),
        Default::default(),
        Default::default(),
        1,
    );
    let hello = agent.heartbeat_once().await?;
    assert_eq!(hello.node_id, created.node.id);
    assert_eq!(
        agent.intervals().heartbeat,
        Duration::from_secs(1),
        "the server's timings are adopted"
    );
    assert_eq!(agent.poll_once().await?, Step::Idle);

    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("only-file"), b"abc")?;
    let waiting = server.spawn_get(&fs_list_path(created.node.id, dir.path()), &admin);
    let id = eventually("a command to claim", Duration::from_secs(10), || async {
        Ok(match agent.poll_once().await? {
            Step::Started(id) => Some(id),
            _ => None,
        })
    })
    .await?;
    assert!(id > 0);
    let listing: FsListing = waiting.await??.expect_ok()?;
    assert_eq!(listing.entries.len(), 1);
    assert_eq!(listing.entries[0].size, 3);
    Ok(())
}
