//! Storage targets: the list (star, test, usage, edit, delete), a form per type (secret fields are
//! password inputs and never shown back), rclone's backends as rclone itself describes them on the
//! fleet's nodes, and Google Drive's connect flow (Google sends the browser back to
//! `/storage-targets/google-drive/callback`, which completes it).

use crate::api::{self, Failure};
use crate::format;
use crate::forms::{Field, Input, MASK, Values, config_of, fields_view, values_of};
use crate::i18n::{t, text, use_lang};
use crate::widgets::{ErrorNote, confirm, list_view};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use std::collections::BTreeMap;
use stowage_shared::api::{
    Deleted, GoogleDriveAuthRequest, GoogleDriveAuthUrl, GoogleDriveComplete, NodeOutput,
    PruneStarted, RcloneBackendsOutput, RepositoryState, StorageTargetDetail, StorageTargetRequest,
    StorageTargetSummary, StorageTestResult, StorageUsageOutput, VerifyRecordOutput, routes,
};
use stowage_shared::recovery::RecoveryKit;
use stowage_shared::storage::StorageType;

/// The form of each type. Google Drive's credentials come from its connect flow and rclone's
/// options from rclone, so their forms are their own.
pub(crate) const FORMS: &[(&str, &[Field])] = &[
    (
        "local_disk",
        &[("basePath", "Directory on the node", Input::Text)],
    ),
    (
        "s3",
        &[
            ("endpoint", "Endpoint", Input::Text),
            ("region", "Region", Input::Text),
            ("bucket", "Bucket", Input::Text),
            ("prefix", "Prefix", Input::Text),
            ("accessKeyId", "Access key id", Input::Secret),
            ("secretAccessKey", "Secret access key", Input::Secret),
            ("forcePathStyle", "Path-style addresses", Input::Flag),
        ],
    ),
    (
        "webdav",
        &[
            ("endpoint", "Endpoint", Input::Text),
            ("username", "User name", Input::Text),
            ("password", "Password", Input::Secret),
            ("basePath", "Base path", Input::Text),
        ],
    ),
    (
        "sftp",
        &[
            ("host", "Host", Input::Text),
            ("port", "Port", Input::Number),
            ("username", "User name", Input::Text),
            ("password", "Password", Input::Secret),
            ("hostKey", "Server host key", Input::Text),
            ("basePath", "Base path", Input::Text),
        ],
    ),
    (
        "ftp",
        &[
            ("host", "Host", Input::Text),
            ("port", "Port", Input::Number),
            ("username", "User name", Input::Text),
            ("password", "Password", Input::Secret),
            ("basePath", "Base path", Input::Text),
            ("useTLS", "TLS", Input::Flag),
        ],
    ),
    (
        "azure_blob",
        &[
            ("account", "Storage account", Input::Text),
            ("accountKey", "Account key", Input::Secret),
            ("container", "Container", Input::Text),
            ("endpoint", "Endpoint (optional)", Input::Text),
            ("prefix", "Prefix", Input::Text),
        ],
    ),
    (
        "google_drive",
        &[
            ("clientId", "OAuth client id", Input::Text),
            ("clientSecret", "OAuth client secret", Input::Secret),
            ("folderId", "Folder id (optional)", Input::Text),
        ],
    ),
    ("rclone", &[("root", "Path in the remote", Input::Text)]),
];

fn form_of(kind: &str) -> &'static [Field] {
    FORMS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[], |(_, fields)| fields)
}

/// The config a form describes; for rclone, the chosen backend and its options beside the root.
fn config_of_kind(kind: &str, values: &Values, rclone: &RcloneChoice) -> serde_json::Value {
    let mut config = config_of(form_of(kind), values);
    if StorageType::parse(kind) == Some(StorageType::Rclone) {
        config["backend"] = rclone.backend.clone().into();
        let options: BTreeMap<&String, &String> = rclone
            .options
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        config["options"] = serde_json::json!(options);
    }
    config
}

