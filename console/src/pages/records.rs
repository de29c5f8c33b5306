//! Backup records: a filterable, paginated list with bulk delete, and each record's page (its
//! targets, live log and progress, download, restore and delete).

use crate::api::{self, Failure};
use crate::format;
use crate::i18n::{t, text, use_lang};
use crate::live::{self, Live};
use crate::widgets::{ErrorNote, Pager, confirm};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};
use std::collections::BTreeSet;
use stowage_shared::api::{
    BackupRecordOutput, BackupTaskOutput, BatchDeleteRequest, BatchDeleted, Deleted, FsListing,
    NodeOutput, Page, Progress, RestoreRecordOutput, RestoreRequest, VerifyRecordOutput, routes,
};
use stowage_shared::status::{BackupFormat, RunStatus, TargetStatus};

const PAGE_SIZE: u64 = 20;
const STATUSES: [RunStatus; 4] = RunStatus::ALL;

/// The list's query string for a filter and page.
fn query(status: &str, task: &str, from: &str, to: &str, page: u64) -> String {
    let mut q = format!("?page={page}&pageSize={PAGE_SIZE}");
    if !status.is_empty() {
        q.push_str(&format!("&status={status}"));
    }
    if !task.is_empty() {
        q.push_str(&format!("&taskId={task}"));
    }
    // Dates are whole days in UTC, the end day included.
    if !from.is_empty() {
        q.push_str(&format!("&dateFrom={from}T00:00:00Z"));
    }
    if !to.is_empty() {
        q.push_str(&format!("&dateTo={to}T23:59:59Z"));
    }
    q
}

pub fn status_key(status: &str) -> &'static str {
    match status {
        "success" => "status.success",
        "failed" => "status.failed",
        "partial" => "status.partial",
        "deleted" => "status.deleted",
        _ => "status.running",
    }
}

