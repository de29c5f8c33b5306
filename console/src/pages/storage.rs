//! Storage targets: the list with each one's last test, a form per type (secret fields are
//! password inputs and never shown back), and a test button that reports the backend's own words.

use crate::api::{self, Failure};
use crate::app::{ErrorNote, list_view};
use crate::i18n::t;
use leptos::prelude::*;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use stowage_shared::api::{
    Deleted, StorageTargetDetail, StorageTargetSummary, StorageTestResult, routes,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Text,
    Secret,
    Number,
    Flag,
}

/// The form of each type: `(type, [(config key, label, input)])`. Types the form does not offer
/// yet (Google Drive's connect flow, Azure, rclone) are still listed and tested.
/// A form field: config key, label, input.
type Field = (&'static str, &'static str, Input);

const FORMS: &[(&str, &[Field])] = &[
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
];

fn form_of(kind: &str) -> &'static [Field] {
    FORMS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[], |(_, fields)| fields)
}

/// The typed config from the form's text values; empty fields are left to the server's defaults.
fn config_of(kind: &str, values: &BTreeMap<String, String>) -> Value {
    let mut config = Map::new();
    for (key, _, input) in form_of(kind) {
        let raw = values.get(*key).map(|v| v.trim()).unwrap_or_default();
        let value = match input {
            Input::Flag => Value::Bool(raw == "true"),
            _ if raw.is_empty() => continue,
            Input::Number => raw
                .parse::<u64>()
                .map_or_else(|_| Value::from(raw), Value::from),
            Input::Text | Input::Secret => Value::from(raw),
        };
        config.insert((*key).to_owned(), value);
    }
    Value::Object(config)
}

#[component]
pub fn StorageTargets() -> impl IntoView {
    let list =
        LocalResource::new(|| api::get::<Vec<StorageTargetSummary>>(routes::STORAGE_TARGETS));
    let tests = RwSignal::new(BTreeMap::<i64, Result<StorageTestResult, Failure>>::new());
    let test = move |id: i64| {
        leptos::task::spawn_local(async move {
            let answer: Result<StorageTestResult, Failure> =
                api::post(&routes::storage_target_test(id), &()).await;
            tests.update(|t| {
                t.insert(id, answer);
            });
            list.refetch();
        });
    };
    let remove = move |id: i64| {
        leptos::task::spawn_local(async move {
            let _: Result<Deleted, Failure> =
                api::call("DELETE", &routes::storage_target(id), None::<&()>).await;
            list.refetch();
        });
    };
    view! {
        <h1>{t("nav.storage")}</h1>
        <NewTarget on_saved=move || list.refetch() />
        <section class="card">
            {list_view(list, "storage.empty", move |targets| view! {
                    <table id="targets">
                        <tbody>
                            {targets.into_iter().map(|target| {
                                let id = target.id;
                                let row_name = target.name.clone();
                                let status_class = format!("status {}", target.last_test_status);
                                view! {
                                    <tr data-name=row_name>
                                        <td>{target.name}</td>
                                        <td>{target.kind}</td>
                                        <td class=status_class>
                                            {target.last_test_status}
                                        </td>
                                        <td class="test-result">
                                            {move || tests.get().get(&id).cloned().map(|r| match r {
                                                Ok(ok) => view! {
                                                    <span class="status success">{ok.message} " (" {ok.latency_ms} " ms)"</span>
                                                }.into_any(),
                                                Err(failure) => view! { <ErrorNote failure /> }.into_any(),
                                            })}
                                        </td>
                                        <td>
                                            <button class="test" on:click=move |_| test(id)>{t("storage.test")}</button>
                                            " "
                                            <button class="link delete" on:click=move |_| remove(id)>{t("action.delete")}</button>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
            }.into_any())}
        </section>
    }
}

#[component]
fn NewTarget(on_saved: impl Fn() + Copy + 'static) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let kind = RwSignal::new("local_disk".to_owned());
    let values = RwSignal::new(BTreeMap::<String, String>::new());
    let error = RwSignal::new(None::<Failure>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let kind_now = kind.get_untracked();
        let body = serde_json::json!({
            "name": name.get_untracked(),
            "type": kind_now,
            "config": config_of(&kind_now, &values.get_untracked()),
        });
        leptos::task::spawn_local(async move {
            match api::post::<StorageTargetDetail>(routes::STORAGE_TARGETS, &body).await {
                Ok(_) => {
                    error.set(None);
                    name.set(String::new());
                    values.set(BTreeMap::new());
                    on_saved();
                }
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    view! {
        <section class="card">
            <h2>{t("storage.new")}</h2>
            <form id="new-target" on:submit=submit>
                <label>{t("field.name")}<input id="target-name" required bind:value=name /></label>
                <label>{t("field.type")}
                    <select id="target-type" on:change=move |ev| { kind.set(event_target_value(&ev)); values.set(BTreeMap::new()); }>
                        {FORMS.iter().map(|(k, _)| view! { <option value=*k>{*k}</option> }).collect_view()}
                    </select>
                </label>
                {move || form_of(&kind.get()).iter().map(|(key, label, input)| {
                    let key = *key;
                    let set = move |v: String| values.update(|m| { m.insert(key.to_owned(), v); });
                    // Controlled inputs: clearing the values after a save clears the form too.
                    let shown = move || values.get().get(key).cloned().unwrap_or_default();
                    match input {
                        Input::Flag => view! {
                            <label class="flag">
                                <input type="checkbox" name=key
                                    prop:checked=move || shown() == "true"
                                    on:change=move |ev| set(event_target_checked(&ev).to_string()) />
                                {*label}
                            </label>
                        }.into_any(),
                        _ => view! {
                            <label>{*label}
                                <input name=key
                                    type=match input { Input::Secret => "password", Input::Number => "number", _ => "text" }
                                    autocomplete="off"
                                    prop:value=shown
                                    on:input=move |ev| set(event_target_value(&ev)) />
                            </label>
                        }.into_any(),
                    }
                }).collect_view()}
                {move || error.get().map(|failure| view! { <ErrorNote failure /> })}
                <button id="save-target" type="submit">{t("action.save")}</button>
            </form>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_builds_typed_configs_the_server_parses() {
        let mut values = BTreeMap::new();
        values.insert("host".to_owned(), " ftp.example.com ".to_owned());
        values.insert("port".to_owned(), "2121".to_owned());
        values.insert("password".to_owned(), String::new());
        values.insert("useTLS".to_owned(), "true".to_owned());
        let config = config_of("ftp", &values);
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
    }
}