/// The rclone backend chosen and its option values.
#[derive(Debug, Clone, Default, PartialEq)]
struct RcloneChoice {
    backend: String,
    options: BTreeMap<String, String>,
}

#[component]
pub fn StorageTargets() -> impl IntoView {
    let list =
        LocalResource::new(|| api::get::<Vec<StorageTargetSummary>>(routes::STORAGE_TARGETS));
    let tests = RwSignal::new(BTreeMap::<i64, Result<StorageTestResult, Failure>>::new());
    let usage = RwSignal::new(BTreeMap::<i64, Option<Result<StorageUsageOutput, Failure>>>::new());
    let editing = RwSignal::new(None::<StorageTargetDetail>);
    let error = RwSignal::new(None::<Failure>);
    // The target whose recovery kit is being asked for (id, name).
    let kit_for = RwSignal::new(None::<(i64, String)>);
    // Tests and measurements carry a target's credentials to an agent: by default to a node whose
    // tasks use the target; a target no task uses yet needs a node chosen here.
    let nodes = LocalResource::new(|| api::get::<Vec<NodeOutput>>(routes::NODES));
    let run_on = RwSignal::new(None::<i64>);
    let on_node = move |path: String| match run_on.get_untracked() {
        Some(node) => format!("{path}?nodeId={node}"),
        None => path,
    };
    let test = move |id: i64| {
        leptos::task::spawn_local(async move {
            let answer: Result<StorageTestResult, Failure> =
                api::post(&on_node(routes::storage_target_test(id)), &()).await;
            tests.update(|t| {
                t.insert(id, answer);
            });
            list.refetch();
        });
    };
    let measure = move |id: i64| {
        usage.update(|u| {
            u.insert(id, None);
        });
        leptos::task::spawn_local(async move {
            let answer =
                api::get::<StorageUsageOutput>(&on_node(routes::storage_target_usage(id))).await;
            usage.update(|u| {
                u.insert(id, Some(answer));
            });
        });
    };
    // A prune or a check of a target's repository: started here, shown as started or refused.
    let upkeep = RwSignal::new(BTreeMap::<i64, Result<String, Failure>>::new());
    let lang = use_lang();
    let say = move |key: &'static str| text(lang.get_untracked(), key);
    let prune = move |id: i64| {
        leptos::task::spawn_local(async move {
            let answer = api::post::<PruneStarted>(&routes::storage_target_prune(id), &())
                .await
                .map(|p| {
                    format!(
                        "{} {} (node {})",
                        say("storage.prune"),
                        say("storage.started"),
                        p.node_id
                    )
                });
            upkeep.update(|u| {
                u.insert(id, answer);
            });
            list.refetch();
        });
    };
    let check = move |id: i64| {
        leptos::task::spawn_local(async move {
            let answer = api::post::<VerifyRecordOutput>(
                &routes::storage_target_verify(id),
                &serde_json::json!({}),
            )
            .await
            .map(|v| {
                format!(
                    "{} {} ({}% of the data)",
                    say("storage.check"),
                    say("storage.started"),
                    v.read_data_percent
                )
            });
            upkeep.update(|u| {
                u.insert(id, answer);
            });
        });
    };
    let star = move |id: i64| {
        leptos::task::spawn_local(async move {
            match api::call::<StorageTargetSummary>(
                "PUT",
                &routes::storage_target_star(id),
                None::<&()>,
            )
            .await
            {
                Ok(_) => list.refetch(),
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    let edit = move |id: i64| {
        leptos::task::spawn_local(async move {
            match api::get::<StorageTargetDetail>(&routes::storage_target(id)).await {
                Ok(detail) => editing.set(Some(detail)),
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    let remove = move |id: i64, name: String| {
        if !confirm(&format!("Delete the storage target {name:?}?")) {
            return;
        }
        leptos::task::spawn_local(async move {
            let path = routes::storage_target(id);
            let mut answer = api::call::<Deleted>("DELETE", &path, None::<&()>).await;
            // Backups are stored there: the user says what happens to them.
            if let Err(failure) = &answer
                && failure.code == "STORAGE_TARGET_HAS_BACKUPS"
            {
                let choice = if confirm(&format!(
                    "{}\n\nRemove these backups from {name:?} too?",
                    failure.message
                )) {
                    Some(true)
                } else if confirm(&format!(
                    "Delete {name:?} and leave its backups there, where Stowage can no longer reach them?"
                )) {
                    Some(false)
                } else {
                    None
                };
                let Some(delete_backups) = choice else {
                    return;
                };
                answer = api::call::<Deleted>(
                    "DELETE",
                    &format!("{path}?deleteBackups={delete_backups}"),
                    None::<&()>,
                )
                .await;
            }
            match answer {
                Ok(_) => {
                    error.set(None);
                    list.refetch();
                }
                // The repository's password exists only here: the kit first, then the delete.
                Err(failure) if failure.code == "STORAGE_RECOVERY_KIT_REQUIRED" => {
                    error.set(Some(failure));
                    kit_for.set(Some((id, name)));
                }
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    view! {
        <h1>{t("nav.storage")}</h1>
        {move || {
            let current = editing.get();
            view! { <TargetForm editing=current on_saved=move || { editing.set(None); list.refetch(); } on_cancel=move || editing.set(None) /> }
        }}
        {move || error.get().map(|failure| view! { <ErrorNote failure /> })}
        {move || kit_for.get().map(|(id, name)| view! {
            <RecoveryKitPanel id name on_close=move || { kit_for.set(None); list.refetch(); } />
        })}
        <p>
            <label>{t("storage.run_on")} " "
                <select id="storage-node" on:change=move |ev| run_on.set(event_target_value(&ev).parse().ok())>
                    <option value="">{t("storage.run_on_users")}</option>
                    {move || nodes.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|n| view! {
                        <option value=n.id.to_string()>{n.name}</option>
                    }).collect_view()}
                </select>
            </label>
        </p>
        <section class="card">
            {list_view(list, "storage.empty", move |mut targets| {
                // Starred targets first, as the API orders them within each group.
                targets.sort_by_key(|t| !t.starred);
                view! {
                    <table id="targets">
                        <tbody>
                            {targets.into_iter().map(|target| {
                                let id = target.id;
                                let name = target.name.clone();
                                let status_class = format!("status {}", target.last_test_status);
                                let starred = target.starred;
                                let has_repository = target.repository.is_some();
                                let kit_name = target.name.clone();
                                view! {
                                    <tr data-name=target.name.clone()>
                                        <td>
                                            <button class="link star" aria-pressed=starred.to_string()
                                                aria-label="star" on:click=move |_| star(id)>
                                                {if starred { "★" } else { "☆" }}
                                            </button>
                                        </td>
                                        <td>{target.name.clone()} <div class="sub">{target.description.clone()}</div>
                                            {target.repository.clone().map(|r| view! {
                                                <div class="sub repository">{repository_text(&r, say)}</div>
                                            })}
                                        </td>
                                        <td>{target.kind.clone()}</td>
                                        <td class=status_class title=target.last_test_message.clone()>
                                            {target.last_test_status.as_str()}
                                            <div class="sub">{target.last_tested_at.as_deref().map(format::when)}</div>
                                        </td>
                                        <td class="test-result">
                                            {move || tests.get().get(&id).cloned().map(|r| match r {
                                                Ok(ok) => view! {
                                                    <span class="status success">{ok.message} " (" {ok.latency_ms} " ms)"</span>
                                                }.into_any(),
                                                Err(failure) => view! { <ErrorNote failure /> }.into_any(),
                                            })}
                                            {move || upkeep.get().get(&id).cloned().map(|r| match r {
                                                Ok(text) => view! { <span class="status running upkeep">{text}</span> }.into_any(),
                                                Err(failure) => view! { <ErrorNote failure /> }.into_any(),
                                            })}
                                            {move || usage.get().get(&id).cloned().map(|u| match u {
                                                None => view! { <span class="hint usage">{t("loading")}</span> }.into_any(),
                                                Some(Ok(u)) => view! { <span class="usage">{usage_text(&u)}</span> }.into_any(),
                                                Some(Err(failure)) => view! { <ErrorNote failure /> }.into_any(),
                                            })}
                                        </td>
                                        <td class="actions">
                                            <button class="test" on:click=move |_| test(id)>{t("storage.test")}</button>
                                            <button class="link usage-button" on:click=move |_| measure(id)>{t("storage.usage")}</button>
                                            {has_repository.then(|| view! {
                                                <button class="link prune" on:click=move |_| prune(id)>{t("storage.prune")}</button>
                                                <button class="link check" on:click=move |_| check(id)>{t("storage.check")}</button>
                                                <button class="link recovery-kit" on:click=move |_| kit_for.set(Some((id, kit_name.clone())))>{t("storage.recovery_kit")}</button>
                                            })}
                                            <button class="link edit" on:click=move |_| edit(id)>{t("action.edit")}</button>
                                            <button class="link delete" on:click=move |_| remove(id, name.clone())>{t("action.delete")}</button>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            })}
        </section>
    }
}

/// A repository's state in one line: its prunes.
fn repository_text(r: &RepositoryState, say: impl Fn(&'static str) -> String) -> String {
    let mut parts = vec![say("storage.repository")];
    if r.pruning {
        parts.push(say("storage.pruning"));
    } else {
        match &r.pruned_at {
            Some(at) => parts.push(format!(
                "{} {} ({} {})",
                say("storage.pruned"),
                format::when(at),
                say("storage.freed"),
                format::bytes(r.prune_freed_bytes)
            )),
            None => parts.push(say("storage.never_pruned")),
        }
    }
    if let Some(due) = &r.prune_due_at {
        parts.push(format!(
            "{} {}",
            say("storage.next_prune"),
            format::when(due)
        ));
    }
    if !r.prune_error.is_empty() {
        parts.push(r.prune_error.clone());
    }
    parts.push(match &r.recovery_kit_at {
        Some(at) => format!("{} {}", say("storage.kit_saved"), format::when(at)),
        None => say("storage.kit_never"),
    });
    parts.join(" · ")
}

/// Asks for the current password and shows the target's recovery kit: the repository's address,
/// its password and the restic commands, as a sheet to keep where Stowage is not.
#[component]
fn RecoveryKitPanel(id: i64, name: String, on_close: impl Fn() + Copy + 'static) -> impl IntoView {
    let password = RwSignal::new(String::new());
    let kit = RwSignal::new(None::<Result<RecoveryKit, Failure>>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = serde_json::json!({"currentPassword": password.get_untracked()});
        leptos::task::spawn_local(async move {
            let answer =
                api::post::<RecoveryKit>(&routes::storage_target_recovery_kit(id), &body).await;
            if answer.is_ok() {
                password.set(String::new());
            }
            kit.set(Some(answer));
        });
    };
    view! {
        <section class="card narrow-form" id="recovery-kit-panel">
            <h2>{t("storage.recovery_kit")} ": " {name}</h2>
            {move || match kit.get() {
                Some(Ok(kit)) => view! {
                    <p class="hint">{t("storage.kit_keep")}</p>
                    <pre id="recovery-kit">{kit.text()}</pre>
                }.into_any(),
                other => view! {
                    <form id="recovery-kit-form" on:submit=submit>
                        <p class="hint">{t("storage.kit_explain")}</p>
                        <label>{t("profile.old")}
                            <input id="kit-password" type="password" autocomplete="current-password" required bind:value=password />
                        </label>
                        {other.and_then(Result::err).map(|failure| view! { <ErrorNote failure /> })}
                        <button id="show-kit" type="submit">{t("storage.kit_show")}</button>
                    </form>
                }.into_any(),
            }}
            <button class="link" id="close-kit" on:click=move |_| on_close()>{t("action.close")}</button>
        </section>
    }
}

fn usage_text(u: &StorageUsageOutput) -> String {
    let mut text = format!(
        "{}{} objects, {}",
        u.usage.objects,
        if u.usage.truncated { "+" } else { "" },
        format::bytes(u.usage.total_bytes)
    );
    if let Some(free) = u.usage.disk.as_ref().and_then(|d| d.free) {
        text.push_str(&format!(" · {} free", format::bytes(free)));
    }
    text
}

/// The create and edit form. The type of a saved target cannot change.
#[component]
fn TargetForm(
    editing: Option<StorageTargetDetail>,
    on_saved: impl Fn() + Copy + 'static,
    on_cancel: impl Fn() + Copy + 'static,
) -> impl IntoView {
    let id = editing.as_ref().map(|d| d.summary.id);
    let start_kind = editing
        .as_ref()
        .map_or_else(|| "local_disk".to_owned(), |d| d.summary.kind.clone());
    let name = RwSignal::new(
        editing
            .as_ref()
            .map(|d| d.summary.name.clone())
            .unwrap_or_default(),
    );
    let description = RwSignal::new(
        editing
            .as_ref()
            .map(|d| d.summary.description.clone())
            .unwrap_or_default(),
    );
    let kind = RwSignal::new(start_kind.clone());
    let values = RwSignal::new(
        editing
            .as_ref()
            .map(|d| values_of(form_of(&start_kind), &d.config))
            .unwrap_or_default(),
    );
    let rclone = RwSignal::new(
        editing
            .as_ref()
            .filter(|d| StorageType::parse(&d.summary.kind) == Some(StorageType::Rclone))
            .map(|d| RcloneChoice {
                backend: d.config["backend"].as_str().unwrap_or_default().to_owned(),
                options: serde_json::from_value(d.config["options"].clone()).unwrap_or_default(),
            })
            .unwrap_or_default(),
    );
    let error = RwSignal::new(None::<Failure>);
    let enabled = editing.as_ref().is_none_or(|d| d.summary.enabled);
    let quota = editing.as_ref().map_or(0, |d| d.summary.quota_bytes);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let kind_now = kind.get_untracked();
        if StorageType::parse(&kind_now) == Some(StorageType::GoogleDrive) {
            connect_google_drive(id, name, description, values, error);
            return;
        }
        let body = StorageTargetRequest {
            name: name.get_untracked().trim().to_owned(),
            kind: kind_now.clone(),
            description: description.get_untracked(),
            enabled,
            config: config_of_kind(&kind_now, &values.get_untracked(), &rclone.get_untracked()),
            quota_bytes: quota,
            node_id: None,
        };
        leptos::task::spawn_local(async move {
            let answer = match id {
                None => api::post::<StorageTargetDetail>(routes::STORAGE_TARGETS, &body).await,
                Some(id) => api::call("PUT", &routes::storage_target(id), Some(&body)).await,
            };
            match answer {
                Ok(_) => {
                    error.set(None);
                    name.set(String::new());
                    description.set(String::new());
                    values.set(Values::new());
                    rclone.set(RcloneChoice::default());
                    on_saved();
                }
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    view! {
        <section class="card">
            <h2>{if id.is_some() { t("storage.edit") } else { t("storage.new") }}</h2>
            <form id="new-target" on:submit=submit>
                <div class="row">
                    <label>{t("field.name")}<input id="target-name" required bind:value=name /></label>
                    <label>{t("field.type")}
                        <select id="target-type" disabled=id.is_some() prop:value=move || kind.get()
                            on:change=move |ev| { kind.set(event_target_value(&ev)); values.set(Values::new()); }>
                            {FORMS.iter().map(|(k, _)| view! { <option value=*k>{*k}</option> }).collect_view()}
                        </select>
                    </label>
                </div>
                <label>{t("storage.description")}<input id="target-description" bind:value=description /></label>
                {move || fields_view(form_of(&kind.get()), values)}
                {move || (kind.get() == "rclone").then(|| view! { <RclonePicker choice=rclone /> })}
                {move || (kind.get() == "google_drive").then(|| view! { <p class="hint">{t("storage.google_hint")}</p> })}
                {id.is_some().then(|| view! { <p class="hint">{t("storage.mask_hint")} " " <code>{MASK}</code></p> })}
                {move || error.get().map(|failure| view! { <ErrorNote failure /> })}
                <button id="save-target" type="submit">
                    {move || if kind.get() == "google_drive" { t("storage.google_connect")() } else { t("action.save")() }}
                </button>
                {id.is_some().then(|| view! { " " <button type="button" class="link" on:click=move |_| on_cancel()>{t("action.cancel")}</button> })}
            </form>
        </section>
    }
}

/// Google Drive: the API makes (or reconnects) the target and answers with Google's consent page,
/// where the browser goes next.
fn connect_google_drive(
    target_id: Option<i64>,
    name: RwSignal<String>,
    description: RwSignal<String>,
    values: RwSignal<Values>,
    error: RwSignal<Option<Failure>>,
) {
    let v = values.get_untracked();
    let field = |k: &str| v.get(k).map(|s| s.trim().to_owned()).unwrap_or_default();
    let body = GoogleDriveAuthRequest {
        target_id,
        name: name.get_untracked().trim().to_owned(),
        description: description.get_untracked(),
        client_id: field("clientId"),
        client_secret: field("clientSecret"),
        folder_id: field("folderId"),
        redirect_uri: String::new(),
    };
    leptos::task::spawn_local(async move {
        match api::post::<GoogleDriveAuthUrl>(routes::GOOGLE_DRIVE_AUTH_URL, &body).await {
            Ok(answer) => {
                if let Some(w) = web_sys::window() {
                    let _ = w.location().set_href(&answer.auth_url);
                }
            }
            Err(failure) => error.set(Some(failure)),
        }
    });
}

/// rclone's backends as the fleet's rclone describes them, with each one's options (required
/// and common ones first, advanced ones folded away).
#[component]
fn RclonePicker(choice: RwSignal<RcloneChoice>) -> impl IntoView {
    let backends = LocalResource::new(|| api::get::<RcloneBackendsOutput>(routes::RCLONE_BACKENDS));
    view! {
        {move || match backends.get() {
            None => view! { <p class="hint">{t("loading")}</p> }.into_any(),
            Some(Err(failure)) => view! { <ErrorNote failure /> }.into_any(),
            Some(Ok(out)) if out.backends.is_empty() => view! { <p class="empty">{t("storage.rclone_none")}</p> }.into_any(),
            Some(Ok(out)) => {
                let list = out.backends.clone();
                view! {
                    <label>{t("storage.rclone_backend")}
                        <select id="rclone-backend" prop:value=move || choice.get().backend
                            on:change=move |ev| choice.set(RcloneChoice { backend: event_target_value(&ev), options: BTreeMap::new() })>
                            <option value="">"—"</option>
                            {out.backends.iter().map(|b| view! {
                                <option value=b.backend.name.clone()>{format!("{} — {}", b.backend.name, b.backend.description)}</option>
                            }).collect_view()}
                        </select>
                    </label>
                    {move || {
                        let chosen = choice.get().backend;
                        list.iter().find(|b| b.backend.name == chosen).map(|b| {
                            let (common, advanced): (Vec<_>, Vec<_>) =
                                b.backend.options.iter().cloned().partition(|o| o.required || !o.advanced);
                            let field = move |o: stowage_shared::api::RcloneOption| {
                                let key = o.name.clone();
                                let shown = {
                                    let key = key.clone();
                                    move || choice.get().options.get(&key).cloned().unwrap_or_default()
                                };
                                view! {
                                    <label title=o.help.clone()>{o.name.clone()} {o.required.then_some(" *")}
                                        <span class="sub">" " {o.help.clone()}</span>
                                        <input name=format!("rclone-{}", o.name) type=if o.secret { "password" } else { "text" }
                                            autocomplete="off" placeholder=o.default.clone() prop:value=shown
                                            on:input=move |ev| { let v = event_target_value(&ev); let key = key.clone(); choice.update(|c| { c.options.insert(key, v); }); } />
                                    </label>
                                }
                            };
                            view! {
                                <div id="rclone-options">
                                    {common.into_iter().map(field).collect_view()}
                                    {(!advanced.is_empty()).then(|| view! {
                                        <details><summary>{t("storage.advanced")}</summary>
                                            {advanced.into_iter().map(field).collect_view()}
                                        </details>
                                    })}
                                </div>
                            }
                        })
                    }}
                }.into_any()
            }
        }}
    }
}

/// Where Google sends the browser back: hands the code to the API, which stores the refresh token
/// on the target.
#[component]
pub fn GoogleDriveCallback() -> impl IntoView {
    let query = use_query_map();
    let outcome = LocalResource::new(move || {
        let q = query.get();
        let denied = q.get("error");
        let body = GoogleDriveComplete {
            state: q.get("state").unwrap_or_default(),
            code: q.get("code").unwrap_or_default(),
        };
        async move {
            if let Some(why) = denied {
                return Err(Failure {
                    status: 400,
                    code: "STORAGE_GOOGLE_OAUTH_INVALID".to_owned(),
                    message: format!("Google answered: {why}"),
                });
            }
            api::post::<StorageTargetDetail>(routes::GOOGLE_DRIVE_COMPLETE, &body).await
        }
    });
    view! {
        <h1>"Google Drive"</h1>
        <section class="card">
            {move || match outcome.get() {
                None => view! { <p class="hint">{t("loading")}</p> }.into_any(),
                Some(Err(failure)) => view! { <ErrorNote failure /> }.into_any(),
                Some(Ok(target)) => view! {
                    <p class="status success" id="drive-connected">{t("storage.google_done")} " " <strong>{target.summary.name}</strong></p>
                }.into_any(),
            }}
            <p><a href="/storage-targets">{t("nav.storage")}</a></p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_build_typed_configs_the_server_parses() {
        let mut values = Values::new();
        values.insert("host".to_owned(), " ftp.example.com ".to_owned());
        values.insert("port".to_owned(), "2121".to_owned());
        values.insert("password".to_owned(), String::new());
        values.insert("useTLS".to_owned(), "true".to_owned());
        let config = config_of_kind("ftp", &values, &RcloneChoice::default());
        assert_eq!(
            config,
            serde_json::json!({"host": "ftp.example.com", "port": 2121, "useTLS": true})
        );
        let parsed = stowage_shared::storage::StorageConfig::parse(
            stowage_shared::storage::StorageType::Ftp,
            &config,
        );
        assert!(parsed.is_ok(), "{parsed:?}");
        for (kind, _) in FORMS {
            assert!(
                stowage_shared::storage::StorageType::parse(kind).is_some(),
                "{kind}"
            );
        }
        let mut options = BTreeMap::new();
        options.insert("host".to_owned(), "nas.lan".to_owned());
        options.insert("port".to_owned(), " ".to_owned());
        let rclone = RcloneChoice {
            backend: "sftp".to_owned(),
            options,
        };
        let mut values = Values::new();
        values.insert("root".to_owned(), "backups".to_owned());
        let config = config_of_kind("rclone", &values, &rclone);
        assert_eq!(
            config,
            serde_json::json!({"backend": "sftp", "options": {"host": "nas.lan"}, "root": "backups"})
        );
        let parsed = stowage_shared::storage::StorageConfig::parse(
            stowage_shared::storage::StorageType::Rclone,
            &config,
        );
        assert!(parsed.is_ok(), "{parsed:?}");
    }
}