#[component]
pub fn Records() -> impl IntoView {
    let status = RwSignal::new(String::new());
    let task = RwSignal::new(String::new());
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let page = RwSignal::new(1_u64);
    let selected = RwSignal::new(BTreeSet::<i64>::new());
    let error = RwSignal::new(None::<Failure>);
    let tasks = LocalResource::new(|| api::get::<Vec<BackupTaskOutput>>(routes::BACKUP_TASKS));
    let records = LocalResource::new(move || {
        let q = query(
            &status.get(),
            &task.get(),
            &from.get(),
            &to.get(),
            page.get(),
        );
        async move {
            api::get::<Page<BackupRecordOutput>>(&format!("{}{q}", routes::BACKUP_RECORDS)).await
        }
    });
    // A new filter starts again on page 1 with nothing selected.
    let refilter = move |s: RwSignal<String>, v: String| {
        s.set(v);
        page.set(1);
        selected.set(BTreeSet::new());
    };
    let delete_selected = move |_| {
        let ids: Vec<i64> = selected.get_untracked().into_iter().collect();
        if ids.is_empty()
            || !confirm(&format!(
                "Delete {} backups and their stored files?",
                ids.len()
            ))
        {
            return;
        }
        leptos::task::spawn_local(async move {
            let body = BatchDeleteRequest { ids };
            match api::post::<BatchDeleted>(routes::BACKUP_RECORDS_BATCH_DELETE, &body).await {
                Ok(_) => {
                    error.set(None);
                    selected.set(BTreeSet::new());
                    records.refetch();
                }
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    let lang = use_lang();
    view! {
        <h1>{t("nav.records")}</h1>
        <section class="card">
            <form class="row filters" on:submit=|ev| ev.prevent_default()>
                <label>{t("records.status")}
                    <select id="filter-status" on:change=move |ev| refilter(status, event_target_value(&ev))>
                        <option value="">{t("records.any")}</option>
                        {STATUSES.iter().map(|s| view! { <option value=s.as_str()>{t(status_key(s.as_str()))}</option> }).collect_view()}
                    </select>
                </label>
                <label>{t("records.task")}
                    <select id="filter-task" on:change=move |ev| refilter(task, event_target_value(&ev))>
                        <option value="">{t("records.any")}</option>
                        {move || tasks.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|task| view! {
                            <option value=task.id.to_string()>{task.name}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label>{t("records.from")}<input id="filter-from" type="date" on:change=move |ev| refilter(from, event_target_value(&ev)) /></label>
                <label>{t("records.to")}<input id="filter-to" type="date" on:change=move |ev| refilter(to, event_target_value(&ev)) /></label>
            </form>
        </section>
        {move || error.get().map(|failure| view! { <ErrorNote failure /> })}
        <section class="card">
            {move || match records.get() {
                None => view! { <p class="hint">{t("loading")}</p> }.into_any(),
                Some(Err(failure)) => view! { <ErrorNote failure /> }.into_any(),
                Some(Ok(list)) if list.items.is_empty() => view! { <p class="empty">{t("records.empty")}</p> }.into_any(),
                Some(Ok(list)) => {
                    let pages = list.total.div_ceil(PAGE_SIZE).max(1);
                    let here = list.page;
                    view! {
                        <div class="row">
                            <button id="delete-selected" class="link delete" disabled=move || selected.get().is_empty() on:click=delete_selected>
                                {t("records.delete_selected")} " (" {move || selected.get().len()} ")"
                            </button>
                        </div>
                        <table id="records">
                            <thead><tr>
                                <th></th><th>"#"</th><th>{t("records.task")}</th><th>{t("records.status")}</th>
                                <th>{t("records.started")}</th><th>{t("records.took")}</th><th>{t("records.size")}</th>
                            </tr></thead>
                            <tbody>
                                {list.items.into_iter().map(|r| {
                                    let id = r.id;
                                    let status = r.status.as_str();
                                    let class = format!("status {status}");
                                    view! {
                                        <tr data-id=id.to_string()>
                                            <td><input type="checkbox" class="select" aria-label="select"
                                                prop:checked=move || selected.get().contains(&id)
                                                on:change=move |ev| {
                                                    let on = event_target_checked(&ev);
                                                    selected.update(|s| { if on { s.insert(id); } else { s.remove(&id); } });
                                                } /></td>
                                            <td><a href=format!("/backup-records/{id}")>{id}</a></td>
                                            <td>{r.task_name.clone()} " " <span class="sub">{r.trigger.as_str()}</span></td>
                                            <td class=class>{move || text(lang.get(), status_key(status))}</td>
                                            <td>{format::when(&r.started_at)}</td>
                                            <td>{format::took(&r.started_at, r.finished_at.as_deref()).unwrap_or_default()}</td>
                                            <td>{format::bytes(r.bytes)}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                        <Pager page_of_id="page-of" here pages total=list.total go=move |p| page.set(p) />
                    }.into_any()
                }
            }}
        </section>
    }
}

/// One record: what it did, where it went, its log as it is written, and what can be done
/// with it.
#[component]
pub fn RecordPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || {
        params
            .read()
            .get("id")
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let record = LocalResource::new(move || {
        let id = id();
        async move { api::get::<BackupRecordOutput>(&routes::backup_record(id)).await }
    });
    // The log is followed once per record, not once per reading of it: the record is read again
    // when its stream ends, and that must not start the log over.
    let live = Live::new();
    Effect::new(move |_| {
        let id = id();
        live.reset();
        live::follow(routes::backup_record_logs(id), live);
    });
    view! {
        {move || match record.get() {
            None => view! { <p class="hint">{t("loading")}</p> }.into_any(),
            Some(Err(failure)) => view! { <ErrorNote failure /> }.into_any(),
            Some(Ok(r)) => view! { <RecordView record=r live reload=move || record.refetch() /> }.into_any(),
        }}
    }
}

#[component]
fn RecordView(
    record: BackupRecordOutput,
    live: Live,
    reload: impl Fn() + Copy + 'static,
) -> impl IntoView {
    let lang = use_lang();
    let id = record.id;
    if live.progress.get_untracked().is_none() {
        live.progress.set(record.progress.clone());
    }
    let running = record.status == RunStatus::Running;
    // The stream's end means the record changed: read it again for its figures.
    Effect::new(move |was: Option<bool>| {
        let ended = live.end.get().is_some();
        if running && ended && was != Some(true) {
            reload();
        }
        ended
    });
    // A running backup's total is unknown: the task's last successful run gives an estimate.
    let last_run = RwSignal::new(None::<u64>);
    if let (true, Some(task)) = (running, record.task_id) {
        leptos::task::spawn_local(async move {
            let q = format!(
                "{}?taskId={task}&status=success&pageSize=1",
                routes::BACKUP_RECORDS
            );
            if let Ok(page) = api::get::<Page<BackupRecordOutput>>(&q).await {
                let _ = last_run.try_set(page.items.first().map(|r| r.source_bytes));
            }
        });
    }
    let status = record.status.to_string();
    let error = RwSignal::new(None::<Failure>);
    let navigate = use_navigate();
    let remove = move |_| {
        if !confirm(&format!("Delete backup #{id} and its stored files?")) {
            return;
        }
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match api::call::<Deleted>("DELETE", &routes::backup_record(id), None::<&()>).await {
                Ok(_) => navigate("/backup-records", Default::default()),
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    let download = move |_| {
        leptos::task::spawn_local(async move {
            match api::ticketed(&routes::backup_record_download(id)).await {
                Ok(url) => {
                    error.set(None);
                    crate::widgets::open_download(&url);
                }
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    let restoring = RwSignal::new(false);
    let restore = RwSignal::new(None::<RestoreRecordOutput>);
    // Files and folders picked in the snapshot browser, for a selective restore.
    let picked = RwSignal::new(BTreeSet::<String>::new());
    // A repository record's check: started here, followed until it ends.
    let checking = RwSignal::new(None::<Result<VerifyRecordOutput, Failure>>);
    // Its live log, followed from the moment it starts.
    let check_log = RwSignal::new(None::<i64>);
    let verify = move |_| {
        leptos::task::spawn_local(async move {
            let started = api::post::<VerifyRecordOutput>(
                &routes::backup_record_verify(id),
                &serde_json::json!({}),
            )
            .await;
            let mut check = match started {
                Ok(check) => {
                    check_log.set(Some(check.id));
                    check
                }
                Err(failure) => {
                    checking.set(Some(Err(failure)));
                    return;
                }
            };
            while checking.try_set(Some(Ok(check.clone()))).is_none()
                && check.status == RunStatus::Running
            {
                crate::widgets::pause(1000).await;
                match api::get::<VerifyRecordOutput>(&routes::verify_record(check.id)).await {
                    Ok(next) => check = next,
                    Err(failure) => {
                        let _ = checking.try_set(Some(Err(failure)));
                        return;
                    }
                }
            }
        });
    };
    let finished = record.status.has_backup();
    let can_restore = finished && record.removed_at.is_none();
    let record_for_dialog = record.clone();
    // A snapshot is restored (or read with restic), not downloaded as one file.
    let downloadable = record.format == BackupFormat::Archive;
    view! {
        <p><a href="/backup-records">"‹ " {t("nav.records")}</a></p>
        <h1>{record.task_name.clone()} " #" {id}</h1>
        <section class="card">
            <dl class="facts">
                <dt>{t("records.status")}</dt>
                <dd id="record-status" class=move || format!("status {}", live.end.get().unwrap_or_else(|| status.clone()))>
                    {move || text(lang.get(), status_key(&live.end.get().unwrap_or_else(|| record.status.to_string())))}
                </dd>
                <dt>{t("records.started")}</dt><dd>{format::when(&record.started_at)} " · " {record.trigger.as_str()}</dd>
                <dt>{t("records.took")}</dt><dd>{format::took(&record.started_at, record.finished_at.as_deref()).unwrap_or_else(|| "—".to_owned())}</dd>
                <dt>{t("records.size")}</dt><dd id="record-bytes" data-bytes=record.bytes.to_string()>
                    {format::bytes(record.bytes)} " · " {record.files} " " {t("records.files")}
                    " · " {t("records.source")} " " {format::bytes(record.source_bytes)}
                </dd>
                {(!record.checksum.is_empty()).then(|| view! {
                    <dt>"SHA-256"</dt><dd><code id="record-checksum">{record.checksum.clone()}</code></dd>
                })}
                {(!record.databases.is_empty()).then(|| view! {
                    <dt>{t("records.databases")}</dt><dd>{record.databases.join(", ")}</dd>
                })}
                {record.changes.map(|c| view! {
                    <dt>{t("records.changes")}</dt>
                    <dd id="record-changes">{c.files_new} " " {t("records.new")} " · " {c.files_changed} " " {t("records.changed")} " · " {c.files_unmodified} " " {t("records.unmodified")}</dd>
                })}
                {record.removed_at.clone().map(|at| view! {
                    <dt>{t("records.removed")}</dt><dd>{format::when(&at)} " · " {record.removal.clone()}</dd>
                })}
            </dl>
            {(!record.error.is_empty()).then(|| view! { <p class="error" role="alert">{record.error.clone()}</p> })}
            {move || live.end.get().is_none().then(|| view! { <ProgressView progress=live.progress last_run /> })}
            <div class="row">
                {(can_restore && downloadable).then(|| view! {
                    <button id="download" on:click=download>{t("records.download")}</button>
                })}
                {can_restore.then(|| view! {
                    <button id="restore" on:click=move |_| restoring.set(true)>{t("records.restore")}</button>
                })}
                {can_restore.then(|| view! {
                    <button id="verify" class="link" on:click=verify>{t("records.verify")}</button>
                })}
                <button id="delete-record" class="link delete" disabled=running on:click=remove>{t("action.delete")}</button>
            </div>
            {move || error.get().map(|failure| view! { <ErrorNote failure /> })}
            {move || checking.get().map(|c| match c {
                Ok(check) => view! { <CheckView check /> }.into_any(),
                Err(failure) => view! { <ErrorNote failure /> }.into_any(),
            })}
            {move || check_log.get().map(|check| view! { <CheckLog check /> })}
        </section>
        <section class="card">
            <h2>{t("records.targets")}</h2>
            <table id="record-targets">
                <tbody>
                    {record.targets.iter().map(|target| view! {
                        <tr data-name=target.target_name.clone()>
                            <td>{target.target_name.clone()}</td>
                            <td class=format!("status {}", target.status)>{target.status.as_str()}</td>
                            <td><code>{target.path.clone()}</code>
                                {(!target.snapshot_id.is_empty()).then(|| view! {
                                    " " <span class="sub" title=target.snapshot_id.clone()>{t("records.snapshot")} " " <code>{target.snapshot_id[..8.min(target.snapshot_id.len())].to_owned()}</code></span>
                                })}
                            </td>
                            <td>{format::bytes(target.bytes)}</td>
                            <td class="error">{target.error.clone()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        {(can_restore && !downloadable).then(|| view! { <SnapshotBrowser record_id=id picked /> })}
        {move || restoring.get().then(|| view! {
            <RestoreDialog record=record_for_dialog.clone() selected=picked.get_untracked().into_iter().collect()
                on_started=move |r| { restore.set(Some(r)); restoring.set(false); } on_cancel=move || restoring.set(false) />
        })}
        {move || restore.get().map(|r| view! { <RestoreView restore=r /> })}
        <section class="card">
            <h2>{t("records.log")} {move || running.then(|| view! { " " <span class="sub live">{t("records.live")}</span> })}</h2>
            <LogView id="log" live />
        </section>
    }
}

/// A repository record's snapshot, browsed through the agent one folder at a time; the boxes
/// pick files and folders for a selective restore.
#[component]
fn SnapshotBrowser(record_id: i64, picked: RwSignal<BTreeSet<String>>) -> impl IntoView {
    let at = RwSignal::new("/".to_owned());
    let error = RwSignal::new(None::<Failure>);
    // A file as it is, a folder as a tar stream, read out of the snapshot by an agent.
    let fetch = move |path: String| {
        leptos::task::spawn_local(async move {
            match api::ticketed(&routes::backup_record_download(record_id)).await {
                Ok(url) => {
                    error.set(None);
                    crate::widgets::open_download(&format!(
                        "{url}&path={}",
                        String::from(js_sys::encode_uri_component(&path))
                    ));
                }
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    let listing = LocalResource::new(move || {
        let path = at.get();
        async move {
            let q = format!(
                "{}?path={}",
                routes::backup_record_files(record_id),
                String::from(js_sys::encode_uri_component(&path))
            );
            api::get::<FsListing>(&q).await
        }
    });
    let up = move |_| {
        at.update(|p| {
            let parent = p.rsplit_once('/').map_or("", |(head, _)| head);
            *p = if parent.is_empty() {
                "/".to_owned()
            } else {
                parent.to_owned()
            };
        });
    };
    view! {
        <section class="card" id="snapshot-browser">
            <h2>{t("browse.title")}</h2>
            <p><button id="browse-up" class="link" on:click=up disabled=move || at.get() == "/">"‹ .."</button>
                " " <code id="browse-path">{move || at.get()}</code>
                " · " <span id="browse-picked">{move || picked.get().len()}</span> " " {t("browse.picked")}</p>
            {move || listing.get().map(|answer| match answer {
                Ok(list) => view! {
                    <ul id="browse-entries" class="entries">
                        {list.entries.into_iter().map(|entry| {
                            let path = entry.path.clone();
                            let (for_check, for_change, for_dir) = (path.clone(), path.clone(), path.clone());
                            let for_fetch = path.clone();
                            view! {
                                <li data-name=entry.name.clone()>
                                    <input type="checkbox" class="pick" aria-label=entry.name.clone()
                                        prop:checked=move || picked.get().contains(&for_check)
                                        on:change=move |ev| {
                                            let on = event_target_checked(&ev);
                                            picked.update(|set| { if on { set.insert(for_change.clone()); } else { set.remove(&for_change); } });
                                        } />
                                    " "
                                    {if entry.is_dir {
                                        view! { <button class="link dir" on:click=move |_| at.set(for_dir.clone())>{format!("{}/", entry.name)}</button> }.into_any()
                                    } else {
                                        view! { <span class="file">{entry.name.clone()}</span> " " <span class="sub">{format::bytes(entry.size)}</span> }.into_any()
                                    }}
                                    " "
                                    <button class="link fetch" on:click=move |_| fetch(for_fetch.clone())>
                                        {t(if entry.is_dir { "browse.download_tar" } else { "browse.download" })}
                                    </button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                    {list.truncated.then(|| view! { <p class="hint">{t("browse.truncated")}</p> })}
                }.into_any(),
                Err(failure) => view! { <ErrorNote failure /> }.into_any(),
            })}
            {move || error.get().map(|failure| view! { <ErrorNote failure /> })}
        </section>
    }
}

/// A check's live log.
#[component]
fn CheckLog(check: i64) -> impl IntoView {
    let live = Live::new();
    live::follow(routes::verify_record_logs(check), live);
    view! { <LogView id="verify-log" live /> }
}

/// Where a check stands, or what it found.
#[component]
fn CheckView(check: VerifyRecordOutput) -> impl IntoView {
    let (class, text_key) = match check.status {
        RunStatus::Running => ("status running", "records.verify_running"),
        RunStatus::Success => ("status success", "records.verify_whole"),
        _ => ("status failed", "records.verify_damaged"),
    };
    view! {
        <p id="verify-result" class=class data-status=check.status.as_str()>
            {t(text_key)}
            {(check.status == RunStatus::Success).then(|| match check.snapshots {
                0 => format!(" — {}% of the data read back", check.read_data_percent),
                n => format!(" — {n} snapshot(s), {}% of the data read back", check.read_data_percent),
            })}
            {(check.status == RunStatus::Failed).then(|| format!(" — {}", check.error))}
            {(!check.affected_records.is_empty()).then(|| view! {
                <span class="sub"> " " {t("records.verify_affected")} " "
                    {check.affected_records.iter().map(|r| view! {
                        <a href=format!("/backup-records/{r}")>{format!("#{r}")}</a> " "
                    }).collect_view()}
                </span>
            })}
        </p>
    }
}

/// Bytes, files, rate, elapsed and, when the total is known (restores) or can be judged from the
/// task's last successful run (backups), percent and time left.
#[component]
fn ProgressView(
    progress: RwSignal<Option<Progress>>,
    last_run: RwSignal<Option<u64>>,
) -> impl IntoView {
    view! {
        {move || progress.get().map(|p| {
            let estimate = last_run.get().and_then(|total| format::estimate_from_last_run(&p, total));
            let percent = format::percent(&p).or(estimate.map(|(_, pc)| pc));
            let eta = format::eta_secs(&p).or(estimate.map(|(secs, _)| secs));
            view! {
                <div class="progress" id="progress">
                    {percent.map(|pc| view! { <progress max="100" value=pc></progress> " " {format!("{pc:.0} %")} })}
                    <span>{format::bytes(p.bytes)} {p.total_bytes.map(|tb| format!(" / {}", format::bytes(tb)))}</span>
                    " · " <span>{p.files} " " {t("records.files")}</span>
                    " · " <span class="rate">{format::rate(p.bytes_per_sec)}</span>
                    " · " <span>{format::duration_secs(p.elapsed_ms / 1000)}</span>
                    {eta.map(|s| view! { " · " <span class="eta">{t("records.eta")} " " {format::duration_secs(s)}</span> })}
                </div>
            }
        })}
    }
}

#[component]
fn LogView(id: &'static str, live: Live) -> impl IntoView {
    view! {
        <div id=id>
        {move || live.failure.get().map(|failure| view! { <ErrorNote failure /> })}
        <ol class="log" aria-live="polite">
            {move || live.lines.get().into_iter().map(|line| view! {
                <li class=format!("level-{}", line.level.as_str()) data-seq=line.seq.to_string()>
                    <span class="sub">{format::when(&line.at)}</span> " " {line.message}
                </li>
            }).collect_view()}
        </ol>
        {move || live.end.get().map(|status| {
            let attr = status.clone();
            view! { <p class="sub log-end" data-status=attr>{t("records.log_end")} " " {status}</p> }
        })}
        </div>
    }
}

/// Where to restore: the original paths or a directory, on which node, from which target; for
/// database backups, which databases and under what name.
#[component]
fn RestoreDialog(
    record: BackupRecordOutput,
    /// Paths picked in the snapshot browser: only these are restored (all when empty).
    selected: Vec<String>,
    on_started: impl Fn(RestoreRecordOutput) + Copy + 'static,
    on_cancel: impl Fn() + Copy + 'static,
) -> impl IntoView {
    let nodes = LocalResource::new(|| api::get::<Vec<NodeOutput>>(routes::NODES));
    let is_db = !record.databases.is_empty();
    let to_directory = RwSignal::new(true);
    let path = RwSignal::new(String::new());
    let node = RwSignal::new(record.node_id);
    let held: Vec<_> = record
        .targets
        .iter()
        .filter(|t| t.status == TargetStatus::Success)
        .cloned()
        .collect();
    let target = RwSignal::new(held.first().map_or(0, |t| t.target_id));
    let databases = RwSignal::new(BTreeSet::<String>::new());
    let rename = RwSignal::new(String::new());
    let error = RwSignal::new(None::<Failure>);
    let id = record.id;
    let kind = record.kind.clone();
    let selected_for_body = selected.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = RestoreRequest {
            target_path: (!is_db && to_directory.get_untracked())
                .then(|| path.get_untracked().trim().to_owned()),
            node_id: Some(node.get_untracked()),
            storage_target_id: Some(target.get_untracked()).filter(|t| *t > 0),
            databases: databases.get_untracked().into_iter().collect(),
            target_database: Some(rename.get_untracked().trim().to_owned())
                .filter(|n| !n.is_empty()),
            selected_paths: selected_for_body.clone(),
            ..RestoreRequest::default()
        };
        leptos::task::spawn_local(async move {
            match api::post::<RestoreRecordOutput>(&routes::backup_record_restore(id), &body).await
            {
                Ok(started) => on_started(started),
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    view! {
        <section class="card dialog" role="dialog" aria-labelledby="restore-title">
            <h2 id="restore-title">{t("records.restore")}</h2>
            <form id="restore-form" on:submit=submit>
                {(!is_db).then(|| view! {
                    <label class="flag"><input type="radio" name="where" id="restore-original"
                        prop:checked=move || !to_directory.get() on:change=move |_| to_directory.set(false) />
                        {t("restore.original")}</label>
                    <label class="flag"><input type="radio" name="where" id="restore-elsewhere"
                        prop:checked=move || to_directory.get() on:change=move |_| to_directory.set(true) />
                        {t("restore.elsewhere")}</label>
                    {move || to_directory.get().then(|| view! {
                        <label>{t("restore.directory")}<input id="restore-path" required placeholder="/srv/restore" bind:value=path /></label>
                    })}
                    {move || (!to_directory.get()).then(|| view! { <p class="hint">{t("restore.original_hint")}</p> })}
                })}
                {is_db.then(|| {
                    let names = record.databases.clone();
                    view! {
                        <fieldset><legend>{t("records.databases")}</legend>
                            {names.into_iter().map(|db| {
                                let mine = db.clone();
                                view! {
                                    <label class="flag"><input type="checkbox" data-name=db.clone()
                                        prop:checked=move || databases.get().contains(&mine)
                                        on:change={ let db = db.clone(); move |ev| {
                                            let on = event_target_checked(&ev);
                                            databases.update(|d| { if on { d.insert(db.clone()); } else { d.remove(&db); } });
                                        }} />{db.clone()}</label>
                                }
                            }).collect_view()}
                            <p class="hint">{t("restore.all_databases")}</p>
                            <label>{t("restore.rename")}<input id="restore-rename" bind:value=rename /></label>
                        </fieldset>
                    }
                })}
                <div class="row">
                    <label>{t("tasks.node")}
                        <select id="restore-node" prop:value=move || node.get().to_string() on:change=move |ev| node.set(event_target_value(&ev).parse().unwrap_or(0))>
                            {move || nodes.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|n| view! {
                                <option value=n.id.to_string() selected=n.id == node.get_untracked()>{n.name}</option>
                            }).collect_view()}
                        </select>
                    </label>
                    <label>{t("restore.from")}
                        <select id="restore-target" on:change=move |ev| target.set(event_target_value(&ev).parse().unwrap_or(0))>
                            {held.iter().map(|t| view! { <option value=t.target_id.to_string()>{t.target_name.clone()}</option> }).collect_view()}
                        </select>
                    </label>
                </div>
                <p class="sub">{kind}</p>
                {(!selected.is_empty()).then(|| view! {
                    <p id="restore-selected" class="hint">{t("browse.only")} " "
                        {selected.iter().map(|p| view! { <code>{p.clone()}</code> " " }).collect_view()}</p>
                })}
                {move || error.get().map(|failure| view! { <ErrorNote failure /> })}
                <button id="start-restore" type="submit">{t("records.restore")}</button>
                " "
                <button type="button" class="link" on:click=move |_| on_cancel()>{t("action.cancel")}</button>
            </form>
        </section>
    }
}

/// A restore as it runs: its status, progress and live log.
#[component]
fn RestoreView(restore: RestoreRecordOutput) -> impl IntoView {
    let lang = use_lang();
    let live = Live::new();
    live.progress.set(restore.progress.clone());
    live::follow(routes::restore_record_logs(restore.id), live);
    let status = restore.status.to_string();
    let into = if restore.target_path.is_empty() {
        restore
            .target_databases
            .iter()
            .map(|d| d.into.clone())
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        restore.target_path.clone()
    };
    view! {
        <section class="card" id="restore-run" data-id=restore.id.to_string()>
            <h2>{t("records.restore")} " #" {restore.id}</h2>
            <p>
                <span id="restore-status" class=move || format!("status {}", live.end.get().unwrap_or_else(|| status.clone()))>
                    {move || text(lang.get(), status_key(&live.end.get().unwrap_or_else(|| restore.status.to_string())))}
                </span>
                " · " <code>{into}</code>
            </p>
            {move || live.end.get().is_none().then(|| view! { <ProgressView progress=live.progress last_run=RwSignal::new(None) /> })}
            <LogView id="restore-log" live />
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_the_apis_query() {
        assert_eq!(query("", "", "", "", 1), "?page=1&pageSize=20");
        assert_eq!(
            query("failed", "7", "2026-11-01", "2026-11-30", 3),
            "?page=3&pageSize=20&status=failed&taskId=7&dateFrom=2026-11-01T00:00:00Z&dateTo=2026-11-30T23:59:59Z"
        );
        for s in STATUSES {
            assert_ne!(status_key(s.as_str()), "", "{s}");
        }
    }
}
