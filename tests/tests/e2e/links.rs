//! The agent's link (a WebSocket its node's Durable Object holds): work reaches a linked agent at
//! once, a run keeps its lease when the server goes away and comes back, a silent agent is found
//! out by the object, and an agent of the previous protocol still works over HTTP.

use crate::database_backups::{Lock, local_target, sql};
use anyhow::{Context, Result, ensure};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use stowage_shared::api::{BackupRecordOutput, BackupTaskOutput, NodeOutput, NodeStatus, routes};
use stowage_shared::protocol::{AGENT_PROTOCOL_HEADER, AGENT_TOKEN_HEADER};
use stowage_tests::{AgentProcess, Fleet, Reply, Server, ServerOptions, eventually};

const PASSWORD: &str = "correct horse battery";

fn millis(row: &Value, column: &str) -> Result<i64> {
    let text = row[column]
        .as_str()
        .with_context(|| format!("{column}: {row}"))?;
    let at = stowage_shared::time::parse(text).with_context(|| format!("{column}: {text}"))?;
    Ok(at.timestamp_millis())
}

async fn linked(agent: &AgentProcess, times: usize) -> Result<()> {
    eventually("the agent to link", Duration::from_secs(60), || async {
        Ok((agent.log().matches("linked to the server").count() >= times).then_some(()))
    })
    .await
}

#[tokio::test]
async fn a_linked_agent_claims_queued_work_at_once_not_at_its_next_poll() -> Result<()> {
    // Polling over HTTP would take a minute here: only the wake on the link explains a claim
    // within a second.
    let server = Server::start_with(
        ServerOptions::default()
            .var("HEARTBEAT_SECS", 1)
            .var("POLL_SECS", 60),
    )
    .await?;
    let admin = server.admin("admin", PASSWORD).await?;
    let node: stowage_shared::api::NodeWithToken = server
        .post(routes::NODES, Some(&admin), &json!({"name": "linked"}))
        .await?
        .expect_ok()?;
    let agent = AgentProcess::start(&server.base_url, node.token.expose())?;
    server.wait_online(&admin, node.node.id).await?;
    linked(&agent, 1).await?;

    let mut waits = Vec::new();
    for _ in 0..5 {
        let listed: Value = server
            .get(
                &format!("{}?path=/", routes::node_fs_list(node.node.id)),
                Some(&admin),
            )
            .await?
            .expect_ok()?;
        ensure!(listed["entries"].is_array(), "{listed}");
        // Queued → claimed, as the server recorded both.
        let row = server
            .query("SELECT created_at, claimed_at FROM agent_commands ORDER BY id DESC LIMIT 1")?;
        waits.push(millis(&row[0], "claimed_at")? - millis(&row[0], "created_at")?);
    }
    waits.sort_unstable();
    eprintln!("queued → claimed (ms): {waits:?}");
    ensure!(
        waits[waits.len() / 2] < 1_000,
        "a linked agent must claim within a second: {waits:?} ms"
    );
    ensure!(
        waits.iter().all(|w| *w < 10_000),
        "every claim must come from the wake, not the 60 s poll: {waits:?} ms"
    );
    Ok(())
}

#[tokio::test]
async fn a_run_keeps_its_lease_when_the_server_restarts_under_it() -> Result<()> {
    let Fleet {
        mut server,
        admin,
        node,
        agent,
    } = Fleet::start("restarted").await?;
    linked(&agent, 1).await?;
    let db = format!("stowage_link_{}", std::process::id());
    sql("postgresql", None, &format!("CREATE DATABASE {db}"))?;
    let outcome = async {
        sql(
            "postgresql",
            Some(&db),
            "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);",
        )?;
        let dir = tempfile::tempdir()?;
        let target = local_target(&server, &admin, dir.path()).await?;
        let task: BackupTaskOutput = server
            .post(
                routes::BACKUP_TASKS,
                Some(&admin),
                &json!({"name": "held", "type": "postgresql", "nodeId": node.node.id,
                        "storageTargetIds": [target], "dbUser": "postgres",
                        "dbPassword": "unused", "dbNames": [db]}),
            )
            .await?
            .expect_ok()?;
        // The dump waits on this lock until the test lets it go: the run is in progress for as
        // long as the test needs.
        let lock = Lock::hold(
            "postgresql",
            &db,
            "BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE;",
        )?;
        let started: BackupRecordOutput = server
            .post(&routes::backup_task_run(task.id), Some(&admin), &json!({}))
            .await?
            .expect_ok()?;
        let claimed = eventually("the run to be claimed", Duration::from_secs(30), || {
            let server = &server;
            async move {
                let rows = server.query(
                    "SELECT id, lease_expires_at FROM agent_commands
                     WHERE kind = 'run_backup' AND status = 'claimed'",
                )?;
                Ok(rows.into_iter().next())
            }
        })
        .await?;
        let command = claimed["id"].as_i64().context("id")?;
        let before = millis(&claimed, "lease_expires_at")?;

        // Every object and connection goes; D1 stays.
        server.restart().await?;
        linked(&agent, 2).await?;
        // The new object renews the lease it did not know about at the agent's next heartbeat.
        eventually(
            "the lease to be renewed after the restart",
            Duration::from_secs(30),
            || async {
                let rows = server.query(&format!(
                    "SELECT status, lease_expires_at FROM agent_commands WHERE id = {command}"
                ))?;
                ensure!(
                    rows[0]["status"] == "claimed",
                    "the run lost its claim: {}",
                    rows[0]
                );
                Ok((millis(&rows[0], "lease_expires_at")? > before).then_some(()))
            },
        )
        .await?;
        lock.release("COMMIT;")?;
        let record = server.settled(&admin, started.id, false).await?;
        ensure!(
            record.status.as_str() == "success",
            "the run must succeed: {record:?}"
        );
        let rows = server.query(&format!(
            "SELECT status FROM agent_commands WHERE id = {command}"
        ))?;
        ensure!(rows[0]["status"] == "succeeded", "{}", rows[0]);
        Ok(())
    }
    .await;
    let _ = sql(
        "postgresql",
        None,
        &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
    );
    outcome.map_err(|e| anyhow::anyhow!("{e:#}\nagent log:\n{}", agent.log()))
}

