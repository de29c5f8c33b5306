//! The fleet at a glance: counts, a 30-day chart of runs by status and bytes, what needs a look,
//! and recent activity.

use crate::api::{self, Failure};
use crate::format;
use crate::i18n::{t, text, use_lang};
use crate::pages::records::status_key;
use crate::widgets::ErrorNote;
use leptos::prelude::*;
use stowage_shared::api::{DashboardStats, DashboardTimeline, TaskAttention, TimelineDay, routes};

async fn load() -> Result<(DashboardStats, DashboardTimeline), Failure> {
    let stats = api::get::<DashboardStats>(routes::DASHBOARD_STATS).await?;
    let timeline =
        api::get::<DashboardTimeline>(&format!("{}?days=30", routes::DASHBOARD_TIMELINE)).await?;
    Ok((stats, timeline))
}

#[component]
pub fn Dashboard() -> impl IntoView {
    // An ended session is handled for every page by `api::call`.
    let data = LocalResource::new(load);
    view! {
        <h1>{t("nav.dashboard")}</h1>
        {move || match data.get() {
            None => view! { <p class="hint">{t("loading")}</p> }.into_any(),
            Some(Err(failure)) => view! { <ErrorNote failure /> }.into_any(),
            Some(Ok((stats, timeline))) => view! { <Overview stats timeline /> }.into_any(),
        }}
    }
}

#[component]
fn Overview(stats: DashboardStats, timeline: DashboardTimeline) -> impl IntoView {
    let lang = use_lang();
    let rate = stats
        .success_rate
        .map_or_else(|| "—".to_owned(), |r| format!("{:.1} %", r * 100.0));
    let last = stats.last_backup_at.clone();
    let empty = timeline.recent_activity.is_empty();
    view! {
        <div class="cards">
            <div class="card stat" id="stat-tasks">
                <span class="label">{t("dash.tasks")}</span>
                <span class="value">{stats.total_tasks}</span>
                <span class="sub">{stats.enabled_tasks} " " {t("dash.enabled")}</span>
            </div>
            <div class="card stat" id="stat-rate">
                <span class="label">{t("dash.success_rate")}</span>
                <span class="value">{rate}</span>
                <span class="sub">{stats.records.success} " / " {stats.records.total}</span>
            </div>
            <div class="card stat" id="stat-bytes">
                <span class="label">{t("dash.protected")}</span>
                <span class="value">{format::bytes(stats.bytes_protected)}</span>
            </div>
            <div class="card stat" id="stat-nodes">
                <span class="label">{t("dash.nodes")}</span>
                <span class="value">{stats.nodes_online} " " {t("dash.online")}</span>
                <span class="sub">{stats.nodes_offline} " " {t("dash.offline")}</span>
            </div>
            <div class="card stat" id="stat-last">
                <span class="label">{t("dash.last_backup")}</span>
                <span class="value small">{move || last.clone().unwrap_or_else(|| text(lang.get(), "dash.never"))}</span>
            </div>
        </div>
        <section class="card">
            <h2>{t("dash.chart")}</h2>
            <Chart days=timeline.days.clone() />
        </section>
        <div class="columns">
            <Attention title="dash.failing" id="failing" tasks=stats.failing_tasks.clone() />
            <Attention title="dash.overdue" id="overdue" tasks=stats.overdue_tasks.clone() />
        </div>
        <section class="card">
            <h2>{t("dash.recent")}</h2>
            {if empty {
                view! { <p class="empty">{t("dash.empty")}</p> }.into_any()
            } else {
                view! {
                    <table id="recent">
                        <tbody>
                            {timeline.recent_activity.into_iter().map(|a| {
                                let status_key = status_key(a.status.as_str());
                                view! {
                                    <tr>
                                        <td>{a.kind.as_str()}</td>
                                        <td>{a.task_name}</td>
                                        <td class=format!("status {}", a.status)>{t(status_key)}</td>
                                        <td>{format::bytes(a.bytes)}</td>
                                        <td>{a.started_at}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn Attention(title: &'static str, id: &'static str, tasks: Vec<TaskAttention>) -> impl IntoView {
    view! {
        <section class="card" id=id>
            <h2>{t(title)}</h2>
            {if tasks.is_empty() {
                view! { <p class="empty">{t("dash.none")}</p> }.into_any()
            } else {
                view! {
                    <ul>
                        {tasks.into_iter().map(|task| view! {
                            <li>{task.task_name} <span class="sub">{task.last_run_at.unwrap_or_default()}</span></li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
    }
}

/// One bar per day, success below failures (partial in between); the title shows the figures.
#[component]
fn Chart(days: Vec<TimelineDay>) -> impl IntoView {
    const HEIGHT: f64 = 120.0;
    const BAR: f64 = 16.0;
    let most = days
        .iter()
        .map(|d| d.counts.total)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let width = days.len() as f64 * (BAR + 4.0);
    let bars = days
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let x = i as f64 * (BAR + 4.0);
            let scale = |n: u64| n as f64 / most * HEIGHT;
            let (ok, part, bad) = (
                scale(d.counts.success),
                scale(d.counts.partial),
                scale(d.counts.failed),
            );
            let title = format!(
                "{}: {} ok, {} partial, {} failed, {}",
                d.date,
                d.counts.success,
                d.counts.partial,
                d.counts.failed,
                format::bytes(d.bytes)
            );
            view! {
                <g data-date=d.date.clone()>
                    <title>{title}</title>
                    <rect class="ok" x=x y=HEIGHT - ok width=BAR height=ok />
                    <rect class="partial" x=x y=HEIGHT - ok - part width=BAR height=part />
                    <rect class="bad" x=x y=HEIGHT - ok - part - bad width=BAR height=bad />
                </g>
            }
        })
        .collect_view();
    view! {
        <svg id="chart" class="chart" viewBox=format!("0 0 {width} {HEIGHT}") preserveAspectRatio="none" role="img">
            {bars}
        </svg>
    }
}
