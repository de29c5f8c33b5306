//! Nodes: the machines with an agent. Adding a node (or rotating its token) shows the token once,
//! inside the commands that install it; the server keeps only its hash.

use crate::api::{self, Failure};
use crate::format;
use crate::i18n::t;
use crate::widgets::{ErrorNote, Pager};
use leptos::prelude::*;
use stowage_shared::api::{
    Deleted, NodeOutput, NodeRequest, NodeStatus, NodeWithToken, Page, routes,
};

/// The commands that put `token` on a machine and start its agent against `server`. The token
/// goes into a 0600 file, never onto the agent's command line (where `ps` would show it).
pub fn install_commands(server: &str, token: &str) -> String {
    format!(
        "sudo install -d -m 700 /etc/stowage\n\
         printf '%s\\n' '{token}' | sudo tee /etc/stowage/agent.token >/dev/null\n\
         sudo chmod 600 /etc/stowage/agent.token\n\
         stowage-agent run --server {server} --token-file /etc/stowage/agent.token"
    )
}

/// What a node's agent can do, in one line: its parallelism, rclone, database tools (their full
/// version strings go in the title, as the tools print them at length).
fn capabilities(caps: &stowage_shared::api::Capabilities) -> (String, String) {
    let mut short = Vec::new();
    let mut long = Vec::new();
    if caps.max_concurrent > 0 {
        short.push(format!("{} at once", caps.max_concurrent));
    }
    if let Some(version) = &caps.rclone {
        short.push("rclone".to_owned());
        long.push(version.clone());
    }
    for (tool, version) in &caps.tools {
        short.push(tool.clone());
        long.push(format!("{tool}: {version}"));
    }
    (short.join(" · "), long.join("\n"))
}

fn origin() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
}

/// Nodes per page: a fleet of thousands is read a page at a time.
const PAGE_SIZE: u64 = 50;

/// The list's query string for a search, a status and a page.
fn query(search: &str, status: &str, page: u64) -> String {
    let mut q = format!("?page={page}&pageSize={PAGE_SIZE}");
    if !status.is_empty() {
        q.push_str(&format!("&status={status}"));
    }
    let search = search.trim();
    if !search.is_empty() {
        let encoded: String = form_urlencoded::byte_serialize(search.as_bytes()).collect();
        q.push_str(&format!("&q={encoded}"));
    }
    q
}

