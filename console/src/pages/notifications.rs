//! Notification channels: a form per channel type, the events each one hears, a test that sends
//! a real message (before saving, or of a saved channel), and each channel's recent deliveries.

use crate::api::{self, Failure};
use crate::format;
use crate::forms::{Field, Input, MASK, Values, config_of, fields_view, values_of};
use crate::i18n::t;
use crate::widgets::{ErrorNote, confirm, list_view};
use leptos::prelude::*;
use std::collections::BTreeMap;
use stowage_shared::api::{
    Deleted, NotificationDelivery, NotificationDetail, NotificationRequest, NotificationSummary,
    NotificationTestResult, routes,
};
use stowage_shared::notifications::Event;
use stowage_shared::status::DeliveryStatus;

pub(crate) const FORMS: &[(&str, &[Field])] = &[
    (
        "webhook",
        &[
            ("url", "URL", Input::Text),
            ("secret", "Signing secret (optional)", Input::Secret),
        ],
    ),
    (
        "email",
        &[
            ("host", "SMTP server", Input::Text),
            ("port", "Port", Input::Number),
            (
                "security",
                "Security",
                Input::Choice(&["starttls", "tls", "none"]),
            ),
            ("username", "User name", Input::Text),
            ("password", "Password", Input::Secret),
            ("from", "From", Input::Text),
            ("to", "To (one address per line)", Input::List),
        ],
    ),
    (
        "slack",
        &[("webhookUrl", "Incoming webhook URL", Input::Secret)],
    ),
    ("discord", &[("webhookUrl", "Webhook URL", Input::Secret)]),
    (
        "telegram",
        &[
            ("botToken", "Bot token", Input::Secret),
            ("chatId", "Chat id", Input::Text),
            ("apiUrl", "Bot API URL (optional)", Input::Text),
        ],
    ),
    (
        "ntfy",
        &[
            ("serverUrl", "Server (default https://ntfy.sh)", Input::Text),
            ("topic", "Topic", Input::Text),
            ("token", "Access token (optional)", Input::Secret),
        ],
    ),
];

fn form_of(kind: &str) -> &'static [Field] {
    FORMS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[], |(_, fields)| fields)
}

