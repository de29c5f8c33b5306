//! English and Simplified Chinese. Texts are looked up by key; the API's error codes are keys too,
//! so an error reads the same in every screen (the API's own message is shown beside it).

use leptos::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    /// The browser's preference: Chinese when its first language is Chinese.
    pub fn detect() -> Self {
        let preferred = web_sys::window()
            .and_then(|w| w.navigator().language())
            .unwrap_or_default();
        if preferred.to_lowercase().starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }
}

/// `(key, English, 简体中文)`.
const TEXTS: &[(&str, &str, &str)] = &[
    ("app.name", "Stowage", "Stowage"),
    ("nav.dashboard", "Dashboard", "仪表盘"),
    ("nav.logout", "Sign out", "退出登录"),
    ("nav.storage", "Storage targets", "存储目标"),
    ("nav.nodes", "Nodes", "节点"),
    ("nodes.add", "Add a node", "添加节点"),
    (
        "nodes.token_once",
        "Run these on the machine. The token is shown this once, for",
        "请在该机器上运行以下命令。令牌只显示这一次，节点：",
    ),
    (
        "nodes.empty",
        "No nodes yet. Add one, then run the commands it shows on that machine.",
        "还没有节点。添加一个，然后在那台机器上运行显示的命令。",
    ),
    ("nodes.rotate", "New token", "更换令牌"),
    ("action.copy", "Copy", "复制"),
    ("action.done", "Done", "完成"),
    ("NODE_INVALID", "Check the node's name.", "请检查节点名称。"),
    (
        "NODE_DUPLICATE_NAME",
        "A node with this name exists.",
        "已存在同名节点。",
    ),
    (
        "NODE_HAS_TASKS",
        "Backup tasks still run on this node.",
        "仍有备份任务在此节点上运行。",
    ),
    ("storage.new", "Add a storage target", "添加存储目标"),
    (
        "storage.empty",
        "No storage targets yet. Add one above: a directory on a node is the simplest.",
        "还没有存储目标。请在上方添加，节点上的目录最简单。",
    ),
    ("storage.test", "Test", "测试"),
    ("action.save", "Save", "保存"),
    ("action.delete", "Delete", "删除"),
    ("field.name", "Name", "名称"),
    ("field.type", "Type", "类型"),
    (
        "STORAGE_TARGET_INVALID",
        "Check the target's name and type.",
        "请检查存储目标的名称和类型。",
    ),
    (
        "STORAGE_TARGET_INVALID_CONFIG",
        "The configuration is incomplete or wrong.",
        "配置不完整或有误。",
    ),
    (
        "STORAGE_TARGET_NAME_EXISTS",
        "A target with this name exists.",
        "已存在同名的存储目标。",
    ),
    (
        "STORAGE_TARGET_TEST_FAILED",
        "The test failed.",
        "测试失败。",
    ),
    (
        "STORAGE_TARGET_IN_USE",
        "Backup tasks still write to this target.",
        "仍有备份任务写入此存储目标。",
    ),
    (
        "NODE_POOL_EMPTY",
        "No node is online to run this.",
        "没有在线节点可执行此操作。",
    ),
    ("setup.title", "Create the administrator", "创建管理员"),
    (
        "setup.hint",
        "Stowage has no users yet. The first account is the administrator.",
        "Stowage 还没有用户。第一个账号即为管理员。",
    ),
    ("setup.submit", "Create and sign in", "创建并登录"),
    ("login.title", "Sign in", "登录"),
    ("login.submit", "Sign in", "登录"),
    ("field.username", "User name", "用户名"),
    ("field.password", "Password", "密码"),
    ("field.display_name", "Display name", "显示名称"),
    ("dash.tasks", "Backup tasks", "备份任务"),
    ("dash.enabled", "enabled", "已启用"),
    (
        "dash.success_rate",
        "Success rate (30 days)",
        "成功率（30 天）",
    ),
    ("dash.protected", "Data protected", "受保护数据"),
    ("dash.nodes", "Nodes", "节点"),
    ("dash.online", "online", "在线"),
    ("dash.offline", "offline", "离线"),
    ("dash.last_backup", "Last backup", "最近一次备份"),
    ("dash.never", "never", "从未"),
    (
        "dash.chart",
        "Runs per day, last 30 days",
        "近 30 天每日运行次数",
    ),
    (
        "dash.failing",
        "Tasks whose last run failed",
        "最近一次运行失败的任务",
    ),
    ("dash.overdue", "Overdue tasks", "逾期未备份的任务"),
    ("dash.none", "None — all good.", "无，一切正常。"),
    ("dash.recent", "Recent activity", "最近活动"),
    (
        "dash.empty",
        "No runs yet. Add a storage target and a backup task, then run it.",
        "还没有运行记录。先添加存储目标和备份任务，然后运行它。",
    ),
    ("dash.storage", "Storage usage", "存储用量"),
    ("status.success", "success", "成功"),
    ("status.failed", "failed", "失败"),
    ("status.partial", "partial", "部分成功"),
    ("status.running", "running", "运行中"),
    ("loading", "Loading…", "加载中…"),
    (
        "AUTH_INVALID_CREDENTIALS",
        "Wrong user name or password.",
        "用户名或密码错误。",
    ),
    (
        "AUTH_RATE_LIMITED",
        "Too many attempts; wait and try again.",
        "尝试次数过多，请稍后再试。",
    ),
    (
        "AUTH_SETUP_INVALID",
        "Check the fields below.",
        "请检查下面的字段。",
    ),
    (
        "AUTH_LOGIN_INVALID",
        "Check the fields below.",
        "请检查下面的字段。",
    ),
    ("AUTH_REQUIRED", "Please sign in.", "请先登录。"),
    (
        "AUTH_INVALID_TOKEN",
        "Your session ended; sign in again.",
        "会话已结束，请重新登录。",
    ),
    (
        "NETWORK",
        "The server could not be reached.",
        "无法连接服务器。",
    ),
];

pub fn text(lang: Lang, key: &str) -> String {
    TEXTS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, en, zh)| match lang {
            Lang::En => *en,
            Lang::Zh => *zh,
        })
        .unwrap_or(key)
        .to_owned()
}

/// The current language, from the context the app provides.
pub fn use_lang() -> RwSignal<Lang> {
    use_context::<RwSignal<Lang>>().unwrap_or_else(|| RwSignal::new(Lang::En))
}

/// A text that follows the language switch.
pub fn t(key: &'static str) -> impl Fn() -> String + Copy + 'static {
    let lang = use_lang();
    move || text(lang.get(), key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_has_both_languages_and_every_code_is_the_apis() {
        for (key, en, zh) in TEXTS {
            assert!(!en.is_empty() && !zh.is_empty(), "{key}");
            let is_code = key.chars().all(|c| c.is_ascii_uppercase() || c == '_');
            if is_code && *key != "NETWORK" {
                assert!(
                    stowage_shared::ErrorCode::from_code(key).is_some(),
                    "{key} is not an API error code"
                );
            }
        }
        let keys: Vec<&str> = TEXTS.iter().map(|(k, _, _)| *k).collect();
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "a key is listed twice");
        assert_eq!(text(Lang::Zh, "nav.dashboard"), "仪表盘");
        assert_eq!(text(Lang::En, "no.such.key"), "no.such.key");
    }
}
