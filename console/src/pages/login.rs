//! First-run setup and sign-in: one screen that asks the server which of the two it is.

use crate::api::{self, Failure};
use crate::i18n::t;
use crate::widgets::{ErrorNote, use_session};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use stowage_shared::SecretString;
use stowage_shared::api::{AuthPayload, LoginRequest, SetupRequest, SetupStatus, routes};

#[component]
pub fn SignIn() -> impl IntoView {
    let status = LocalResource::new(|| api::get::<SetupStatus>(routes::AUTH_SETUP_STATUS));
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let display_name = RwSignal::new(String::new());
    let error = RwSignal::new(None::<Failure>);
    let busy = RwSignal::new(false);
    let session = use_session();
    let navigate = use_navigate();
    let setup = move || {
        status
            .get()
            .and_then(|s| s.ok())
            .is_some_and(|s| !s.initialized)
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let first_run = setup();
        let navigate = navigate.clone();
        busy.set(true);
        leptos::task::spawn_local(async move {
            let password = SecretString::new(password.get_untracked());
            let answer: Result<AuthPayload, Failure> = if first_run {
                let name = display_name.get_untracked();
                let body = SetupRequest {
                    username: username.get_untracked(),
                    password,
                    display_name: (!name.trim().is_empty()).then_some(name),
                };
                api::post(routes::AUTH_SETUP, &body).await
            } else {
                let body = LoginRequest {
                    username: username.get_untracked(),
                    password,
                };
                api::post(routes::AUTH_LOGIN, &body).await
            };
            busy.set(false);
            match answer {
                Ok(payload) => {
                    api::set_token(Some(payload.token.expose()));
                    session.0.set(true);
                    error.set(None);
                    navigate("/", Default::default());
                }
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    view! {
        <section class="card narrow">
            <h1>{move || if setup() { t("setup.title")() } else { t("login.title")() }}</h1>
            {move || setup().then(|| view! { <p class="hint">{t("setup.hint")}</p> })}
            <form on:submit=submit>
                <label>{t("field.username")}
                    <input id="username" autocomplete="username" required
                        bind:value=username />
                </label>
                {move || setup().then(|| view! {
                    <label>{t("field.display_name")}
                        <input id="display-name" bind:value=display_name />
                    </label>
                })}
                <label>{t("field.password")}
                    <input id="password" type="password" required
                        autocomplete=move || if setup() { "new-password" } else { "current-password" }
                        bind:value=password />
                </label>
                {move || error.get().map(|failure| view! { <ErrorNote failure /> })}
                <button id="submit" type="submit" disabled=move || busy.get()>
                    {move || if setup() { t("setup.submit")() } else { t("login.submit")() }}
                </button>
            </form>
        </section>
    }
}