#[tokio::test]
async fn a_frozen_agent_goes_offline_within_the_threshold_and_comes_back() -> Result<()> {
    let server = Server::start_with(
        ServerOptions::default()
            .var("HEARTBEAT_SECS", 1)
            .var("OFFLINE_AFTER_SECS", 3),
    )
    .await?;
    let admin = server.admin("admin", PASSWORD).await?;
    let node: stowage_shared::api::NodeWithToken = server
        .post(routes::NODES, Some(&admin), &json!({"name": "frozen"}))
        .await?
        .expect_ok()?;
    let agent = AgentProcess::start(&server.base_url, node.token.expose())?;
    server.wait_online(&admin, node.node.id).await?;
    linked(&agent, 1).await?;

    // Stopped, not killed: its connection stays open and says nothing, as a hung machine's
    // would. No tick is triggered: the node's object notices the missing pings itself.
    agent.signal(Signal::SIGSTOP)?;
    let frozen = Instant::now();
    let status = || async {
        let n: NodeOutput = server
            .get(&routes::node(node.node.id), Some(&admin))
            .await?
            .expect_ok()?;
        Ok::<_, anyhow::Error>(n.status)
    };
    eventually(
        "the node to be offline",
        Duration::from_secs(90),
        || async { Ok((status().await? == NodeStatus::Offline).then_some(())) },
    )
    .await?;
    // The object's alarm comes once a minute: within the threshold plus a minute (the tick's
    // period), with a few seconds for a busy machine.
    let took = frozen.elapsed();
    eprintln!("offline after {took:?} of silence");
    ensure!(
        took <= Duration::from_secs(3 + 60 + 10),
        "a silent node must be offline within OFFLINE_AFTER_SECS plus a minute, took {took:?}"
    );
    let rows = server.query(&format!(
        "SELECT status FROM nodes WHERE id = {}",
        node.node.id
    ))?;
    ensure!(rows[0]["status"] == "offline", "D1 holds it: {}", rows[0]);

    agent.signal(Signal::SIGCONT)?;
    eventually(
        "the node to be back online",
        Duration::from_secs(60),
        || async { Ok((status().await? == NodeStatus::Online).then_some(())) },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn an_agent_of_the_previous_protocol_still_heartbeats_claims_and_reports() -> Result<()> {
    let server = Server::start_with(ServerOptions::default().var("RPC_WAIT_SECS", 20)).await?;
    let admin = server.admin("admin", PASSWORD).await?;
    let node: stowage_shared::api::NodeWithToken = server
        .post(routes::NODES, Some(&admin), &json!({"name": "old"}))
        .await?
        .expect_ok()?;
    let post = |path: String, body: Value| {
        let req = server
            .http()
            .post(server.url(&path))
            .header(AGENT_TOKEN_HEADER, node.token.expose())
            .header(AGENT_PROTOCOL_HEADER, "2")
            .json(&body);
        async move { Reply::read(req.send().await?).await }
    };
    let hello = json!({"hostname": "old-agent", "ipAddress": "127.0.0.1", "os": "linux",
                       "arch": "x86_64", "agentVersion": "0.0.9", "capabilities": {}});
    let beat: Value = post(routes::AGENT_HEARTBEAT.to_owned(), hello.clone())
        .await?
        .expect_ok()?;
    ensure!(beat["nodeId"] == node.node.id, "{beat}");
    server.wait_online(&admin, node.node.id).await?;

    let waiting = server.spawn_get(
        &format!("{}?path=/", routes::node_fs_list(node.node.id)),
        &admin,
    );
    let claimed = eventually("a command to claim", Duration::from_secs(15), || async {
        let reply = post(routes::AGENT_POLL.to_owned(), json!({})).await?;
        let polled: Value = reply.expect_ok()?;
        Ok((!polled["command"].is_null()).then_some(polled["command"].clone()))
    })
    .await?;
    ensure!(claimed["spec"]["kind"] == "list_dir", "{claimed}");
    let id = claimed["id"].as_i64().context("id")?;
    let done: Value = post(
        routes::agent_command_result(id),
        json!({"outcome": "succeeded",
               "result": {"path": "/", "entries": [], "truncated": false}}),
    )
    .await?
    .expect_ok()?;
    ensure!(done["recorded"] == true, "{done}");
    let listed: Value = waiting.await??.expect_ok()?;
    ensure!(listed["path"] == "/", "{listed}");
    // Its heartbeats keep it online, as before.
    post(routes::AGENT_HEARTBEAT.to_owned(), hello)
        .await?
        .expect_ok::<Value>()?;
    Ok(())
}
