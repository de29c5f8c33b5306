//! The scheduled tick, run by the cron trigger every minute: it marks silent nodes offline, expires
//! lapsed command leases, purges sign-in and OAuth state that can no longer matter and records that it ran.
//! It also starts the scheduled backup runs that are due (`scheduler.rs`).

use crate::config::AppState;
use crate::error::ApiError;
use crate::store::{
    commands, nodes, oauth_sessions, records, relays, restores, sessions, system, throttle,
};
use chrono::Duration;
use stowage_shared::time::{self, Timestamp};

/// What one tick did, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    pub sessions_purged: usize,
    pub throttle_rows_purged: usize,
    pub nodes_marked_offline: usize,
    pub leases_expired: usize,
    pub oauth_sessions_purged: usize,
    pub records_failed: usize,
    pub restores_failed: usize,
    pub relays_purged: usize,
    pub schedule: crate::scheduler::Scheduled,
}

pub async fn tick(state: &AppState, now: Timestamp) -> Result<TickReport, ApiError> {
    let now_text = time::format(now);
    // Revoked sessions are kept a day so that "signed out" is visible when investigating.
    let revoked_before = time::format(now - Duration::days(1));
    let cutoff = time::format(state.config.throttle.window_cutoff(now));
    let report = TickReport {
        sessions_purged: sessions::purge(&state.db, &now_text, &revoked_before).await?,
        throttle_rows_purged: throttle::purge(&state.db, &now_text, &cutoff).await?,
        nodes_marked_offline: nodes::mark_silent_offline(
            &state.db,
            &time::format(now - state.config.timings.offline_after),
            &now_text,
        )
        .await?,
        leases_expired: commands::expire_lapsed(&state.db, &now_text).await?
            + commands::expire_runs_of_offline_nodes(&state.db, &now_text).await?,
        oauth_sessions_purged: oauth_sessions::purge_expired(&state.db, &now_text).await?,
        // After the leases: a run whose command just expired fails in the same tick.
        records_failed: records::fail_lost(
            &state.db,
            &now_text,
            &time::format(now - Duration::minutes(1)),
        )
        .await?,
        restores_failed: restores::fail_lost(&state.db, &now_text).await?,
        // A relay nobody finished within the hour was abandoned.
        relays_purged: relays::purge(&state.db, &time::format(now - Duration::hours(1))).await?,
        // Last: runs started now are not failed as lost by this same tick.
        schedule: crate::scheduler::run_due(state, now).await?,
    };
    system::set_last_tick_at(&state.db, &now_text).await?;
    Ok(report)
}
