//! Stowage's web console: a Leptos single-page app, rendered in the browser and served as static
//! files by the same Worker as the API (`wrangler.toml`'s `[assets]`). Every request and answer is
//! a type of `stowage_shared::api`, so the console cannot drift from the API.
//!
//! `api` talks to the Worker, `app` is the shell and its routes, `widgets` the pieces every page
//! uses, `i18n` holds the English and Simplified Chinese texts (the API's error
//! `code` is translated here, so messages read the same everywhere), `pages` the screens.

mod api;
mod app;
mod format;
mod forms;
mod i18n;
mod live;
mod pages;
mod widgets;

use wasm_bindgen::prelude::wasm_bindgen;

/// Runs when the module loads (`index.html` imports it).
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
