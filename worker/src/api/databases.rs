//! `POST /api/database/discover`: the databases a connection can see, listed by an agent (the
//! Worker cannot reach database servers; the nodes can). The connection, password included,
//! travels only inside the sealed command.

use super::Ctx;
use crate::config::AppState;
use crate::error::ApiError;
use crate::http;
use crate::ops::fleet::{Needs, choose_online};
use stowage_shared::ErrorCode;
use stowage_shared::api::Role;
use stowage_shared::databases::{DiscoverOutput, DiscoverRequest};
use stowage_shared::protocol::CommandReport;
use stowage_shared::protocol::CommandSpec;
use worker::Response;

pub async fn discover(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, _) = ctx.signed_in(Role::Operator).await?;
    let sealer = config.sealer()?;
    let body: DiscoverRequest = http::read_json(
        &mut ctx.req,
        config.max_json_body,
        ErrorCode::DatabaseConnectionInvalid,
    )
    .await?;
    let connection = body
        .connection()
        .map_err(|e| ApiError::new(ErrorCode::DatabaseConnectionInvalid, e.to_string()))?;
    let node_id = choose_online(
        &db,
        &config,
        ctx.now,
        body.node_id,
        Needs::Tools(connection.engine.client_tools()),
    )
    .await?;
    let answer = crate::ops::commands::call(
        &db,
        &config.links,
        &sealer,
        node_id,
        &CommandSpec::DiscoverDatabases { connection },
        config.timings.rpc_wait,
        ctx.now,
        crate::ops::commands::ErrorPolicy {
            passes: &[ErrorCode::DatabaseConnectFailed, ErrorCode::NodeMissingTool],
            fallback: ErrorCode::DatabaseConnectFailed,
        },
    )
    .await?;
    let databases = match answer {
        CommandReport::DiscoverDatabases(databases) => databases,
        other => return Err(crate::ops::commands::unexpected(&other)),
    };
    http::ok(&DiscoverOutput { node_id, databases })
}
