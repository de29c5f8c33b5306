//! The scheduled tick, run by the cron trigger every minute: it marks silent nodes offline, expires
//! lapsed command leases, purges sign-in and OAuth state that can no longer matter and records that it ran.
//! It also starts the scheduled backup runs that are due (`scheduler.rs`), hands out and sends
//! notifications (`notify.rs`), and drops log lines, deliveries and audit rows older than the
//! retention settings.

use crate::config::AppState;
use crate::error::ApiError;
use crate::notify;
use crate::store::{
    audit, commands, logs, nodes, notifications, oauth_sessions, records, relays, restores,
    sessions, settings, system, throttle,
};
use chrono::Duration;
use stowage_shared::time::{self, Timestamp};

/// At most this many nodes are marked offline by one tick (each queues a notification, and an
/// invocation may run 1,000 D1 statements); more wait for the next tick.
const OFFLINE_PER_TICK: i64 = 100;

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
    pub records_handed_out: usize,
    pub notifications: crate::notify::Delivered,
    pub log_lines_purged: usize,
    pub audit_rows_purged: usize,
    pub deliveries_purged: usize,
    pub prunes_started: usize,
    pub prunes_lost: usize,
    pub checks_failed: usize,
    pub checks_started: usize,
}

pub async fn tick(state: &AppState, now: Timestamp) -> Result<TickReport, ApiError> {
    let now_text = time::format(now);
    // Revoked sessions are kept a day so that "signed out" is visible when investigating.
    let revoked_before = time::format(now - Duration::days(1));
    let cutoff = time::format(state.config.throttle.window_cutoff(now));
    let settings = settings::load(&state.db).await?;
    let timings = settings.timings(state.config.timings);
    // The nodes' objects mark a silent node offline themselves; this is the backstop for one
    // whose object never did, judged on `lastSeenAt`, which a live node's object refreshes at
    // least every flush interval. Bounded per tick, like every notification it queues.
    let went_offline = nodes::mark_silent_offline(
        &state.db,
        &time::format(now - timings.offline_after - stowage_shared::link::last_seen_slack()),
        &now_text,
        OFFLINE_PER_TICK,
    )
    .await?;
    for node in &went_offline {
        let last_seen = node.last_seen_at.as_deref().unwrap_or("never");
        crate::ops::fleet::announce(&state.db, node.id, &node.name, false, last_seen, now).await?;
    }
    let mut report = TickReport {
        sessions_purged: sessions::purge(&state.db, &now_text, &revoked_before).await?,
        throttle_rows_purged: throttle::purge(
            &state.db,
            &now_text,
            &cutoff,
            &time::format(now - Duration::days(1)),
        )
        .await?,
        nodes_marked_offline: went_offline.len(),
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
        prunes_lost: crate::ops::prune::fail_lost(&state.db, now).await?,
        checks_failed: crate::store::verifies::fail_lost(&state.db, &now_text).await?,
        // A relay nobody finished within the hour was abandoned.
        relays_purged: relays::purge(&state.db, &time::format(now - Duration::hours(1))).await?,
        // Last: runs started now are not failed as lost by this same tick.
        schedule: crate::scheduler::run_due(state, now).await?,
        ..TickReport::default()
    };
    // After the schedule: a run that is due now is handed out before a prune could hold its
    // repository.
    report.prunes_started = crate::ops::prune::start_due(&state.db, &state.config, now).await?;
    report.checks_started = crate::ops::verifies::start_due(&state.db, &state.config, now).await?;
    // What finished (or failed to start) is handed out, then everything due is sent.
    report.records_handed_out = notify::sweep(state, &settings, now).await?;
    report.notifications = notify::deliver_due(state, now).await?;
    if settings.log_retention_days > 0 {
        let before = time::format(now - Duration::days(i64::from(settings.log_retention_days)));
        report.log_lines_purged = logs::purge(&state.db, &before).await?;
        report.deliveries_purged = notifications::purge(&state.db, &before).await?;
    }
    if settings.audit_retention_days > 0 {
        let before = time::format(now - Duration::days(i64::from(settings.audit_retention_days)));
        report.audit_rows_purged = audit::purge(&state.db, &before).await?;
    }
    // Refusal counts whose window is over: the next refusal starts a new row.
    audit::purge_summaries(&state.db, &now_text).await?;
    system::set_last_tick_at(&state.db, &now_text).await?;
    Ok(report)
}
