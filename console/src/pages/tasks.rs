//! Backup tasks: the list (run now, enable or disable, edit, delete) and the form, with a cron
//! helper that shows the next fire times in the task's zone, a directory picker that browses the
//! node through its agent (`fs/list`), and a database picker through discovery.

use crate::api::{self, Failure};
use crate::format;
use crate::forms::MASK;
use crate::i18n::t;
use crate::widgets::{ErrorNote, list_view};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use std::collections::BTreeSet;
use stowage_shared::api::{
    BackupRecordOutput, BackupTaskOutput, BackupTaskRequest, Deleted, FsListing, NodeOutput,
    StorageTargetSummary, ToggleRequest, routes,
};
use stowage_shared::databases::{DbEngine, DiscoverOutput, DiscoverRequest};
use stowage_shared::secret::SecretString;
use stowage_shared::status::{BackupFormat, RunStatus};
use stowage_shared::tasks::Retention;

/// Common schedules, for people who do not write cron every day.
const PRESETS: &[(&str, &str)] = &[
    ("", "tasks.manual"),
    ("0 3 * * *", "tasks.daily"),
    ("0 * * * *", "tasks.hourly"),
    ("0 3 * * 0", "tasks.weekly"),
    ("0 3 1 * *", "tasks.monthly"),
];

