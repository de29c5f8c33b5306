//! Command executors: one function per command kind, each turning a spec into a result the
//! server understands. Errors are reported in the API's codes, never as a panic or a dropped command.

pub mod delete_artifacts;
pub mod discover;
pub mod list_dir;
pub mod maintenance;
pub mod relay;
pub mod restore;
pub mod restore_database;
pub mod run_backup;
pub mod storage_test;
pub mod storage_usage;

use crate::client::Client;
use crate::storage::{Tools, rclone};
use stowage_shared::ErrorCode;
use stowage_shared::api::RcloneBackend;
use stowage_shared::protocol::{
    CommandError, CommandReport, CommandResult, CommandSpec, StorageProbe,
};

async fn rclone_backends(tools: &Tools) -> Result<Vec<RcloneBackend>, CommandError> {
    let bin = tools.rclone.as_ref().ok_or_else(|| CommandError {
        code: ErrorCode::NodeMissingTool,
        message: "rclone is not installed on this node (or not on the agent's PATH / --rclone)"
            .to_owned(),
    })?;
    rclone::backends(bin).await.map_err(|e| CommandError {
        code: ErrorCode::NodeMissingTool,
        message: e.to_string(),
    })
}

/// Runs one command. `client` carries live logs of runs and restores to the server (`None` in
/// tests that drive an executor alone).
pub async fn execute(
    spec: &CommandSpec,
    tools: &Tools,
    client: Option<&Client>,
) -> CommandResult<CommandReport> {
    let outcome = match spec {
        CommandSpec::ListDir { path } => list_dir::list_dir(path, &tools.paths)
            .await
            .map(CommandReport::ListDir),
        CommandSpec::StorageTest {
            storage_type,
            config,
        } => storage_test::storage_test(*storage_type, config, tools)
            .await
            .map(|latency_ms| CommandReport::StorageTest(StorageProbe { latency_ms })),
        CommandSpec::StorageUsage {
            storage_type,
            config,
        } => storage_usage::storage_usage(*storage_type, config, tools)
            .await
            .map(CommandReport::StorageUsage),
        CommandSpec::RunBackup {
            record_id,
            task_id,
            task_name,
            node_name,
            spec,
            db_password,
            destinations,
        } => run_backup::run_backup(
            &run_backup::Run {
                record_id: *record_id,
                task_id: *task_id,
                task_name,
                node_name,
                spec,
                db_password: db_password.as_ref(),
            },
            destinations,
            tools,
            client,
        )
        .await
        .map(CommandReport::RunBackup),
        CommandSpec::DeleteArtifacts { objects } => Ok(CommandReport::DeleteArtifacts(
            delete_artifacts::delete_artifacts(objects, tools).await,
        )),
        CommandSpec::DiscoverDatabases { connection } => discover::discover(connection)
            .await
            .map(CommandReport::DiscoverDatabases),
        CommandSpec::Relay {
            relay_id,
            source,
            entry,
        } => relay::relay(*relay_id, source, entry.as_deref(), tools, client)
            .await
            .map(CommandReport::Relay),
        CommandSpec::Restore {
            restore_id,
            source,
            sha256,
            bytes,
            compression,
            destination,
            selected_paths,
        } => restore::run(
            &restore::Job {
                restore_id: *restore_id,
                source,
                sha256,
                bytes: *bytes,
                compression: *compression,
                destination: destination.as_deref(),
                selected_paths,
            },
            tools,
            client,
        )
        .await
        .map(CommandReport::Restore),
        CommandSpec::RestoreDatabase {
            restore_id,
            source,
            sha256,
            bytes,
            compression,
            target,
        } => restore_database::run(
            &restore_database::Job {
                restore_id: *restore_id,
                source,
                sha256,
                bytes: *bytes,
                compression: *compression,
                target,
            },
            tools,
            client,
        )
        .await
        .map(CommandReport::Restore),
        CommandSpec::PruneRepository {
            target_id: _,
            storage_type,
            config,
            path,
            password,
        } => maintenance::prune(
            &maintenance::Repo {
                storage_type: *storage_type,
                config,
                path,
                password,
            },
            tools,
        )
        .await
        .map(CommandReport::PruneRepository),
        CommandSpec::VerifyArchive {
            verify_id,
            source,
            sha256,
            bytes,
            compression,
        } => maintenance::verify_archive(
            &maintenance::ArchiveCheck {
                verify_id: *verify_id,
                source,
                sha256,
                bytes: *bytes,
                compression: *compression,
            },
            tools,
            client,
        )
        .await
        .map(CommandReport::Verify),
        CommandSpec::VerifyRepository {
            verify_id,
            storage_type,
            config,
            path,
            password,
            snapshot_id,
            read_data_percent,
        } => maintenance::verify(
            &maintenance::Repo {
                storage_type: *storage_type,
                config,
                path,
                password,
            },
            (*verify_id, snapshot_id.as_deref(), *read_data_percent),
            tools,
            client,
        )
        .await
        .map(CommandReport::Verify),
        CommandSpec::ListSnapshot { source, path } => {
            maintenance::list_snapshot(source, path, tools)
                .await
                .map(CommandReport::ListSnapshot)
        }
        CommandSpec::RcloneBackends => rclone_backends(tools)
            .await
            .map(CommandReport::RcloneBackends),
    };
    match outcome {
        Ok(result) => CommandResult::Succeeded { result },
        Err(error) => CommandResult::Failed { error },
    }
}