#[component]
pub fn Notifications() -> impl IntoView {
    let list = LocalResource::new(|| api::get::<Vec<NotificationSummary>>(routes::NOTIFICATIONS));
    let editing = RwSignal::new(None::<NotificationDetail>);
    let error = RwSignal::new(None::<Failure>);
    let tests = RwSignal::new(BTreeMap::<i64, Result<NotificationTestResult, Failure>>::new());
    let deliveries =
        RwSignal::new(BTreeMap::<i64, Result<Vec<NotificationDelivery>, Failure>>::new());
    let test = move |id: i64| {
        leptos::task::spawn_local(async move {
            let answer =
                api::post::<NotificationTestResult>(&routes::notification_test(id), &()).await;
            tests.update(|t| {
                t.insert(id, answer);
            });
            list.refetch();
        });
    };
    let history = move |id: i64| {
        if deliveries.with_untracked(|d| d.contains_key(&id)) {
            deliveries.update(|d| {
                d.remove(&id);
            });
            return;
        }
        leptos::task::spawn_local(async move {
            let answer =
                api::get::<Vec<NotificationDelivery>>(&routes::notification_deliveries(id)).await;
            deliveries.update(|d| {
                d.insert(id, answer);
            });
        });
    };
    let edit = move |id: i64| {
        leptos::task::spawn_local(async move {
            match api::get::<NotificationDetail>(&routes::notification(id)).await {
                Ok(detail) => editing.set(Some(detail)),
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    let remove = move |id: i64, name: String| {
        if !confirm(&format!("Delete the channel {name:?}?")) {
            return;
        }
        leptos::task::spawn_local(async move {
            match api::call::<Deleted>("DELETE", &routes::notification(id), None::<&()>).await {
                Ok(_) => list.refetch(),
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    view! {
        <h1>{t("nav.notifications")}</h1>
        {move || {
            let current = editing.get();
            view! { <ChannelForm editing=current on_saved=move || { editing.set(None); list.refetch(); } on_cancel=move || editing.set(None) /> }
        }}
        {move || error.get().map(|failure| view! { <ErrorNote failure /> })}
        <section class="card">
            {list_view(list, "notify.empty", move |channels| view! {
                <table id="channels">
                    <tbody>
                        {channels.into_iter().map(|c| {
                            let id = c.id;
                            let name = c.name.clone();
                            let last = c.last_delivery_status;
                            view! {
                                <tr data-name=c.name.clone()>
                                    <td>{c.name.clone()} {(!c.enabled).then(|| view! { " " <span class="sub">{t("notify.disabled")}</span> })}</td>
                                    <td>{c.kind.clone()}</td>
                                    <td class="sub">{c.events.join(", ")}</td>
                                    <td class=format!("status {}", match last { Some(DeliveryStatus::Sent) => "success", Some(DeliveryStatus::Failed) => "failed", _ => "" })>
                                        {last.map_or("", DeliveryStatus::as_str)} <div class="sub">{c.last_delivery_at.as_deref().map(format::when)}</div>
                                    </td>
                                    <td class="test-result">
                                        {move || tests.get().get(&id).cloned().map(|r| match r {
                                            Ok(ok) => view! { <span class="status success">{ok.message}</span> }.into_any(),
                                            Err(failure) => view! { <ErrorNote failure /> }.into_any(),
                                        })}
                                    </td>
                                    <td class="actions">
                                        <button class="test" on:click=move |_| test(id)>{t("notify.test")}</button>
                                        <button class="link history" on:click=move |_| history(id)>{t("notify.deliveries")}</button>
                                        <button class="link edit" on:click=move |_| edit(id)>{t("action.edit")}</button>
                                        <button class="link delete" on:click=move |_| remove(id, name.clone())>{t("action.delete")}</button>
                                    </td>
                                </tr>
                                {move || deliveries.get().get(&id).cloned().map(|d| view! {
                                    <tr class="deliveries"><td colspan="6">
                                        {match d {
                                            Err(failure) => view! { <ErrorNote failure /> }.into_any(),
                                            Ok(list) if list.is_empty() => view! { <p class="empty">{t("notify.no_deliveries")}</p> }.into_any(),
                                            Ok(list) => view! {
                                                <ul>{list.into_iter().map(|d| {
                                                    let class = format!("status {}", if d.status == DeliveryStatus::Sent { "success" } else { "failed" });
                                                    view! {
                                                    <li>
                                                        <span class=class>{d.status.as_str()}</span>
                                                        " " {d.title} " · " {d.attempts} " ×"
                                                        " " <span class="sub">{format::when(&d.created_at)}</span>
                                                        {(!d.last_error.is_empty()).then(|| view! { " " <span class="error">{d.last_error.clone()}</span> })}
                                                    </li>
                                                }}).collect_view()}</ul>
                                            }.into_any(),
                                        }}
                                    </td></tr>
                                })}
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any())}
        </section>
    }
}

#[component]
fn ChannelForm(
    editing: Option<NotificationDetail>,
    on_saved: impl Fn() + Copy + 'static,
    on_cancel: impl Fn() + Copy + 'static,
) -> impl IntoView {
    let id = editing.as_ref().map(|d| d.summary.id);
    let start_kind = editing
        .as_ref()
        .map_or_else(|| "webhook".to_owned(), |d| d.summary.kind.clone());
    let name = RwSignal::new(
        editing
            .as_ref()
            .map(|d| d.summary.name.clone())
            .unwrap_or_default(),
    );
    let kind = RwSignal::new(start_kind.clone());
    let values = RwSignal::new(
        editing
            .as_ref()
            .map(|d| values_of(form_of(&start_kind), &d.config))
            .unwrap_or_default(),
    );
    let events = RwSignal::new(editing.as_ref().map_or_else(
        || {
            vec![
                "backup_failed".to_owned(),
                "backup_partial".to_owned(),
                "node_offline".to_owned(),
            ]
        },
        |d| d.summary.events.clone(),
    ));
    let threshold = RwSignal::new(
        editing
            .as_ref()
            .map_or(1, |d| d.summary.failure_threshold)
            .to_string(),
    );
    let enabled = RwSignal::new(editing.as_ref().is_none_or(|d| d.summary.enabled));
    let error = RwSignal::new(None::<Failure>);
    let tested = RwSignal::new(None::<Result<NotificationTestResult, Failure>>);
    let request = move || NotificationRequest {
        name: name.get_untracked().trim().to_owned(),
        kind: kind.get_untracked(),
        enabled: enabled.get_untracked(),
        events: events.get_untracked(),
        failure_threshold: threshold.get_untracked().trim().parse().unwrap_or(1),
        config: config_of(form_of(&kind.get_untracked()), &values.get_untracked()),
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = request();
        leptos::task::spawn_local(async move {
            let answer = match id {
                None => api::post::<NotificationDetail>(routes::NOTIFICATIONS, &body).await,
                Some(id) => api::call("PUT", &routes::notification(id), Some(&body)).await,
            };
            match answer {
                Ok(_) => {
                    error.set(None);
                    tested.set(None);
                    name.set(String::new());
                    values.set(Values::new());
                    on_saved();
                }
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    let try_it = move |_| {
        let body = request();
        tested.set(None);
        leptos::task::spawn_local(async move {
            tested.set(Some(
                api::post::<NotificationTestResult>(routes::NOTIFICATIONS_TEST, &body).await,
            ));
        });
    };
    view! {
        <section class="card">
            <h2>{if id.is_some() { t("notify.edit") } else { t("notify.new") }}</h2>
            <form id="channel-form" on:submit=submit>
                <div class="row">
                    <label>{t("field.name")}<input id="channel-name" required bind:value=name /></label>
                    <label>{t("field.type")}
                        <select id="channel-type" disabled=id.is_some() prop:value=move || kind.get()
                            on:change=move |ev| { kind.set(event_target_value(&ev)); values.set(Values::new()); }>
                            {FORMS.iter().map(|(k, _)| view! { <option value=*k>{*k}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>{t("notify.threshold")}<input id="channel-threshold" type="number" min="1" bind:value=threshold /></label>
                </div>
                {move || fields_view(form_of(&kind.get()), values)}
                <fieldset>
                    <legend>{t("notify.events")}</legend>
                    <div class="chips">
                        {Event::SUBSCRIBABLE.iter().map(|e| {
                            let name = e.as_str();
                            view! {
                                <label class="flag"><input type="checkbox" name="event" value=name
                                    prop:checked=move || events.get().iter().any(|x| x == name)
                                    on:change=move |ev| { let on = event_target_checked(&ev); events.update(|list| { list.retain(|x| x != name); if on { list.push(name.to_owned()); } }); } />
                                    {name}</label>
                            }
                        }).collect_view()}
                    </div>
                </fieldset>
                <label class="flag"><input type="checkbox" id="channel-enabled" bind:checked=enabled />{t("notify.enabled")}</label>
                {id.is_some().then(|| view! { <p class="hint">{t("storage.mask_hint")} " " <code>{MASK}</code></p> })}
                {move || error.get().map(|failure| view! { <ErrorNote failure /> })}
                {move || tested.get().map(|r| match r {
                    Ok(ok) => view! { <p class="status success" id="channel-tested">{ok.message}</p> }.into_any(),
                    Err(failure) => view! { <ErrorNote failure /> }.into_any(),
                })}
                <button id="save-channel" type="submit">{t("action.save")}</button>
                " "
                // An edited channel's secrets are masked here, so it is tested from the list,
                // with what is stored.
                {id.is_none().then(|| view! {
                    <button id="try-channel" type="button" class="link" on:click=try_it>{t("notify.test")}</button>
                })}
                {id.is_some().then(|| view! { " " <button type="button" class="link" on:click=move |_| on_cancel()>{t("action.cancel")}</button> })}
            </form>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_form_is_a_type_the_api_knows() {
        for (kind, fields) in FORMS {
            let parsed = stowage_shared::notifications::ChannelType::parse(kind);
            let parsed = parsed.unwrap_or_else(|| panic!("{kind} is not a channel type"));
            for secret in parsed.secret_fields() {
                assert!(
                    fields
                        .iter()
                        .any(|(k, _, i)| k == secret && *i == Input::Secret),
                    "{kind}: {secret} is a password field"
                );
            }
        }
    }
}