#[component]
pub fn Nodes() -> impl IntoView {
    let search = RwSignal::new(String::new());
    let status = RwSignal::new(String::new());
    let page = RwSignal::new(1_u64);
    let list = LocalResource::new(move || {
        let q = query(&search.get(), &status.get(), page.get());
        async move { api::get::<Page<NodeOutput>>(&format!("{}{q}", routes::NODES)).await }
    });
    let shown = RwSignal::new(None::<NodeWithToken>);
    let error = RwSignal::new(None::<Failure>);
    let name = RwSignal::new(String::new());
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = NodeRequest {
            name: name.get_untracked(),
        };
        leptos::task::spawn_local(async move {
            match api::post::<NodeWithToken>(routes::NODES, &body).await {
                Ok(made) => {
                    name.set(String::new());
                    error.set(None);
                    shown.set(Some(made));
                    list.refetch();
                }
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    let rotate = move |id: i64| {
        leptos::task::spawn_local(async move {
            match api::post::<NodeWithToken>(&routes::node_rotate_token(id), &()).await {
                Ok(made) => shown.set(Some(made)),
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    let renaming = RwSignal::new(None::<(i64, String)>);
    let rename = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some((id, name)) = renaming.get_untracked() else {
            return;
        };
        leptos::task::spawn_local(async move {
            let body = NodeRequest { name };
            match api::call::<NodeOutput>("PUT", &routes::node(id), Some(&body)).await {
                Ok(_) => {
                    error.set(None);
                    renaming.set(None);
                    list.refetch();
                }
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    let remove = move |id: i64| {
        leptos::task::spawn_local(async move {
            match api::call::<Deleted>("DELETE", &routes::node(id), None::<&()>).await {
                Ok(_) => {
                    error.set(None);
                    list.refetch();
                }
                Err(failure) => error.set(Some(failure)),
            }
        });
    };
    view! {
        <h1>{t("nav.nodes")}</h1>
        <section class="card">
            <h2>{t("nodes.add")}</h2>
            <form id="new-node" on:submit=add>
                <label>{t("field.name")}<input id="node-name" required bind:value=name /></label>
                <button id="add-node" type="submit">{t("nodes.add")}</button>
            </form>
            {move || error.get().map(|failure| view! { <ErrorNote failure /> })}
            {move || shown.get().map(|made| {
                let commands = install_commands(&origin(), made.token.expose());
                let copy_text = commands.clone();
                let copy = move |_| {
                    if let Some(w) = web_sys::window() {
                        let _ = w.navigator().clipboard().write_text(&copy_text);
                    }
                };
                view! {
                    <div id="token" class="token" data-node=made.node.name.clone()>
                        <p>{t("nodes.token_once")} " " <strong>{made.node.name.clone()}</strong></p>
                        <pre>{commands}</pre>
                        <button class="link" on:click=copy>{t("action.copy")}</button>
                        <button class="link" on:click=move |_| shown.set(None)>{t("action.done")}</button>
                    </div>
                }
            })}
        </section>
        <section class="card">
            <form class="row filters" on:submit=|ev| ev.prevent_default()>
                <input id="node-search" type="search" placeholder=move || t("nodes.search")
                    on:input=move |ev| { search.set(event_target_value(&ev)); page.set(1); } />
                <label>{t("records.status")}
                    <select id="node-status" on:change=move |ev| { status.set(event_target_value(&ev)); page.set(1); }>
                        <option value="">{t("records.any")}</option>
                        <option value="online">{t("dash.online")}</option>
                        <option value="offline">{t("dash.offline")}</option>
                    </select>
                </label>
            </form>
            {move || match list.get() {
                None => view! { <p class="hint">{t("loading")}</p> }.into_any(),
                Some(Err(failure)) => view! { <ErrorNote failure /> }.into_any(),
                Some(Ok(nodes)) if nodes.items.is_empty() => {
                    let filtered = !search.get_untracked().trim().is_empty() || !status.get_untracked().is_empty();
                    view! { <p class="empty">{t(if filtered { "nodes.none_match" } else { "nodes.empty" })}</p> }.into_any()
                }
                Some(Ok(nodes)) => {
                    let pages = nodes.total.div_ceil(PAGE_SIZE).max(1);
                    let (here, total) = (nodes.page, nodes.total);
                    view! {
                    <table id="nodes">
                        <tbody>
                            {nodes.items.into_iter().map(|node| {
                                let id = node.id;
                                let online = node.status == NodeStatus::Online;
                                let row_name = node.name.clone();
                                let old_name = node.name.clone();
                                let caps = capabilities(&node.capabilities);
                                view! {
                                    <tr data-name=row_name>
                                        <td>
                                            {move || match renaming.get() {
                                                Some((rid, _)) if rid == id => view! {
                                                    <form class="row rename" on:submit=rename>
                                                        <input class="new-name" aria-label="new name" required
                                                            prop:value=move || renaming.get().map(|(_, n)| n).unwrap_or_default()
                                                            on:input=move |ev| renaming.set(Some((id, event_target_value(&ev)))) />
                                                        <button type="submit">{t("action.save")}</button>
                                                        <button type="button" class="link" on:click=move |_| renaming.set(None)>{t("action.cancel")}</button>
                                                    </form>
                                                }.into_any(),
                                                _ => view! { {node.name.clone()} }.into_any(),
                                            }}
                                        </td>
                                        <td class=if online { "status success" } else { "status failed" }>
                                            {if online { t("dash.online") } else { t("dash.offline") }}
                                        </td>
                                        <td>{node.hostname} " " <span class="sub">{node.os} " " {node.arch}</span></td>
                                        <td>{node.agent_version}
                                            <div class="sub caps" title=caps.1>{caps.0}</div>
                                        </td>
                                        <td class="sub">{node.last_seen_at.as_deref().map(format::when)}
                                            {(node.queue_depth > 0).then(|| format!(" · {} queued", node.queue_depth))}
                                        </td>
                                        <td class="actions">
                                            <button class="link rename-button" on:click=move |_| renaming.set(Some((id, old_name.clone())))>{t("nodes.rename")}</button>
                                            <button class="link rotate" on:click=move |_| rotate(id)>{t("nodes.rotate")}</button>
                                            <button class="link delete" on:click=move |_| remove(id)>{t("action.delete")}</button>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                        <Pager page_of_id="nodes-page-of" here pages total go=move |p| page.set(p) />
                    }.into_any()
                }
            }}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_asks_for_one_page_filtered() {
        assert_eq!(query("", "", 1), "?page=1&pageSize=50");
        assert_eq!(
            query(" nas 01 ", "offline", 3),
            "?page=3&pageSize=50&status=offline&q=nas+01"
        );
    }

    #[test]
    fn capabilities_read_in_one_line() {
        let mut caps = stowage_shared::api::Capabilities {
            rclone: Some("v1.75.2".to_owned()),
            max_concurrent: 2,
            ..Default::default()
        };
        caps.tools.insert("pg_dump".to_owned(), "15.19".to_owned());
        assert_eq!(
            capabilities(&caps),
            (
                "2 at once · rclone · pg_dump".to_owned(),
                "v1.75.2\npg_dump: 15.19".to_owned()
            )
        );
    }

    #[test]
    fn the_install_commands_keep_the_token_off_the_agents_command_line() {
        let text = install_commands("https://b.example", "ab12");
        let run = text.lines().last().unwrap_or_default();
        assert_eq!(
            run,
            "stowage-agent run --server https://b.example --token-file /etc/stowage/agent.token"
        );
        assert!(text.contains("'ab12'") && !run.contains("ab12"));
        assert!(text.contains("chmod 600"));
    }
}
