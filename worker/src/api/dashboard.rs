//! `/api/dashboard`: the fleet at a glance. Every figure is an aggregate query (see
//! `store::dashboard`); only whether a scheduled task is overdue is decided here, by `shared`.

use super::Ctx;
use crate::config::AppState;
use crate::error::ApiError;
use crate::http;
use crate::store::dashboard::{self as store, StatusCount, TaskHealth};
use chrono::Duration;
use std::collections::BTreeMap;
use stowage_shared::ErrorCode;
use stowage_shared::api::{
    Activity, DashboardStats, DashboardTimeline, Role, StatusCounts, TargetUsage, TaskAttention,
    TimelineDay,
};
use stowage_shared::schedule::{Schedule, overdue};
use stowage_shared::status::RunStatus;
use stowage_shared::time::{self, Timestamp};
use worker::Response;

/// `?days=N`: 1 to 366, 30 when absent; anything else is refused, not coerced.
fn days(ctx: &Ctx<'_>) -> Result<u32, ApiError> {
    let Some(raw) = ctx.query("days")? else {
        return Ok(30);
    };
    raw.trim()
        .parse::<u32>()
        .ok()
        .filter(|d| (1..=366).contains(d))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::DashboardTimelineInvalid,
                format!("days must be a whole number from 1 to 366 (got {raw:?})"),
            )
        })
}

/// The first instant of the UTC day `days - 1` days before `now`'s.
fn window_start(now: Timestamp, days: u32) -> Timestamp {
    let today = now.date_naive();
    let first = today - Duration::days(i64::from(days) - 1);
    first.and_hms_opt(0, 0, 0).map_or(now, |t| t.and_utc())
}

fn add(counts: &mut StatusCounts, status: RunStatus, n: u64) {
    counts.total += n;
    match status {
        RunStatus::Success => counts.success += n,
        RunStatus::Partial => counts.partial += n,
        RunStatus::Failed => counts.failed += n,
        RunStatus::Running => counts.running += n,
    }
}

fn counts(rows: &[StatusCount]) -> StatusCounts {
    let mut c = StatusCounts::default();
    for r in rows {
        add(&mut c, r.status, r.n.unsigned_abs());
    }
    c
}

fn attention(t: &TaskHealth, expected_by: Option<Timestamp>) -> TaskAttention {
    TaskAttention {
        task_id: t.id,
        task_name: t.name.clone(),
        node_id: t.node_id,
        last_run_at: t.last_run_at.clone(),
        last_success_at: t.last_success_at.clone(),
        expected_by: expected_by.map(time::format),
    }
}

fn overdue_by(t: &TaskHealth, now: Timestamp) -> Option<Timestamp> {
    if t.enabled == 0 || t.cron_expr.is_empty() {
        return None;
    }
    let schedule = Schedule::parse(&t.cron_expr, &t.time_zone).ok()?;
    let created = time::parse(&t.created_at)?;
    let last_success = t.last_success_at.as_deref().and_then(time::parse);
    overdue(&schedule, created, last_success, now)
}

pub async fn stats(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, _) = ctx.signed_in(Role::Viewer).await?;
    let days = days(&ctx)?;
    let since = time::format(window_start(ctx.now, days));
    let timings = crate::store::settings::load(&db)
        .await?
        .timings(config.timings);
    // As `fleet::status` judges a node: its row, unless lastSeenAt is older than the node's
    // object could leave it for a live node.
    let seen_since =
        time::format(ctx.now - timings.offline_after - stowage_shared::link::last_seen_slack());
    let tasks = store::task_counts(&db).await?;
    let records = counts(&store::records_by_status(&db, &since).await?);
    let totals = store::totals(&db, &seen_since).await?;
    let usage = store::usage_by_target(&db).await?;
    let health = store::tasks_needing_a_look(&db).await?;
    let finished = records.success + records.partial + records.failed;
    let nodes_online = totals.nodes_online.unwrap_or(0).unsigned_abs();
    http::ok(&DashboardStats {
        days,
        total_tasks: tasks.total.unsigned_abs(),
        enabled_tasks: tasks.enabled.unwrap_or(0).unsigned_abs(),
        success_rate: (finished > 0)
            .then(|| (records.success as f64 / finished as f64 * 10_000.0).round() / 10_000.0),
        records,
        bytes_protected: totals.bytes_protected.unwrap_or(0).unsigned_abs(),
        storage_usage: usage
            .into_iter()
            .map(|u| TargetUsage {
                storage_target_id: u.target_id,
                target_name: u.target_name,
                objects: u.objects.unsigned_abs(),
                bytes: u.bytes.unwrap_or(0).unsigned_abs(),
            })
            .collect(),
        nodes_online,
        nodes_offline: totals
            .nodes_total
            .unsigned_abs()
            .saturating_sub(nodes_online),
        last_backup_at: totals.last_backup_at,
        failing_tasks: health
            .iter()
            .filter(|t| t.last_status == Some(RunStatus::Failed))
            .map(|t| attention(t, None))
            .collect(),
        overdue_tasks: health
            .iter()
            .filter_map(|t| overdue_by(t, ctx.now).map(|at| attention(t, Some(at))))
            .collect(),
    })
}

/// `GET /api/dashboard/timeline?days=N`: one entry per UTC day of the window, oldest first (days
/// without runs included), and the 20 newest runs and restores.
pub async fn timeline(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    let days = days(&ctx)?;
    let start = window_start(ctx.now, days);
    let rows = store::by_day(&db, &time::format(start)).await?;
    let mut by_day: BTreeMap<String, TimelineDay> = (0..days)
        .map(|i| {
            let date = (start + Duration::days(i64::from(i)))
                .format("%Y-%m-%d")
                .to_string();
            let day = TimelineDay {
                date: date.clone(),
                counts: StatusCounts::default(),
                bytes: 0,
            };
            (date, day)
        })
        .collect();
    for r in rows {
        if let Some(day) = by_day.get_mut(&r.day) {
            add(&mut day.counts, r.status, r.n.unsigned_abs());
            day.bytes += r.bytes.unwrap_or(0).unsigned_abs();
        }
    }
    let recent = store::recent_activity(&db, 20).await?;
    http::ok(&DashboardTimeline {
        days: by_day.into_values().collect(),
        recent_activity: recent
            .into_iter()
            .map(|a| Activity {
                kind: a.kind,
                id: a.id,
                task_name: a.task_name,
                node_id: a.node_id,
                status: a.status,
                bytes: a.bytes.unsigned_abs(),
                started_at: a.started_at,
                finished_at: a.finished_at,
            })
            .collect(),
    })
}
