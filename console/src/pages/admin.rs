//! The administrator's pages: the audit log, system settings, system information with the update
//! check, and the signed-in user's profile with the password change.

use crate::api::{self, Failure};
use crate::format;
use crate::i18n::t;
use crate::widgets::{ErrorNote, Pager};
use leptos::prelude::*;
use stowage_shared::api::{
    AuditLogEntry, ChangePasswordRequest, NotificationSummary, Page, PasswordChanged, SystemInfo,
    UpdateCheck, UserOutput, routes,
};
use stowage_shared::secret::SecretString;
use stowage_shared::settings::{Language, Settings};

const AUDIT_PAGE: u64 = 50;

/// The audit list's query string; empty filters are left out.
fn audit_query(filters: &[(&str, String)], page: u64) -> String {
    let mut q = format!("?page={page}&pageSize={AUDIT_PAGE}");
    for (name, value) in filters {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let value = match *name {
            "dateFrom" => format!("{value}T00:00:00Z"),
            "dateTo" => format!("{value}T23:59:59Z"),
            _ => value.to_owned(),
        };
        q.push_str(&format!("&{name}={}", encode(&value)));
    }
    q
}

#[cfg(target_arch = "wasm32")]
fn encode(value: &str) -> String {
    String::from(js_sys::encode_uri_component(value))
}

#[cfg(not(target_arch = "wasm32"))]
fn encode(value: &str) -> String {
    value.replace(' ', "%20")
}

