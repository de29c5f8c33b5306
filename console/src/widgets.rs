//! Pieces every page uses: the session flag, the error note, list and pager views, and the
//! browser's confirm and download. The shell (`app`) and the pages both build on these; they
//! import neither.

use crate::api;
use crate::i18n::{t, text, use_lang};
use leptos::prelude::*;

/// Whether a session token is held; pages that need one send the user to `/login`.
#[derive(Debug, Clone, Copy)]
pub struct Session(pub RwSignal<bool>);

pub fn use_session() -> Session {
    use_context::<Session>().unwrap_or_else(|| Session(RwSignal::new(false)))
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
            <button class="link page-prev" disabled={here <= 1} on:click=move |_| go(here.saturating_sub(1).max(1))>"‹"</button>
            <span id=page_of_id>{here} " / " {pages} " · " {total}</span>
            <button class="link page-next" disabled={here >= pages} on:click=move |_| go(here + 1)>"›"</button>
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

/// Resolves after `ms` milliseconds (the browser's timer), for polling work that has no stream.
pub async fn pause(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
