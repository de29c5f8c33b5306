//! The app shell: language, session, routes and the frame around every signed-in page.

use crate::api;
use crate::i18n::{Lang, t, use_lang};
use crate::pages::{
    admin::{AuditLog, Profile, SettingsPage, SystemPage},
    dashboard::Dashboard,
    login::SignIn,
    nodes::Nodes,
    notifications::Notifications,
    records::{RecordPage, Records},
    storage::{GoogleDriveCallback, StorageTargets},
    tasks::Tasks,
};
use crate::widgets::{Session, use_session};
use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::hooks::use_navigate;
use leptos_router::path;
use stowage_shared::api::{LoggedOut, routes};

#[component]
pub fn App() -> impl IntoView {
    provide_context(RwSignal::new(Lang::detect()));
    let session = Session(RwSignal::new(api::token().is_some()));
    provide_context(session);
    // Any answer that says the session is over (expired, revoked) sends the user to sign in.
    api::on_session_ended(move || session.0.set(false));
    view! {
        <Router>
            <Routes fallback=|| view! { <p class="empty">"404"</p> }>
                <Route path=path!("/login") view=SignIn />
                <Route path=path!("/") view=|| view! { <Frame><Dashboard /></Frame> } />
                <Route path=path!("/dashboard") view=|| view! { <Frame><Dashboard /></Frame> } />
                <Route path=path!("/nodes") view=|| view! { <Frame><Nodes /></Frame> } />
                <Route path=path!("/storage-targets") view=|| view! { <Frame><StorageTargets /></Frame> } />
                <Route path=path!("/storage-targets/google-drive/callback") view=|| view! { <Frame><GoogleDriveCallback /></Frame> } />
                <Route path=path!("/notifications") view=|| view! { <Frame><Notifications /></Frame> } />
                <Route path=path!("/audit-logs") view=|| view! { <Frame><AuditLog /></Frame> } />
                <Route path=path!("/settings") view=|| view! { <Frame><SettingsPage /></Frame> } />
                <Route path=path!("/system") view=|| view! { <Frame><SystemPage /></Frame> } />
                <Route path=path!("/profile") view=|| view! { <Frame><Profile /></Frame> } />
                <Route path=path!("/backup-tasks") view=|| view! { <Frame><Tasks /></Frame> } />
                <Route path=path!("/backup-records") view=|| view! { <Frame><Records /></Frame> } />
                <Route path=path!("/backup-records/:id") view=|| view! { <Frame><RecordPage /></Frame> } />
            </Routes>
        </Router>
    }
}

/// The frame of a signed-in page: navigation, language switch, sign-out.
#[component]
fn Frame(children: ChildrenFn) -> impl IntoView {
    let session = use_session();
    let navigate = use_navigate();
    let lang = use_lang();
    Effect::new(move |_| {
        if !session.0.get() {
            navigate("/login", Default::default());
        }
    });
    let sign_out = move |_| {
        leptos::task::spawn_local(async move {
            // The server revokes the session; the token is forgotten either way.
            let _: Result<LoggedOut, _> = api::post(routes::AUTH_LOGOUT, &()).await;
            api::set_token(None);
            session.0.set(false);
        });
    };
    let other = move || match lang.get() {
        Lang::En => "中文",
        Lang::Zh => "English",
    };
    view! {
        <header class="bar">
            <strong class="brand">{t("app.name")}</strong>
            <nav>
                <A href="/">{t("nav.dashboard")}</A>
                <A href="/backup-tasks">{t("nav.tasks")}</A>
                <A href="/backup-records">{t("nav.records")}</A>
                <A href="/nodes">{t("nav.nodes")}</A>
                <A href="/storage-targets">{t("nav.storage")}</A>
                <A href="/notifications">{t("nav.notifications")}</A>
                <A href="/audit-logs">{t("nav.audit")}</A>
                <A href="/settings">{t("nav.settings")}</A>
                <A href="/system">{t("nav.system")}</A>
            </nav>
            <span class="grow"></span>
            <button class="link" on:click=move |_| lang.update(|l| *l = if *l == Lang::En { Lang::Zh } else { Lang::En })>
                {other}
            </button>
            <A href="/profile" attr:id="profile-link">{t("nav.profile")}</A>
            <button id="sign-out" on:click=sign_out>{t("nav.logout")}</button>
        </header>
        <main>{move || session.0.get().then(|| children())}</main>
    }
}
