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
    ("nav.tasks", "Backup tasks", "备份任务"),
    ("nav.records", "Backups", "备份记录"),
    ("action.edit", "Edit", "编辑"),
    ("action.add", "Add", "添加"),
    ("action.cancel", "Cancel", "取消"),
    ("action.close", "Close", "关闭"),
    ("tasks.new", "New backup task", "新建备份任务"),
    ("tasks.edit", "Edit backup task", "编辑备份任务"),
    (
        "tasks.empty",
        "No backup tasks yet. Add a storage target first, then create a task here.",
        "还没有备份任务。请先添加存储目标，然后在这里创建任务。",
    ),
    ("tasks.node", "Node", "节点"),
    ("tasks.schedule", "Schedule", "计划"),
    ("tasks.last", "Last run", "最近运行"),
    ("tasks.run", "Run now", "立即运行"),
    ("tasks.enable", "Enable", "启用"),
    ("tasks.disable", "Disable", "停用"),
    ("tasks.type_file", "Files and directories", "文件和目录"),
    ("tasks.sources", "What to back up", "备份内容"),
    (
        "tasks.excludes",
        "Leave out (one pattern per line)",
        "排除（每行一个模式）",
    ),
    ("tasks.db_file", "Database file", "数据库文件"),
    ("tasks.db_server", "Database server", "数据库服务器"),
    ("tasks.db_host", "Host", "主机"),
    ("tasks.db_port", "Port", "端口"),
    (
        "tasks.globals",
        "Also roles and tablespaces (globals)",
        "同时备份角色和表空间（全局对象）",
    ),
    ("tasks.targets", "Store in", "存储到"),
    ("tasks.preset", "Common schedules", "常用计划"),
    ("tasks.manual", "Only when run by hand", "仅手动运行"),
    ("tasks.daily", "Every day at 03:00", "每天 03:00"),
    ("tasks.hourly", "Every hour", "每小时"),
    ("tasks.weekly", "Sundays at 03:00", "每周日 03:00"),
    (
        "tasks.monthly",
        "The 1st of each month at 03:00",
        "每月 1 日 03:00",
    ),
    ("tasks.cron", "Cron expression", "Cron 表达式"),
    ("tasks.zone", "Time zone", "时区"),
    ("tasks.next_fires", "Next runs:", "接下来的运行时间："),
    (
        "tasks.manual_hint",
        "No schedule: the task runs when you press Run now.",
        "无计划：点击“立即运行”时才会运行。",
    ),
    ("tasks.keep", "Keep", "保留"),
    ("tasks.keep_last", "The newest N backups", "最新的 N 个备份"),
    (
        "tasks.keep_days",
        "Backups younger than N days",
        "N 天内的备份",
    ),
    ("tasks.compression", "Compression", "压缩"),
    ("tasks.format", "Stored as", "存储方式"),
    ("records.changes", "Files", "文件"),
    ("records.new", "new", "新增"),
    ("records.changed", "changed", "修改"),
    ("records.unmodified", "unchanged", "未变"),
    ("records.snapshot", "snapshot", "快照"),
    (
        "tasks.format_repository",
        "Repository (deduplicated, encrypted; restic-compatible)",
        "仓库（去重、加密；兼容 restic）",
    ),
    (
        "tasks.format_archive",
        "Archive (one tar per run)",
        "归档（每次一个 tar）",
    ),
    ("tasks.none", "none", "不压缩"),
    (
        "tasks.keep_hint",
        "0 and 0 keep every backup. Otherwise a backup is kept while any rule keeps it.",
        "两项都为 0 时保留全部备份；否则只要任一规则保留，备份就会保留。",
    ),
    (
        "tasks.discover",
        "List the server's databases",
        "列出服务器上的数据库",
    ),
    (
        "tasks.all_databases",
        "Tick none to back up all of them.",
        "不勾选则备份全部数据库。",
    ),
    ("tasks.chosen", "Chosen:", "已选择："),
    ("picker.browse", "Browse the node…", "浏览节点…"),
    ("picker.up", "Up", "上一级"),
    ("picker.choose", "Choose this directory", "选择此目录"),
    (
        "picker.truncated",
        "Only the first entries are shown.",
        "只显示了前面的条目。",
    ),
    ("records.status", "Status", "状态"),
    ("records.any", "any", "全部"),
    ("records.task", "Task", "任务"),
    ("records.from", "From", "开始日期"),
    ("records.to", "To", "结束日期"),
    (
        "records.empty",
        "No backups match. Run a task from Backup tasks, or change the filter.",
        "没有符合条件的备份。可以在“备份任务”中运行任务，或修改筛选条件。",
    ),
    ("records.delete_selected", "Delete selected", "删除所选"),
    ("records.started", "Started", "开始时间"),
    ("records.took", "Took", "耗时"),
    ("records.size", "Size", "大小"),
    ("records.files", "files", "个文件"),
    ("records.source", "read", "读取"),
    ("records.databases", "Databases", "数据库"),
    (
        "records.removed",
        "Removed by retention",
        "已被保留策略删除",
    ),
    ("records.download", "Download", "下载"),
    ("records.restore", "Restore", "恢复"),
    ("records.verify", "Check the data", "校验数据"),
    ("browse.title", "Files in this snapshot", "快照中的文件"),
    ("browse.picked", "picked for a restore", "已选择用于恢复"),
    ("browse.download", "download", "下载"),
    ("browse.download_tar", "download as tar", "下载为 tar"),
    (
        "browse.truncated",
        "Only the first 2,000 entries are shown.",
        "只显示前 2000 项。",
    ),
    ("browse.only", "Only these are restored:", "只恢复这些："),
    (
        "records.verify_running",
        "Checking the snapshot…",
        "正在校验快照…",
    ),
    ("records.verify_whole", "The backup is whole", "备份完好"),
    (
        "records.verify_damaged",
        "The backup is damaged",
        "备份已损坏",
    ),
    (
        "records.verify_affected",
        "Backups that need the damaged data:",
        "需要受损数据的备份：",
    ),
    ("storage.repository", "restic repository", "restic 仓库"),
    ("storage.pruned", "pruned", "已清理"),
    ("storage.freed", "freed", "释放"),
    ("storage.never_pruned", "not pruned yet", "尚未清理"),
    ("storage.next_prune", "next prune", "下次清理"),
    ("storage.pruning", "pruning…", "正在清理…"),
    ("storage.prune", "Prune now", "立即清理"),
    ("storage.check", "Check", "校验"),
    ("storage.recovery_kit", "Recovery kit", "恢复包"),
    (
        "storage.kit_saved",
        "recovery kit handed out",
        "恢复包已取出",
    ),
    (
        "storage.kit_never",
        "recovery kit never saved: the password exists only in Stowage",
        "从未保存恢复包：仓库密码只存在于 Stowage 中",
    ),
    (
        "storage.kit_explain",
        "The recovery kit holds the repository's password and the restic commands that restore without Stowage. Enter your password to see it.",
        "恢复包包含仓库密码和无需 Stowage 即可恢复的 restic 命令。输入你的密码以查看。",
    ),
    (
        "storage.kit_keep",
        "Keep this sheet where Stowage is not (printed, or in a password manager): without it the repository cannot be opened.",
        "请将此内容保存在 Stowage 之外（打印或存入密码管理器）：没有它将无法打开仓库。",
    ),
    ("storage.kit_show", "Show the recovery kit", "显示恢复包"),
    ("storage.started", "started", "已开始"),
    ("records.targets", "Where it is stored", "存储位置"),
    ("records.log", "Log", "日志"),
    ("records.live", "live", "实时"),
    ("records.eta", "about", "约剩"),
    ("records.log_end", "Finished:", "已结束："),
    ("restore.original", "To the original paths", "恢复到原路径"),
    ("restore.elsewhere", "Into a directory", "恢复到某个目录"),
    (
        "restore.directory",
        "Directory (the files keep their full paths beneath it)",
        "目录（文件在其下保留完整路径）",
    ),
    (
        "restore.original_hint",
        "Files at the original paths are overwritten.",
        "原路径上的文件将被覆盖。",
    ),
    (
        "restore.all_databases",
        "Tick none to restore all of them.",
        "不勾选则恢复全部数据库。",
    ),
    (
        "restore.rename",
        "Restore the one chosen database as (optional)",
        "将所选的一个数据库恢复为（可选）",
    ),
    ("restore.from", "Read from", "读取自"),
    ("status.deleted", "deleted", "已删除"),
    (
        "BACKUP_TASK_INVALID",
        "Check the task's fields.",
        "请检查任务的各项设置。",
    ),
    (
        "BACKUP_TASK_NAME_EXISTS",
        "A task with this name exists.",
        "已存在同名任务。",
    ),
    (
        "BACKUP_TASK_RUNNING",
        "This task is running already.",
        "该任务正在运行。",
    ),
    (
        "BACKUP_RECORD_RUNNING",
        "The backup is still running.",
        "备份仍在运行。",
    ),
    (
        "BACKUP_RECORD_FILTER_INVALID",
        "Check the filter.",
        "请检查筛选条件。",
    ),
    (
        "BACKUP_RECORD_DOWNLOAD_FAILED",
        "The download failed.",
        "下载失败。",
    ),
    (
        "RESTORE_TARGET_INVALID",
        "Check where to restore to.",
        "请检查恢复位置。",
    ),
    (
        "RESTORE_SOURCE_INVALID",
        "This backup cannot be restored from there.",
        "无法从该位置恢复此备份。",
    ),
    ("NODE_OFFLINE", "The node is offline.", "节点离线。"),
    (
        "NODE_MISSING_TOOL",
        "The node lacks a program this needs.",
        "节点缺少所需的程序。",
    ),
    (
        "NODE_FS_NOT_FOUND",
        "No such directory on the node.",
        "节点上没有该目录。",
    ),
    (
        "NODE_FS_PERMISSION_DENIED",
        "The agent may not read this directory.",
        "代理无权读取此目录。",
    ),
    (
        "DATABASE_CONNECT_FAILED",
        "Could not connect to the database server.",
        "无法连接数据库服务器。",
    ),
    (
        "DATABASE_CONNECTION_INVALID",
        "Check the connection fields.",
        "请检查连接设置。",
    ),
    (
        "AUTH_FORBIDDEN",
        "Your role may not do this.",
        "你的角色无权执行此操作。",
    ),
    ("nav.notifications", "Notifications", "通知"),
    ("nav.audit", "Audit log", "审计日志"),
    ("nav.settings", "Settings", "设置"),
    ("nav.system", "System", "系统"),
    ("nav.profile", "Profile", "个人资料"),
    ("nodes.rename", "Rename", "重命名"),
    ("forms.default", "default", "默认"),
    ("storage.edit", "Edit storage target", "编辑存储目标"),
    ("storage.description", "Description", "描述"),
    ("storage.usage", "Usage", "用量"),
    (
        "storage.run_on",
        "Test and measure on",
        "测试与测量所用节点",
    ),
    (
        "storage.run_on_users",
        "a node whose tasks use the target",
        "使用该目标的任务所在节点",
    ),
    (
        "storage.mask_hint",
        "Secret fields left as they are keep the stored value:",
        "保密字段保持不变即沿用已保存的值：",
    ),
    (
        "storage.google_hint",
        "Stowage sends you to Google to allow access; Google sends you back here.",
        "Stowage 会将你转到 Google 授权，授权后 Google 会将你送回这里。",
    ),
    (
        "storage.google_connect",
        "Connect Google Drive",
        "连接 Google Drive",
    ),
    (
        "storage.google_done",
        "Google Drive is connected:",
        "Google Drive 已连接：",
    ),
    ("storage.rclone_backend", "rclone backend", "rclone 后端"),
    (
        "storage.rclone_none",
        "No online node has rclone. Install rclone on a node, then come back.",
        "没有在线节点安装了 rclone。请先在节点上安装 rclone。",
    ),
    ("storage.advanced", "Advanced options", "高级选项"),
    ("notify.new", "Add a notification channel", "添加通知渠道"),
    ("notify.edit", "Edit notification channel", "编辑通知渠道"),
    (
        "notify.empty",
        "No channels yet. Add one above to hear about failed backups.",
        "还没有通知渠道。在上方添加一个，以便在备份失败时收到通知。",
    ),
    ("notify.test", "Send a test", "发送测试"),
    ("notify.deliveries", "Deliveries", "投递记录"),
    (
        "notify.no_deliveries",
        "Nothing sent yet.",
        "尚未发送任何消息。",
    ),
    ("notify.disabled", "disabled", "已停用"),
    ("notify.enabled", "Enabled", "启用"),
    ("notify.events", "Tell me about", "通知以下事件"),
    (
        "notify.threshold",
        "Failures in a row before telling",
        "连续失败几次后通知",
    ),
    ("audit.actor", "User", "用户"),
    ("audit.action", "Action", "操作"),
    ("audit.resource", "Resource", "资源"),
    ("audit.result", "Result", "结果"),
    ("audit.search", "Search", "搜索"),
    ("audit.apply", "Filter", "筛选"),
    ("audit.when", "When", "时间"),
    ("audit.detail", "Detail", "详情"),
    (
        "audit.empty",
        "No entries match the filter.",
        "没有符合筛选条件的记录。",
    ),
    ("settings.site_name", "Site name", "站点名称"),
    (
        "settings.site_url",
        "Console address (for links in messages)",
        "控制台地址（用于消息中的链接）",
    ),
    ("settings.language", "Language", "语言"),
    (
        "settings.log_days",
        "Keep run logs (days, 0 = for ever)",
        "运行日志保留天数（0 = 永久）",
    ),
    (
        "settings.audit_days",
        "Keep audit entries (days, 0 = for ever)",
        "审计记录保留天数（0 = 永久）",
    ),
    (
        "settings.prune_days",
        "Prune repositories every (days, 0 = never)",
        "仓库清理间隔天数（0 = 从不）",
    ),
    (
        "settings.check_days",
        "Check repositories every (days, 0 = never)",
        "仓库校验间隔天数（0 = 从不）",
    ),
    (
        "settings.check_percent",
        "Share of the data a scheduled check reads (%)",
        "定期校验读取的数据比例（%）",
    ),
    (
        "settings.default_channels",
        "Channels for task events",
        "任务事件的通知渠道",
    ),
    (
        "settings.default_channels_hint",
        "None ticked: every enabled channel that chose the event.",
        "不勾选：所有订阅了该事件的已启用渠道。",
    ),
    ("settings.agents", "Agents", "代理"),
    (
        "settings.heartbeat",
        "Heartbeat every (s)",
        "心跳间隔（秒）",
    ),
    ("settings.poll", "Poll every (s)", "轮询间隔（秒）"),
    ("settings.offline", "Offline after (s)", "离线判定（秒）"),
    (
        "settings.agents_hint",
        "Empty keeps the deployment's value.",
        "留空则使用部署时的配置。",
    ),
    ("settings.saved", "Saved.", "已保存。"),
    ("system.version", "Version", "版本"),
    ("system.protocol", "Agent protocols", "代理协议"),
    ("system.migration", "Database schema", "数据库结构"),
    ("system.database", "Database size", "数据库大小"),
    ("system.cron", "Scheduler", "调度器"),
    ("system.cron_ok", "running", "运行中"),
    ("system.cron_stopped", "stopped", "已停止"),
    ("system.seal", "Secret key set", "已配置加密密钥"),
    ("system.yes", "yes", "是"),
    ("system.no", "no", "否"),
    ("system.rows", "Rows", "行数"),
    ("system.limits", "Limits", "限制"),
    ("system.session", "Sessions last", "会话有效期"),
    (
        "system.logins",
        "Sign-in failures allowed",
        "允许的登录失败次数",
    ),
    ("system.body", "Largest request", "最大请求"),
    ("system.updates", "Updates", "更新"),
    ("system.check", "Check for updates", "检查更新"),
    ("system.check_failed", "The check failed:", "检查失败："),
    ("system.newer", "A newer version is out:", "有新版本："),
    ("system.notes", "Release notes", "发行说明"),
    ("system.current", "Up to date:", "已是最新："),
    ("profile.role", "Role", "角色"),
    ("profile.since", "Member since", "创建时间"),
    (
        "profile.password_changed",
        "Password changed",
        "密码修改时间",
    ),
    ("profile.change_password", "Change password", "修改密码"),
    ("profile.old", "Current password", "当前密码"),
    ("profile.new", "New password", "新密码"),
    ("profile.again", "New password again", "再次输入新密码"),
    (
        "profile.changed",
        "Password changed. Other sessions signed out:",
        "密码已修改。已退出的其他会话数：",
    ),
    (
        "AUTH_WRONG_PASSWORD",
        "The current password is wrong.",
        "当前密码错误。",
    ),
    (
        "AUTH_PASSWORD_INVALID",
        "The new password is not allowed.",
        "新密码不符合要求。",
    ),
    ("SETTINGS_INVALID", "Check the settings.", "请检查设置。"),
    (
        "AUDIT_FILTER_INVALID",
        "Check the filter.",
        "请检查筛选条件。",
    ),
    (
        "NOTIFICATION_INVALID",
        "Check the channel's fields.",
        "请检查通知渠道的设置。",
    ),
    (
        "NOTIFICATION_NAME_EXISTS",
        "A channel with this name exists.",
        "已存在同名通知渠道。",
    ),
    (
        "NOTIFICATION_TEST_FAILED",
        "The test message was not delivered.",
        "测试消息未能送达。",
    ),
    (
        "STORAGE_GOOGLE_OAUTH_INVALID",
        "Google did not allow access.",
        "Google 未授予访问权限。",
    ),
    (
        "STORAGE_GOOGLE_OAUTH_STATE_INVALID",
        "This sign-in with Google has expired; start again.",
        "本次 Google 授权已过期，请重新开始。",
    ),
    (
        "STORAGE_GOOGLE_OAUTH_EXCHANGE_FAILED",
        "Google refused the sign-in.",
        "Google 拒绝了授权。",
    ),
    // The config forms' field labels are their own keys (English is the key).
    ("Access key id", "Access key id", "访问密钥 ID"),
    (
        "Access token (optional)",
        "Access token (optional)",
        "访问令牌（可选）",
    ),
    ("Account key", "Account key", "账户密钥"),
    ("Base path", "Base path", "基础路径"),
    (
        "Bot API URL (optional)",
        "Bot API URL (optional)",
        "Bot API 地址（可选）",
    ),
    ("Bot token", "Bot token", "Bot 令牌"),
    ("Bucket", "Bucket", "存储桶"),
    ("Chat id", "Chat id", "聊天 ID"),
    ("Container", "Container", "容器"),
    (
        "Directory on the node",
        "Directory on the node",
        "节点上的目录",
    ),
    ("Endpoint", "Endpoint", "端点"),
    ("Endpoint (optional)", "Endpoint (optional)", "端点（可选）"),
    (
        "Folder id (optional)",
        "Folder id (optional)",
        "文件夹 ID（可选）",
    ),
    ("From", "From", "发件人"),
    ("Host", "Host", "主机"),
    (
        "Incoming webhook URL",
        "Incoming webhook URL",
        "传入 Webhook 地址",
    ),
    ("OAuth client id", "OAuth client id", "OAuth 客户端 ID"),
    (
        "OAuth client secret",
        "OAuth client secret",
        "OAuth 客户端密钥",
    ),
    ("Password", "Password", "密码"),
    ("Path in the remote", "Path in the remote", "远端路径"),
    (
        "Path-style addresses",
        "Path-style addresses",
        "路径风格地址",
    ),
    ("Port", "Port", "端口"),
    ("Prefix", "Prefix", "前缀"),
    ("Region", "Region", "区域"),
    ("SMTP server", "SMTP server", "SMTP 服务器"),
    ("Secret access key", "Secret access key", "秘密访问密钥"),
    ("Security", "Security", "安全"),
    (
        "Server (default https://ntfy.sh)",
        "Server (default https://ntfy.sh)",
        "服务器（默认 https://ntfy.sh）",
    ),
    ("Server host key", "Server host key", "服务器主机密钥"),
    (
        "Signing secret (optional)",
        "Signing secret (optional)",
        "签名密钥（可选）",
    ),
    ("Storage account", "Storage account", "存储账户"),
    ("TLS", "TLS", "TLS"),
    (
        "To (one address per line)",
        "To (one address per line)",
        "收件人（每行一个地址）",
    ),
    ("Topic", "Topic", "主题"),
    ("URL", "URL", "URL"),
    ("User name", "User name", "用户名"),
    ("Webhook URL", "Webhook URL", "Webhook 地址"),
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
    ("nodes.search", "Name, host or address", "名称、主机或地址"),
    ("nodes.none_match", "No node matches.", "没有匹配的节点。"),
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

/// Whether `key` has texts (the forms' labels are checked with it).
#[cfg(test)]
pub fn has(key: &str) -> bool {
    TEXTS.iter().any(|(k, _, _)| *k == key)
}

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
            // Codes are SHOUTING_SNAKE; labels such as "TLS" and "URL" are not codes.
            let is_code =
                key.contains('_') && key.chars().all(|c| c.is_ascii_uppercase() || c == '_');
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