/// Lines of a text area, trimmed, blank ones dropped.
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[component]
pub fn Tasks() -> impl IntoView {
    let list = LocalResource::new(|| api::get::<Vec<BackupTaskOutput>>(routes::BACKUP_TASKS));
    let nodes = LocalResource::new(|| api::get::<Vec<NodeOutput>>(routes::NODES));
    let targets =
        LocalResource::new(|| api::get::<Vec<StorageTargetSummary>>(routes::STORAGE_TARGETS));
    // `None`: the form is closed; `Some(None)`: a new task; `Some(Some(task))`: editing it.
    let editing = RwSignal::new(None::<Option<BackupTaskOutput>>);
    let error = RwSignal::new(None::<Failure>);
    let navigate = StoredValue::new_local(use_navigate());
    let run = move |id: i64| {
        leptos::task::spawn_local(async move {
            match api::post::<BackupRecordOutput>(&routes::backup_task_run(id), &()).await {
                Ok(record) => navigate.with_value(|go| {
                    go(
                        &format!("/backup-records/{}", record.id),
                        Default::default(),
                    )
                }),
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    let toggle = move |id: i64, enabled: bool| {
        leptos::task::spawn_local(async move {
            let body = ToggleRequest {
                enabled: Some(enabled),
            };
            match api::call::<BackupTaskOutput>("PUT", &routes::backup_task_toggle(id), Some(&body))
                .await
            {
                Ok(_) => list.refetch(),
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    let remove = move |id: i64, name: String| {
        if !crate::widgets::confirm(&format!("Delete the task {name:?}? Its backups are kept.")) {
            return;
        }
        leptos::task::spawn_local(async move {
            match api::call::<Deleted>("DELETE", &routes::backup_task(id), None::<&()>).await {
                Ok(_) => list.refetch(),
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    let saved = move || {
        editing.set(None);
        list.refetch();
    };
    view! {
        <h1>{t("nav.tasks")}</h1>
        <p><button id="new-task" on:click=move |_| editing.set(Some(None))>{t("tasks.new")}</button></p>
        // The form is made once the nodes and targets are in: made before, it would be made
        // again when they arrive, and whatever had been typed into it would be gone.
        {move || editing.get().map(|initial| match (nodes.get(), targets.get()) {
            (Some(choices), Some(stores)) => {
                let choices = choices.ok().unwrap_or_default();
                let stores = stores.ok().unwrap_or_default();
                view! { <TaskForm initial nodes=choices targets=stores on_saved=saved on_cancel=move || editing.set(None) /> }.into_any()
            }
            _ => view! { <p class="empty">{t("loading")}</p> }.into_any(),
        })}
        {move || error.get().map(|failure| view! { <ErrorNote failure /> })}
        <section class="card">
            {list_view(list, "tasks.empty", move |tasks| {
                view! {
                <table id="tasks">
                    <thead><tr>
                        <th>{t("field.name")}</th><th>{t("field.type")}</th><th>{t("tasks.node")}</th>
                        <th>{t("tasks.schedule")}</th><th>{t("tasks.last")}</th><th></th>
                    </tr></thead>
                    <tbody>
                        {tasks.into_iter().map(|task| {
                            let id = task.id;
                            let enabled = task.enabled;
                            let name = task.name.clone();
                            let edit = task.clone();
                            let status = task.last_status.map_or("", RunStatus::as_str);
                            view! {
                                <tr data-name=task.name.clone() class:disabled=!enabled>
                                    <td>{task.name.clone()}</td>
                                    <td>{task.kind.clone()}</td>
                                    <td>{task.node_name.clone()}</td>
                                    <td>
                                        {if task.cron_expr.is_empty() { "—".to_owned() } else { format!("{} ({})", task.cron_expr, task.time_zone) }}
                                        <div class="sub">{task.next_run_at.as_deref().map(format::when)}</div>
                                    </td>
                                    <td class=format!("status {status}")>
                                        {status}
                                        <div class="sub">{task.last_run_at.as_deref().map(format::when)}</div>
                                    </td>
                                    <td class="actions">
                                        <button class="run" on:click=move |_| run(id)>{t("tasks.run")}</button>
                                        <button class="link toggle" on:click=move |_| toggle(id, !enabled)>
                                            {if enabled { t("tasks.disable") } else { t("tasks.enable") }}
                                        </button>
                                        <button class="link edit" on:click=move |_| editing.set(Some(Some(edit.clone())))>{t("action.edit")}</button>
                                        <button class="link delete" on:click=move |_| remove(id, name.clone())>{t("action.delete")}</button>
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()})}
        </section>
    }
}

/// The create and edit form.
#[component]
fn TaskForm(
    initial: Option<BackupTaskOutput>,
    nodes: Vec<NodeOutput>,
    targets: Vec<StorageTargetSummary>,
    on_saved: impl Fn() + Copy + 'static,
    on_cancel: impl Fn() + Copy + 'static,
) -> impl IntoView {
    let id = initial.as_ref().map(|t| t.id);
    let first_node = nodes.first().map_or(0, |n| n.id);
    let start = initial.unwrap_or_else(|| BackupTaskOutput {
        kind: "file".to_owned(),
        enabled: true,
        node_id: first_node,
        storage_target_ids: targets.first().map(|t| t.id).into_iter().collect(),
        time_zone: format::browser_zone(),
        compression: "zstd".to_owned(),
        ..BackupTaskOutput::default()
    });
    let name = RwSignal::new(start.name.clone());
    let kind = RwSignal::new(start.kind.clone());
    let node_id = RwSignal::new(start.node_id);
    let sources = RwSignal::new(start.source_paths.clone());
    let excludes = RwSignal::new(start.exclude_patterns.join("\n"));
    let chosen = RwSignal::new(
        start
            .storage_target_ids
            .iter()
            .copied()
            .collect::<BTreeSet<i64>>(),
    );
    let cron = RwSignal::new(start.cron_expr.clone());
    let zone = RwSignal::new(start.time_zone.clone());
    let compression = RwSignal::new(start.compression.clone());
    // New tasks are deduplicated, encrypted repositories; a task keeps the format it has.
    let stored_as = RwSignal::new(if id.is_some() {
        start.format.as_str().to_owned()
    } else {
        BackupFormat::Repository.as_str().to_owned()
    });
    let keep_last = RwSignal::new(start.retention.keep_last.to_string());
    let keep_days = RwSignal::new(start.retention.keep_days.to_string());
    let db_host = RwSignal::new(start.db_host.clone());
    let db_port = RwSignal::new(start.db_port.map(|p| p.to_string()).unwrap_or_default());
    let db_user = RwSignal::new(start.db_user.clone());
    let db_password = RwSignal::new(start.db_password.clone());
    let db_names = RwSignal::new(start.db_names.iter().cloned().collect::<BTreeSet<String>>());
    let db_path = RwSignal::new(start.db_path.clone());
    let globals = RwSignal::new(start.db_include_globals);
    let typed_path = RwSignal::new(String::new());
    let error = RwSignal::new(None::<Failure>);
    let retention = start.retention;
    let kept = (
        start.description.clone(),
        start.tags.clone(),
        start.db_options.clone(),
    );

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let password = db_password.get_untracked();
        let number = |s: &str| s.trim().parse::<u32>().unwrap_or(0);
        let body = BackupTaskRequest {
            name: name.get_untracked().trim().to_owned(),
            kind: kind.get_untracked(),
            description: kept.0.clone(),
            enabled: start.enabled,
            node_id: node_id.get_untracked(),
            source_paths: sources.get_untracked(),
            exclude_patterns: lines(&excludes.get_untracked()),
            storage_target_ids: chosen.get_untracked().into_iter().collect(),
            cron_expr: cron.get_untracked().trim().to_owned(),
            time_zone: zone.get_untracked().trim().to_owned(),
            format: stored_as.get_untracked(),
            compression: compression.get_untracked(),
            compression_level: start.compression_level,
            retention: Retention {
                keep_last: number(&keep_last.get_untracked()),
                keep_days: number(&keep_days.get_untracked()),
                ..retention
            },
            tags: kept.1.clone(),
            db_host: db_host.get_untracked().trim().to_owned(),
            db_port: db_port.get_untracked().trim().parse().ok(),
            db_user: db_user.get_untracked().trim().to_owned(),
            // Sending the mask (or nothing) keeps the stored password.
            db_password: (!password.is_empty() && password != MASK)
                .then(|| SecretString::new(password)),
            db_names: db_names.get_untracked().into_iter().collect(),
            db_options: kept.2.clone(),
            db_include_globals: globals.get_untracked(),
            db_path: db_path.get_untracked().trim().to_owned(),
        };
        leptos::task::spawn_local(async move {
            let answer = match id {
                None => api::post::<BackupTaskOutput>(routes::BACKUP_TASKS, &body).await,
                Some(id) => api::call("PUT", &routes::backup_task(id), Some(&body)).await,
            };
            match answer {
                Ok(_) => on_saved(),
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    let add_typed = move || {
        let path = typed_path.get_untracked().trim().to_owned();
        if !path.is_empty() {
            sources.update(|s| {
                if !s.contains(&path) {
                    s.push(path);
                }
            });
            typed_path.set(String::new());
        }
    };
    let is_db = move || matches!(kind.get().as_str(), "mysql" | "postgresql");
    view! {
        <section class="card">
            <h2>{if id.is_some() { t("tasks.edit") } else { t("tasks.new") }}</h2>
            <form id="task-form" on:submit=submit>
                <div class="row">
                    <label>{t("field.name")}<input id="task-name" required bind:value=name /></label>
                    <label>{t("field.type")}
                        <select id="task-type" prop:value=move || kind.get() on:change=move |ev| kind.set(event_target_value(&ev))>
                            <option value="file">{t("tasks.type_file")}</option>
                            <option value="mysql">"MySQL / MariaDB"</option>
                            <option value="postgresql">"PostgreSQL"</option>
                            <option value="sqlite">"SQLite"</option>
                        </select>
                    </label>
                    <label>{t("tasks.node")}
                        <select id="task-node" prop:value=move || node_id.get().to_string()
                            on:change=move |ev| node_id.set(event_target_value(&ev).parse().unwrap_or(0))>
                            {nodes.iter().map(|n| view! { <option value=n.id.to_string()>{n.name.clone()}</option> }).collect_view()}
                        </select>
                    </label>
                </div>
                {move || (kind.get() == "file").then(|| view! {
                    <fieldset>
                        <legend>{t("tasks.sources")}</legend>
                        <ul id="sources" class="chips">
                            {move || sources.get().into_iter().map(|path| {
                                let gone = path.clone();
                                let attr = path.clone();
                                view! {
                                    <li data-path=attr>
                                        <code>{path}</code>
                                        <button type="button" class="link" aria-label="remove"
                                            on:click=move |_| sources.update(|s| s.retain(|p| *p != gone))>"×"</button>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                        <div class="row">
                            <input id="source-path" placeholder="/etc" bind:value=typed_path
                                on:keydown=move |ev| if ev.key() == "Enter" { ev.prevent_default(); add_typed(); } />
                            <button type="button" class="link" on:click=move |_| add_typed()>{t("action.add")}</button>
                        </div>
                        <Picker node_id files=false on_pick=move |path: String| sources.update(|s| if !s.contains(&path) { s.push(path) }) />
                        <label>{t("tasks.excludes")}
                            <textarea id="excludes" rows="3" placeholder="*.tmp" prop:value=move || excludes.get()
                                on:input=move |ev| excludes.set(event_target_value(&ev))></textarea>
                        </label>
                    </fieldset>
                })}
                {move || (kind.get() == "sqlite").then(|| view! {
                    <fieldset>
                        <legend>{t("tasks.db_file")}</legend>
                        <input id="db-path" placeholder="/var/lib/app/app.db" bind:value=db_path />
                        <Picker node_id files=true on_pick=move |path: String| db_path.set(path) />
                    </fieldset>
                })}
                {move || is_db().then(|| view! {
                    <fieldset>
                        <legend>{t("tasks.db_server")}</legend>
                        <div class="row">
                            <label>{t("tasks.db_host")}<input id="db-host" placeholder="127.0.0.1" bind:value=db_host /></label>
                            <label>{t("tasks.db_port")}<input id="db-port" type="number" bind:value=db_port /></label>
                            <label>{t("field.username")}<input id="db-user" bind:value=db_user /></label>
                            <label>{t("field.password")}<input id="db-password" type="password" autocomplete="off" bind:value=db_password /></label>
                        </div>
                        <DatabasePicker kind node_id host=db_host port=db_port user=db_user password=db_password names=db_names />
                        {move || (kind.get() == "postgresql").then(|| view! {
                            <label class="flag"><input type="checkbox" bind:checked=globals />{t("tasks.globals")}</label>
                        })}
                    </fieldset>
                })}
                <fieldset>
                    <legend>{t("tasks.targets")}</legend>
                    {if targets.is_empty() {
                        view! { <p class="empty">{t("storage.empty")}</p> }.into_any()
                    } else {
                        targets.iter().map(|target| {
                            let tid = target.id;
                            view! {
                                <label class="flag">
                                    <input type="checkbox" name="target" data-name=target.name.clone()
                                        prop:checked=move || chosen.get().contains(&tid)
                                        on:change=move |ev| {
                                            let on = event_target_checked(&ev);
                                            chosen.update(|c| { if on { c.insert(tid); } else { c.remove(&tid); } });
                                        } />
                                    {target.name.clone()} " " <span class="sub">{target.kind.clone()}</span>
                                </label>
                            }
                        }).collect_view().into_any()
                    }}
                </fieldset>
                <fieldset>
                    <legend>{t("tasks.schedule")}</legend>
                    <div class="row">
                        <label>{t("tasks.preset")}
                            <select id="cron-preset" on:change=move |ev| cron.set(event_target_value(&ev))>
                                {PRESETS.iter().map(|(expr, key)| view! {
                                    <option value=*expr selected=move || cron.get() == *expr>{t(key)}</option>
                                }).collect_view()}
                            </select>
                        </label>
                        <label>{t("tasks.cron")}<input id="cron" placeholder="0 3 * * *" bind:value=cron /></label>
                        <label>{t("tasks.zone")}<input id="time-zone" list="zones" bind:value=zone /></label>
                        <datalist id="zones">
                            {["UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney"]
                                .map(|z| view! { <option value=z /> }).collect_view()}
                        </datalist>
                    </div>
                    <NextFires cron zone />
                </fieldset>
                <fieldset>
                    <legend>{t("tasks.keep")}</legend>
                    <div class="row">
                        <label>{t("tasks.keep_last")}<input id="keep-last" type="number" min="0" bind:value=keep_last /></label>
                        <label>{t("tasks.keep_days")}<input id="keep-days" type="number" min="0" bind:value=keep_days /></label>
                        <label>{t("tasks.format")}
                            <select id="format" prop:value=move || stored_as.get() on:change=move |ev| stored_as.set(event_target_value(&ev))>
                                <option value="repository">{t("tasks.format_repository")}</option>
                                <option value="archive">{t("tasks.format_archive")}</option>
                            </select>
                        </label>
                        <label>{t("tasks.compression")}
                            <select id="compression" prop:value=move || compression.get() on:change=move |ev| compression.set(event_target_value(&ev))>
                                <option value="zstd">"zstd"</option>
                                <option value="none">{t("tasks.none")}</option>
                            </select>
                        </label>
                    </div>
                    <p class="hint">{t("tasks.keep_hint")}</p>
                </fieldset>
                {move || error.get().map(|failure| view! { <ErrorNote failure /> })}
                <button id="save-task" type="submit">{t("action.save")}</button>
                " "
                <button type="button" class="link" on:click=move |_| on_cancel()>{t("action.cancel")}</button>
            </form>
        </section>
    }
}

/// The next fire times of the schedule being typed, in its zone (or why it is not a schedule).
#[component]
fn NextFires(cron: RwSignal<String>, zone: RwSignal<String>) -> impl IntoView {
    view! {
        {move || {
            let expr = cron.get();
            if expr.trim().is_empty() {
                return view! { <p class="hint" id="next-fires">{t("tasks.manual_hint")}</p> }.into_any();
            }
            match format::next_fires(&expr, &zone.get(), format::now(), 5) {
                Ok(fires) => view! {
                    <div id="next-fires">
                        <span class="sub">{t("tasks.next_fires")}</span>
                        <ol>{fires.into_iter().map(|f| view! { <li>{f}</li> }).collect_view()}</ol>
                    </div>
                }.into_any(),
                Err(why) => view! { <p class="error" id="next-fires" role="alert">{why}</p> }.into_any(),
            }
        }}
    }
}

/// Browses the node's directories through its agent; picks a directory (or, with `files`, a
/// file).
#[component]
fn Picker(
    node_id: RwSignal<i64>,
    files: bool,
    on_pick: impl Fn(String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let open = RwSignal::new(false);
    let listing = RwSignal::new(None::<Result<FsListing, Failure>>);
    let browse = move |path: String| {
        let node = node_id.get_untracked();
        listing.set(None);
        leptos::task::spawn_local(async move {
            let url = format!(
                "{}?path={}",
                routes::node_fs_list(node),
                js_sys::encode_uri_component(&path)
            );
            listing.set(Some(api::get::<FsListing>(&url).await));
        });
    };
    let parent = |path: &str| -> String {
        let trimmed = path.trim_end_matches('/');
        match trimmed.rfind('/') {
            Some(0) | None => "/".to_owned(),
            Some(i) => trimmed[..i].to_owned(),
        }
    };
    view! {
        <button type="button" id="browse" class="link" on:click=move |_| { open.set(true); browse("/".to_owned()); }>
            {t("picker.browse")}
        </button>
        {move || open.get().then(|| view! {
            <div class="picker" id="picker" role="dialog" aria-label="directory picker">
                {move || match listing.get() {
                    None => view! { <p class="hint">{t("loading")}</p> }.into_any(),
                    Some(Err(failure)) => view! { <ErrorNote failure /> }.into_any(),
                    Some(Ok(here)) => {
                        let at = here.path.clone();
                        let up = parent(&at);
                        let pick_here = at.clone();
                        view! {
                            <p class="picker-path"><code id="picker-path">{at.clone()}</code></p>
                            <div class="row">
                                <button type="button" class="link" id="picker-up" on:click=move |_| browse(up.clone())>{t("picker.up")}</button>
                                {(!files).then(|| view! {
                                    <button type="button" id="picker-choose" on:click=move |_| { on_pick(pick_here.clone()); open.set(false); }>{t("picker.choose")}</button>
                                })}
                                <button type="button" class="link" on:click=move |_| open.set(false)>{t("action.cancel")}</button>
                            </div>
                            <ul class="entries">
                                {here.entries.into_iter().filter(|e| e.is_dir || files).map(|entry| {
                                    let path = entry.path.clone();
                                    if entry.is_dir {
                                        view! {
                                            <li><button type="button" class="link dir" data-name=entry.name.clone()
                                                on:click=move |_| browse(path.clone())>{format!("{}/", entry.name)}</button></li>
                                        }.into_any()
                                    } else {
                                        view! {
                                            <li><button type="button" class="link file" data-name=entry.name.clone()
                                                on:click=move |_| { on_pick(path.clone()); open.set(false); }>
                                                {entry.name.clone()}</button>
                                                " " <span class="sub">{format::bytes(entry.size)}</span></li>
                                        }.into_any()
                                    }
                                }).collect_view()}
                            </ul>
                            {here.truncated.then(|| view! { <p class="hint">{t("picker.truncated")}</p> })}
                        }.into_any()
                    }
                }}
            </div>
        })}
    }
}

/// Lists the databases the connection can see, to tick the ones to back up (none: all).
#[component]
fn DatabasePicker(
    kind: RwSignal<String>,
    node_id: RwSignal<i64>,
    host: RwSignal<String>,
    port: RwSignal<String>,
    user: RwSignal<String>,
    password: RwSignal<String>,
    names: RwSignal<BTreeSet<String>>,
) -> impl IntoView {
    let found = RwSignal::new(None::<Result<Vec<String>, Failure>>);
    let discover = move |_| {
        let engine = if kind.get_untracked() == "postgresql" {
            DbEngine::Postgresql
        } else {
            DbEngine::Mysql
        };
        let body = DiscoverRequest {
            node_id: Some(node_id.get_untracked()),
            engine,
            host: host.get_untracked().trim().to_owned(),
            port: port.get_untracked().trim().parse().ok(),
            user: user.get_untracked().trim().to_owned(),
            password: SecretString::new(password.get_untracked()),
        };
        found.set(None);
        leptos::task::spawn_local(async move {
            let answer = api::post::<DiscoverOutput>(routes::DATABASE_DISCOVER, &body).await;
            found.set(Some(answer.map(|d| d.databases)));
        });
    };
    view! {
        <p>
            <button type="button" id="discover" class="link" on:click=discover>{t("tasks.discover")}</button>
            " " <span class="hint">{t("tasks.all_databases")}</span>
        </p>
        {move || found.get().map(|r| match r {
            Err(failure) => view! { <ErrorNote failure /> }.into_any(),
            Ok(list) => view! {
                <div id="databases" class="chips">
                    {list.into_iter().map(|db| {
                        let mine = db.clone();
                        view! {
                            <label class="flag">
                                <input type="checkbox" data-name=db.clone()
                                    prop:checked=move || names.get().contains(&mine)
                                    on:change={
                                        let db = db.clone();
                                        move |ev| {
                                            let on = event_target_checked(&ev);
                                            names.update(|n| { if on { n.insert(db.clone()); } else { n.remove(&db); } });
                                        }
                                    } />
                                {db.clone()}
                            </label>
                        }
                    }).collect_view()}
                </div>
            }.into_any(),
        })}
        {move || (!names.get().is_empty()).then(|| view! {
            <p class="sub">{t("tasks.chosen")} " " {names.get().into_iter().collect::<Vec<_>>().join(", ")}</p>
        })}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_are_one_per_line_and_presets_are_schedules() {
        assert_eq!(lines(" *.tmp \n\n cache/ "), ["*.tmp", "cache/"]);
        for (expr, _) in PRESETS.iter().filter(|(e, _)| !e.is_empty()) {
            assert!(
                stowage_shared::schedule::Schedule::parse(expr, "UTC").is_ok(),
                "{expr}"
            );
        }
    }
}
