//! Command executors: one function per command kind, each turning a spec into a result the
//! server understands. Errors are reported in the API's codes, never as a panic or a dropped command.

pub mod list_dir;
pub mod storage_test;
pub mod storage_usage;

use crate::storage::Tools;
use stowage_shared::api::{CommandResult, CommandSpec};

pub async fn execute(spec: &CommandSpec, tools: &Tools) -> CommandResult {
    let outcome = match spec {
        CommandSpec::ListDir { path } => list_dir::list_dir(path)
            .await
            .and_then(|listing| serde_json::to_value(listing).map_err(list_dir::encode_error)),
        CommandSpec::StorageTest {
            storage_type,
            config,
        } => storage_test::storage_test(*storage_type, config, tools)
            .await
            .map(|ms| serde_json::json!({ "latencyMs": ms })),
        CommandSpec::StorageUsage {
            storage_type,
            config,
        } => storage_usage::storage_usage(*storage_type, config, tools)
            .await
            .and_then(|usage| serde_json::to_value(usage).map_err(list_dir::encode_error)),
    };
    match outcome {
        Ok(result) => CommandResult::Succeeded { result },
        Err(error) => CommandResult::Failed { error },
    }
}
