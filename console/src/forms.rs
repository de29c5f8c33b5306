//! Forms driven by a field list: storage targets and notification channels keep their settings in
//! a JSON `config` whose keys differ per type, so each type is a list of fields, rendered by one
//! component and read back into typed JSON by one function. Secret fields are password inputs;
//! an edited record shows the API's mask (`********`), and sending it back keeps the stored value.

use crate::i18n::t;
use leptos::prelude::*;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What the API shows in place of a stored secret.
pub const MASK: &str = "********";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Text,
    Secret,
    Number,
    Flag,
    /// Several values, one per line (sent as a JSON array).
    List,
    /// One of these values.
    Choice(&'static [&'static str]),
}

/// A form field: config key, label, input.
pub type Field = (&'static str, &'static str, Input);

/// The field values as typed.
pub type Values = BTreeMap<String, String>;

/// The typed config from the form's text values; empty fields are left to the server's defaults.
pub fn config_of(fields: &[Field], values: &Values) -> Value {
    let mut config = Map::new();
    for (key, _, input) in fields {
        let raw = values.get(*key).map(|v| v.trim()).unwrap_or_default();
        let value = match input {
            Input::Flag => Value::Bool(raw == "true"),
            _ if raw.is_empty() => continue,
            Input::Number => raw
                .parse::<u64>()
                .map_or_else(|_| Value::from(raw), Value::from),
            Input::List => Value::from(
                raw.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>(),
            ),
            Input::Text | Input::Secret | Input::Choice(_) => Value::from(raw),
        };
        config.insert((*key).to_owned(), value);
    }
    Value::Object(config)
}

/// The form's text values of a stored config (the reverse of [`config_of`]).
pub fn values_of(fields: &[Field], config: &Value) -> Values {
    let mut values = Values::new();
    for (key, _, input) in fields {
        let text = match (&config[*key], input) {
            (Value::Null, _) => continue,
            (Value::Bool(b), _) => b.to_string(),
            (Value::Number(n), _) => n.to_string(),
            (Value::String(s), _) => s.clone(),
            (Value::Array(items), _) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n"),
            (other, _) => other.to_string(),
        };
        values.insert((*key).to_owned(), text);
    }
    values
}

/// The inputs of `fields`, bound to `values` (controlled: clearing the values clears the form).
pub fn fields_view(fields: &'static [Field], values: RwSignal<Values>) -> impl IntoView {
    fields
        .iter()
        .map(move |(key, label, input)| {
            let key = *key;
            let label: &'static str = label;
            let set = move |v: String| {
                values.update(|m| {
                    m.insert(key.to_owned(), v);
                })
            };
            let shown = move || values.get().get(key).cloned().unwrap_or_default();
            match *input {
                Input::Flag => view! {
                    <label class="flag">
                        <input type="checkbox" name=key
                            prop:checked=move || shown() == "true"
                            on:change=move |ev| set(event_target_checked(&ev).to_string()) />
                        {t(label)}
                    </label>
                }
                .into_any(),
                Input::List => view! {
                    <label>{t(label)}
                        <textarea name=key rows="2" prop:value=shown on:input=move |ev| set(event_target_value(&ev))></textarea>
                    </label>
                }
                .into_any(),
                Input::Choice(options) => view! {
                    <label>{t(label)}
                        <select name=key prop:value=shown on:change=move |ev| set(event_target_value(&ev))>
                            <option value="">{t("forms.default")}</option>
                            {options.iter().map(|o| view! { <option value=*o>{*o}</option> }).collect_view()}
                        </select>
                    </label>
                }
                .into_any(),
                other => view! {
                    <label>{t(label)}
                        <input name=key
                            type=match other { Input::Secret => "password", Input::Number => "number", _ => "text" }
                            autocomplete="off"
                            prop:value=shown
                            on:input=move |ev| set(event_target_value(&ev)) />
                    </label>
                }
                .into_any(),
            }
        })
        .collect_view()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[Field] = &[
        ("host", "Host", Input::Text),
        ("port", "Port", Input::Number),
        ("password", "Password", Input::Secret),
        ("to", "To", Input::List),
        ("tls", "TLS", Input::Flag),
        ("security", "Security", Input::Choice(&["tls", "none"])),
    ];

    /// Every label of every config form, for the translation check.
    pub fn all_labels() -> Vec<&'static str> {
        crate::pages::storage::FORMS
            .iter()
            .chain(crate::pages::notifications::FORMS)
            .flat_map(|(_, fields)| fields.iter().map(|(_, label, _)| *label))
            .collect()
    }

    #[test]
    fn every_form_label_has_its_chinese() {
        for label in all_labels() {
            assert!(crate::i18n::has(label), "{label:?} has no Chinese text");
        }
    }

    #[test]
    fn values_and_configs_round_trip() {
        let mut values = Values::new();
        values.insert("host".to_owned(), " smtp.example.com ".to_owned());
        values.insert("port".to_owned(), "587".to_owned());
        values.insert("password".to_owned(), String::new());
        values.insert(
            "to".to_owned(),
            "a@example.com\n\n b@example.com ".to_owned(),
        );
        values.insert("tls".to_owned(), "true".to_owned());
        let config = config_of(FIELDS, &values);
        assert_eq!(
            config,
            serde_json::json!({"host": "smtp.example.com", "port": 587, "tls": true,
                               "to": ["a@example.com", "b@example.com"]})
        );
        let back = values_of(FIELDS, &config);
        assert_eq!(back["to"], "a@example.com\nb@example.com");
        assert_eq!(config_of(FIELDS, &back), config);
    }
}
