//! The app shell: language, session, routes and the frame around every signed-in page.

use crate::api;
use crate::i18n::{Lang, t, text, use_lang};
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
use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::hooks::use_navigate;
use leptos_router::path;
use stowage_shared::api::{LoggedOut, routes};

/// Whether a session token is held; pages that need one send the user to `/login`.
#[derive(Debug, Clone, Copy)]
pub struct Session(pub RwSignal<bool>);

pub fn use_session() -> Session {
    use_context::<Session>().unwrap_or_else(|| Session(RwSignal::new(false)))
}

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

/// An error as the user reads it: the translated code, and the API's own words.
#[component]
pub fn ErrorNote(failure: api::Failure) -> impl IntoView {
    let lang = use_lang();
    let api::Failure { code, message, .. } = failure;
    let attr = code.clone();
    view! {
        <p class="error" role="alert" data-code=attr>
            {move || text(lang.get(), &code)}
            {(!message.is_empty()).then(|| view! { <span class="detail">" " {message.clone()}</span> })}
        </p>
    }
}

/// A list from the API as a page shows it: loading, its error, an empty state that says what to
/// do next, or the rows.
pub fn list_view<T: Clone + 'static>(
    list: LocalResource<Result<Vec<T>, api::Failure>>,
    empty: &'static str,
    rows: impl Fn(Vec<T>) -> AnyView + Copy + 'static,
) -> impl Fn() -> AnyView + 'static {
    move || match list.get() {
        None => view! { <p class="hint">{t("loading")}</p> }.into_any(),
        Some(Err(failure)) => view! { <ErrorNote failure /> }.into_any(),
        Some(Ok(items)) if items.is_empty() => view! { <p class="empty">{t(empty)}</p> }.into_any(),
        Some(Ok(items)) => rows(items),
    }
}

/// Previous and next page of a paged list, and where it stands (`here / pages · total`); `go`
/// is called with the page to show.
#[component]
pub fn Pager(
    #[prop(into)] page_of_id: String,
    here: u64,
    pages: u64,
    total: u64,
    go: impl Fn(u64) + Copy + 'static,
) -> impl IntoView {
    view! {
        <nav class="pager row" aria-label="pages">
            <button class="link page-prev" disabled=here <= 1 on:click=move |_| go(here.saturating_sub(1).max(1))>"‹"</button>
            <span id=page_of_id>{here} " / " {pages} " · " {total}</span>
            <button class="link page-next" disabled=here >= pages on:click=move |_| go(here + 1)>"›"</button>
        </nav>
    }
}

/// Asks before something that cannot be undone.
pub fn confirm(question: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.confirm_with_message(question).ok())
        .unwrap_or(false)
}

/// Starts a download of `url` (an attachment) without leaving the page.
pub fn open_download(url: &str) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    if let Ok(link) = document.create_element("a") {
        let _ = link.set_attribute("href", url);
        let _ = link.set_attribute("download", "");
        if let Some(link) = wasm_bindgen::JsCast::dyn_ref::<web_sys::HtmlElement>(&link) {
            link.click();
        }
    }
}