#[component]
pub fn AuditLog() -> impl IntoView {
    let actor = RwSignal::new(String::new());
    let action = RwSignal::new(String::new());
    let resource = RwSignal::new(String::new());
    let result = RwSignal::new(String::new());
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let text = RwSignal::new(String::new());
    let page = RwSignal::new(1_u64);
    // Filters apply on submit (or on change for the selects), not on every key.
    let applied = RwSignal::new(String::new());
    let apply = move || {
        let filters = [
            ("actor", actor.get_untracked()),
            ("action", action.get_untracked()),
            ("resourceType", resource.get_untracked()),
            ("result", result.get_untracked()),
            ("dateFrom", from.get_untracked()),
            ("dateTo", to.get_untracked()),
            ("q", text.get_untracked()),
        ];
        applied.set(audit_query(&filters, page.get_untracked()));
    };
    apply();
    let rows = LocalResource::new(move || {
        let q = applied.get();
        async move { api::get::<Page<AuditLogEntry>>(&format!("{}{q}", routes::AUDIT_LOGS)).await }
    });
    let filter = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        page.set(1);
        apply();
    };
    let go = move |to_page: u64| {
        page.set(to_page);
        apply();
    };
    view! {
        <h1>{t("nav.audit")}</h1>
        <section class="card">
            <form id="audit-filter" class="row filters" on:submit=filter>
                <label>{t("audit.actor")}<input id="audit-actor" bind:value=actor /></label>
                <label>{t("audit.action")}<input id="audit-action" placeholder="backup_task.create" bind:value=action /></label>
                <label>{t("audit.resource")}<input id="audit-resource" placeholder="backup_task" bind:value=resource /></label>
                <label>{t("audit.result")}
                    <select id="audit-result" on:change=move |ev| { result.set(event_target_value(&ev)); page.set(1); apply(); }>
                        <option value="">{t("records.any")}</option>
                        <option value="success">{t("status.success")}</option>
                        <option value="failure">{t("status.failed")}</option>
                    </select>
                </label>
                <label>{t("records.from")}<input type="date" bind:value=from /></label>
                <label>{t("records.to")}<input type="date" bind:value=to /></label>
                <label>{t("audit.search")}<input id="audit-q" bind:value=text /></label>
                <button id="audit-apply" type="submit">{t("audit.apply")}</button>
            </form>
        </section>
        <section class="card">
            {move || match rows.get() {
                None => view! { <p class="hint">{t("loading")}</p> }.into_any(),
                Some(Err(failure)) => view! { <ErrorNote failure /> }.into_any(),
                Some(Ok(list)) if list.items.is_empty() => view! { <p class="empty">{t("audit.empty")}</p> }.into_any(),
                Some(Ok(list)) => {
                    let pages = list.total.div_ceil(AUDIT_PAGE).max(1);
                    let here = list.page;
                    view! {
                        <table id="audit">
                            <thead><tr>
                                <th>{t("audit.when")}</th><th>{t("audit.actor")}</th><th>{t("audit.action")}</th>
                                <th>{t("audit.resource")}</th><th>{t("audit.result")}</th><th>{t("audit.detail")}</th><th>"IP"</th>
                            </tr></thead>
                            <tbody>
                                {list.items.into_iter().map(|row| {
                                    let ok = row.result == "success";
                                    let attr = row.action.clone();
                                    view! {
                                        <tr data-action=attr>
                                            <td>{format::when(&row.created_at)}</td>
                                            <td>{row.actor}</td>
                                            <td><code>{row.action}</code></td>
                                            <td>{row.resource_type} {row.resource_id.map(|id| format!(" #{id}"))}</td>
                                            <td class=if ok { "status success" } else { "status failed" }>{row.result}</td>
                                            <td>{row.detail}</td>
                                            <td class="sub">{row.client_ip}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                        <Pager page_of_id="audit-page" here pages total=list.total go />
                    }.into_any()
                }
            }}
        </section>
    }
}

/// An optional number field: empty is `None` (the deployment's value).
fn optional(text: &str) -> Result<Option<u32>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{text:?} is not a whole number of seconds"))
}

#[component]
pub fn SettingsPage() -> impl IntoView {
    let current = LocalResource::new(|| api::get::<Settings>(routes::SETTINGS));
    view! {
        <h1>{t("nav.settings")}</h1>
        {move || match current.get() {
            None => view! { <p class="hint">{t("loading")}</p> }.into_any(),
            Some(Err(failure)) => view! { <ErrorNote failure /> }.into_any(),
            Some(Ok(settings)) => view! { <SettingsForm settings /> }.into_any(),
        }}
    }
}

#[component]
fn SettingsForm(settings: Settings) -> impl IntoView {
    let channels =
        LocalResource::new(|| api::get::<Vec<NotificationSummary>>(routes::NOTIFICATIONS));
    let site_name = RwSignal::new(settings.site_name.clone());
    let site_url = RwSignal::new(settings.site_url.clone());
    let zone = RwSignal::new(settings.time_zone.clone());
    let language = RwSignal::new(settings.language);
    let log_days = RwSignal::new(settings.log_retention_days.to_string());
    let audit_days = RwSignal::new(settings.audit_retention_days.to_string());
    let prune_days = RwSignal::new(settings.repository_prune_days.to_string());
    let check_days = RwSignal::new(settings.repository_check_days.to_string());
    let check_percent = RwSignal::new(settings.repository_check_read_percent.to_string());
    let defaults = RwSignal::new(settings.default_notification_channels.clone());
    let heartbeat = RwSignal::new(
        settings
            .agent_heartbeat_secs
            .map(|s| s.to_string())
            .unwrap_or_default(),
    );
    let poll = RwSignal::new(
        settings
            .agent_poll_secs
            .map(|s| s.to_string())
            .unwrap_or_default(),
    );
    let offline = RwSignal::new(
        settings
            .node_offline_after_secs
            .map(|s| s.to_string())
            .unwrap_or_default(),
    );
    let error = RwSignal::new(None::<Failure>);
    let saved = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        saved.set(false);
        let days = |what: &str, text: &str| {
            text.trim()
                .parse::<u32>()
                .map_err(|_| format!("{what}: {text:?} is not a whole number of days"))
        };
        let read = || -> Result<Settings, String> {
            Ok(Settings {
                site_name: site_name.get_untracked(),
                site_url: site_url.get_untracked().trim().to_owned(),
                time_zone: zone.get_untracked().trim().to_owned(),
                language: language.get_untracked(),
                log_retention_days: days("logRetentionDays", &log_days.get_untracked())?,
                audit_retention_days: days("auditRetentionDays", &audit_days.get_untracked())?,
                repository_prune_days: days("repositoryPruneDays", &prune_days.get_untracked())?,
                repository_check_days: days("repositoryCheckDays", &check_days.get_untracked())?,
                repository_check_read_percent: check_percent
                    .get_untracked()
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= 100)
                    .ok_or_else(|| "repositoryCheckReadPercent: 0 to 100".to_owned())?,
                default_notification_channels: defaults.get_untracked(),
                agent_heartbeat_secs: optional(&heartbeat.get_untracked())?,
                agent_poll_secs: optional(&poll.get_untracked())?,
                node_offline_after_secs: optional(&offline.get_untracked())?,
            })
        };
        let body = match read() {
            Ok(body) => body,
            Err(why) => {
                error.set(Some(Failure {
                    status: 400,
                    code: "SETTINGS_INVALID".to_owned(),
                    message: why,
                }));
                return;
            }
        };
        leptos::task::spawn_local(async move {
            match api::call::<Settings>("PUT", routes::SETTINGS, Some(&body)).await {
                Ok(_) => {
                    error.set(None);
                    saved.set(true);
                }
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    view! {
        <section class="card">
            <form id="settings-form" on:submit=submit>
                <div class="row">
                    <label>{t("settings.site_name")}<input id="site-name" required bind:value=site_name /></label>
                    <label>{t("settings.site_url")}<input id="site-url" type="url" placeholder="https://backups.example.com" bind:value=site_url /></label>
                </div>
                <div class="row">
                    <label>{t("tasks.zone")}<input id="settings-zone" bind:value=zone /></label>
                    <label>{t("settings.language")}
                        <select id="settings-language" on:change=move |ev| language.set(if event_target_value(&ev) == "zh-CN" { Language::SimplifiedChinese } else { Language::English })>
                            <option value="en" selected=settings.language == Language::English>"English"</option>
                            <option value="zh-CN" selected=settings.language == Language::SimplifiedChinese>"简体中文"</option>
                        </select>
                    </label>
                </div>
                <div class="row">
                    <label>{t("settings.log_days")}<input id="log-days" type="number" min="0" bind:value=log_days /></label>
                    <label>{t("settings.audit_days")}<input id="audit-days" type="number" min="0" bind:value=audit_days /></label>
                    <label>{t("settings.prune_days")}<input id="prune-days" type="number" min="0" max="365" bind:value=prune_days /></label>
                </div>
                <div class="row">
                    <label>{t("settings.check_days")}<input id="check-days" type="number" min="0" max="365" bind:value=check_days /></label>
                    <label>{t("settings.check_percent")}<input id="check-percent" type="number" min="0" max="100" bind:value=check_percent /></label>
                </div>
                <fieldset>
                    <legend>{t("settings.default_channels")}</legend>
                    {move || channels.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|c| {
                        let id = c.id;
                        view! {
                            <label class="flag"><input type="checkbox" prop:checked=move || defaults.get().contains(&id)
                                on:change=move |ev| { let on = event_target_checked(&ev); defaults.update(|d| { d.retain(|x| *x != id); if on { d.push(id); } }); } />
                                {c.name} " " <span class="sub">{c.kind}</span></label>
                        }
                    }).collect_view()}
                    <p class="hint">{t("settings.default_channels_hint")}</p>
                </fieldset>
                <fieldset>
                    <legend>{t("settings.agents")}</legend>
                    <div class="row">
                        <label>{t("settings.heartbeat")}<input id="heartbeat-secs" type="number" min="1" bind:value=heartbeat /></label>
                        <label>{t("settings.poll")}<input id="poll-secs" type="number" min="1" bind:value=poll /></label>
                        <label>{t("settings.offline")}<input id="offline-secs" type="number" min="1" bind:value=offline /></label>
                    </div>
                    <p class="hint">{t("settings.agents_hint")}</p>
                </fieldset>
                {move || error.get().map(|failure| view! { <ErrorNote failure /> })}
                {move || saved.get().then(|| view! { <p class="status success" id="settings-saved" role="status">{t("settings.saved")}</p> })}
                <button id="save-settings" type="submit">{t("action.save")}</button>
            </form>
        </section>
    }
}

#[component]
pub fn SystemPage() -> impl IntoView {
    let info = LocalResource::new(|| api::get::<SystemInfo>(routes::SYSTEM_INFO));
    let update = RwSignal::new(None::<Result<UpdateCheck, Failure>>);
    let check = move |_| {
        update.set(None);
        leptos::task::spawn_local(async move {
            update.set(Some(
                api::get::<UpdateCheck>(routes::SYSTEM_UPDATE_CHECK).await,
            ));
        });
    };
    view! {
        <h1>{t("nav.system")}</h1>
        {move || match info.get() {
            None => view! { <p class="hint">{t("loading")}</p> }.into_any(),
            Some(Err(failure)) => view! { <ErrorNote failure /> }.into_any(),
            Some(Ok(info)) => view! {
                <section class="card">
                    <dl class="facts" id="system-facts">
                        <dt>{t("system.version")}</dt><dd id="system-version">{info.version.clone()} " " <span class="sub">{info.build.clone()}</span></dd>
                        <dt>{t("system.protocol")}</dt><dd>{info.min_agent_protocol} "–" {info.agent_protocol}</dd>
                        <dt>{t("system.migration")}</dt><dd>{info.schema_migration.clone().unwrap_or_default()}</dd>
                        <dt>{t("system.database")}</dt><dd>{info.database_bytes.map(format::bytes).unwrap_or_else(|| "—".to_owned())}</dd>
                        <dt>{t("system.cron")}</dt>
                        <dd id="system-cron" class=if info.cron.healthy { "status success" } else { "status failed" }>
                            {if info.cron.healthy { t("system.cron_ok") } else { t("system.cron_stopped") }}
                            " " <span class="sub">{info.cron.last_tick_at.as_deref().map(format::when)}</span>
                        </dd>
                        <dt>{t("system.seal")}</dt><dd>{if info.seal_key_configured { t("system.yes") } else { t("system.no") }}</dd>
                    </dl>
                </section>
                <div class="columns">
                    <section class="card">
                        <h2>{t("system.rows")}</h2>
                        <table><tbody>
                            {info.table_rows.iter().map(|r| view! { <tr><td><code>{r.table.clone()}</code></td><td>{r.rows}</td></tr> }).collect_view()}
                        </tbody></table>
                    </section>
                    <section class="card">
                        <h2>{t("system.limits")}</h2>
                        <dl class="facts">
                            <dt>{t("system.session")}</dt><dd>{format::duration_secs(info.limits.session_ttl_secs)}</dd>
                            <dt>{t("settings.heartbeat")}</dt><dd>{info.limits.heartbeat_secs} " s"</dd>
                            <dt>{t("settings.poll")}</dt><dd>{info.limits.poll_secs} " s"</dd>
                            <dt>{t("settings.offline")}</dt><dd>{info.limits.offline_after_secs} " s"</dd>
                            <dt>{t("system.logins")}</dt><dd>{info.limits.login_max_failures} " / " {format::duration_secs(info.limits.login_window_secs)}</dd>
                            <dt>{t("system.body")}</dt><dd>{format::bytes(info.limits.max_json_body_bytes)}</dd>
                        </dl>
                    </section>
                </div>
            }.into_any(),
        }}
        <section class="card">
            <h2>{t("system.updates")}</h2>
            <button id="update-check" on:click=check>{t("system.check")}</button>
            {move || update.get().map(|r| match r {
                Err(failure) => view! { <ErrorNote failure /> }.into_any(),
                Ok(u) => view! {
                    <div id="update-result" data-has-update=u.has_update.to_string()>
                        {match (&u.error, u.has_update) {
                            (Some(why), _) => view! { <p class="error">{t("system.check_failed")} " " {why.clone()}</p> }.into_any(),
                            (None, true) => view! {
                                <p class="status partial">{t("system.newer")} " " <strong>{u.latest_version.clone()}</strong>
                                    {u.release_url.clone().map(|href| view! { " " <a href=href rel="noopener" target="_blank">{t("system.notes")}</a> })}</p>
                                {u.release_notes.clone().map(|n| view! { <pre class="notes">{n}</pre> })}
                            }.into_any(),
                            (None, false) => view! { <p class="status success">{t("system.current")} " " {u.current_version.clone()}</p> }.into_any(),
                        }}
                    </div>
                }.into_any(),
            })}
        </section>
    }
}

#[component]
pub fn Profile() -> impl IntoView {
    let me = LocalResource::new(|| api::get::<UserOutput>(routes::AUTH_PROFILE));
    let old = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let again = RwSignal::new(String::new());
    let error = RwSignal::new(None::<Failure>);
    let done = RwSignal::new(None::<PasswordChanged>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        done.set(None);
        if new.get_untracked() != again.get_untracked() {
            error.set(Some(Failure {
                status: 400,
                code: "AUTH_PASSWORD_INVALID".to_owned(),
                message: "the two new passwords differ".to_owned(),
            }));
            return;
        }
        let body = ChangePasswordRequest {
            old_password: SecretString::new(old.get_untracked()),
            new_password: SecretString::new(new.get_untracked()),
        };
        leptos::task::spawn_local(async move {
            match api::call::<PasswordChanged>("PUT", routes::AUTH_PASSWORD, Some(&body)).await {
                Ok(changed) => {
                    error.set(None);
                    old.set(String::new());
                    new.set(String::new());
                    again.set(String::new());
                    done.set(Some(changed));
                    me.refetch();
                }
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    view! {
        <h1>{t("nav.profile")}</h1>
        <section class="card">
            {move || match me.get() {
                None => view! { <p class="hint">{t("loading")}</p> }.into_any(),
                Some(Err(failure)) => view! { <ErrorNote failure /> }.into_any(),
                Some(Ok(user)) => view! {
                    <dl class="facts" id="profile">
                        <dt>{t("field.username")}</dt><dd id="profile-username">{user.username}</dd>
                        <dt>{t("field.display_name")}</dt><dd>{user.display_name}</dd>
                        <dt>{t("profile.role")}</dt><dd>{user.role.as_str()}</dd>
                        <dt>{t("profile.since")}</dt><dd>{format::when(&user.created_at)}</dd>
                        <dt>{t("profile.password_changed")}</dt><dd>{format::when(&user.password_changed_at)}</dd>
                    </dl>
                }.into_any(),
            }}
        </section>
        <section class="card narrow-form">
            <h2>{t("profile.change_password")}</h2>
            <form id="password-form" on:submit=submit>
                <label>{t("profile.old")}<input id="old-password" type="password" autocomplete="current-password" required bind:value=old /></label>
                <label>{t("profile.new")}<input id="new-password" type="password" autocomplete="new-password" required bind:value=new /></label>
                <label>{t("profile.again")}<input id="new-password-again" type="password" autocomplete="new-password" required bind:value=again /></label>
                {move || error.get().map(|failure| view! { <ErrorNote failure /> })}
                {move || done.get().map(|d| view! {
                    <p class="status success" id="password-changed" role="status">{t("profile.changed")} " " {d.revoked_sessions}</p>
                })}
                <button id="change-password" type="submit">{t("profile.change_password")}</button>
            </form>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_filters_and_optional_numbers() {
        let q = audit_query(
            &[
                ("actor", " admin ".to_owned()),
                ("action", String::new()),
                ("dateFrom", "2026-11-01".to_owned()),
            ],
            2,
        );
        assert_eq!(
            q,
            "?page=2&pageSize=50&actor=admin&dateFrom=2026-11-01T00:00:00Z"
        );
        assert_eq!(optional(""), Ok(None));
        assert_eq!(optional(" 30 "), Ok(Some(30)));
        assert!(optional("soon").is_err());
    }
}
