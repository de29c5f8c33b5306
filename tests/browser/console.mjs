// The console in a real browser: Debian's headless Chromium driven by npm's playwright-core.
// Run by tests/tests/e2e/console.rs, which starts the real servers and agents around it:
//
//   node tests/browser/console.mjs <phase> <base url> <screenshots dir>
//
// The password comes in STOWAGE_TEST_PASSWORD (never an argument). Each phase prints what it
// checked as one JSON line on stdout; any failed check throws, and the process exits non-zero.

import { chromium } from "playwright-core";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";

const [phase, base, shots] = process.argv.slice(2);
const password = process.env.STOWAGE_TEST_PASSWORD;
if (!phase || !base || !shots || !password) {
  console.error("usage: console.mjs <setup|node|backup|admin|repository> <base url> <screenshots dir> (STOWAGE_TEST_PASSWORD set)");
  process.exit(2);
}

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // The tests run as root in a container, where Chromium's sandbox cannot start.
  args: ["--no-sandbox", "--headless=new"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 860 }, locale: "en-US" });
const problems = [];
page.on("pageerror", (e) => problems.push(String(e)));
// The browser logs every 4xx answer; the wrong password's 401 is one the test asks for,
page.on("console", (m) => {
  // ... the backup phase's incomplete storage target a 400, a busy node's delete a 409, the
  // admin phase's bad setting and wrong current password a 400.
  if (m.type() === "error" && !/status of 40[019]/.test(m.text())) problems.push(m.text());
});
// Deletes ask first; the test says yes.
page.on("dialog", (d) => d.accept());
const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
const done = {};

async function signIn(user, pass) {
  await page.fill("#username", user);
  await page.fill("#password", pass);
  await page.click("#submit");
}

try {
  await page.goto(base + "/", { waitUntil: "load" });
  if (phase === "setup") {
    // No user yet: the console asks for the first administrator.
    await page.waitForSelector("text=Create the administrator");
    check(page.url().endsWith("/login"), `redirected to /login, at ${page.url()}`);
    await shot("01-setup");
    // Keyboard only: tab through the form and submit with Enter.
    await page.focus("#username");
    await page.keyboard.type("admin");
    await page.keyboard.press("Tab");
    await page.keyboard.type("Administrator");
    await page.keyboard.press("Tab");
    await page.keyboard.type(password);
    await page.keyboard.press("Enter");
    await page.waitForSelector("#stat-tasks");
    check((await page.textContent("#stat-tasks .value")).trim() === "0", "no tasks yet");
    await page.waitForSelector("text=No runs yet");
    await shot("02-dashboard-empty");
    await page.setViewportSize({ width: 390, height: 844 });
    await shot("03-dashboard-phone");
    await page.setViewportSize({ width: 1280, height: 860 });
    // Sign out: the session is gone, and a wrong password is told in the user's language.
    await page.click("#sign-out");
    await page.waitForSelector("text=Sign in");
    await signIn("admin", "not the password at all");
    const error = await page.waitForSelector("[role=alert]");
    check((await error.getAttribute("data-code")) === "AUTH_INVALID_CREDENTIALS", "the error code");
    check((await error.textContent()).includes("Wrong user name or password."), "the translated message");
    await shot("04-login-error");
    done.setup = true;
  } else if (phase === "node") {
    // Add the node the agent will run as: its token is shown once, inside install commands
    // that keep it off the agent's command line. It goes to a 0600 file for the test's agent.
    await page.waitForSelector("#username");
    await signIn("admin", password);
    await page.waitForSelector("#stat-tasks");
    await page.click("nav >> text=Nodes");
    await page.waitForSelector("text=No nodes yet");
    await page.fill("#node-name", "browser-node");
    await page.click("#add-node");
    const shown = await page.waitForSelector('#token[data-node="browser-node"]');
    const commands = await shown.textContent();
    const token = /'(stn_[0-9a-f]{64})'/.exec(commands);
    check(token, "the token is in the install commands");
    check(commands.includes(`stowage-agent run --server ${base} --token-file /etc/stowage/agent.token`), "the run command");
    writeFileSync(`${process.env.STOWAGE_TEST_DIR}/agent.token`, token[1] + "\n", { mode: 0o600 });
    await page.waitForSelector('#nodes tr[data-name="browser-node"]');
    await shot("05-node-added");
    done.node = true;
  } else if (phase === "backup") {
    const src = process.env.STOWAGE_TEST_SRC;
    const store = process.env.STOWAGE_TEST_STORE;
    const restoreInto = process.env.STOWAGE_TEST_RESTORE;
    await page.waitForSelector("#username");
    await signIn("admin", password);
    await page.waitForSelector("#stat-tasks");
    // The agent's node is online.
    await page.click("nav >> text=Nodes");
    const mine = await page.waitForSelector('#nodes tr[data-name="browser-node"]');
    check((await mine.textContent()).includes("online"), "the agent's node is online");
    // A storage target, added with the form and tested green on the real agent.
    await page.click("nav >> text=Storage targets");
    await page.waitForSelector("text=No storage targets yet");
    await page.fill("#target-name", "browser-disk");
    await page.fill('input[name="basePath"]', store);
    await page.click("#save-target");
    const row = await page.waitForSelector('#targets tr[data-name="browser-disk"]');
    // No task uses the new target yet: its test runs on the node chosen here.
    await page.waitForSelector('#storage-node option:text("browser-node")', { state: "attached" });
    await page.selectOption("#storage-node", { label: "browser-node" });
    await (await row.$("button.test")).click();
    await page.waitForSelector('#targets tr[data-name="browser-disk"] .test-result .success');
    const told = await page.textContent('#targets tr[data-name="browser-disk"] .test-result');
    check(told.includes("connected"), `the test's message: ${told}`);
    check((await page.inputValue('input[name="basePath"]')) === "", "a save clears the form");
    await page.fill("#target-name", "no-path");
    await page.click("#save-target");
    const refused = await page.waitForSelector("#new-target [role=alert]");
    check((await refused.getAttribute("data-code")) === "STORAGE_TARGET_INVALID_CONFIG", "a config without its directory is refused");
    await page.fill("#target-name", "");
    // Star it, measure it, and open it for editing (its type is fixed), then leave it as it is.
    await page.click('#targets tr[data-name="browser-disk"] button.star');
    await page.waitForSelector('#targets tr[data-name="browser-disk"] button.star[aria-pressed="true"]');
    await page.click('#targets tr[data-name="browser-disk"] button.usage-button');
    const usage = await page.waitForSelector('#targets tr[data-name="browser-disk"] span.usage:not(.hint)');
    check(/objects/.test(await usage.textContent()), `the usage: ${await usage.textContent()}`);
    await page.click('#targets tr[data-name="browser-disk"] button.edit');
    await page.waitForFunction(() => document.querySelector("#target-name")?.value === "browser-disk");
    check(await page.isDisabled("#target-type"), "a saved target's type cannot change");
    check((await page.inputValue('input[name="basePath"]')) === store, "the form holds the stored directory");
    await shot("06-storage");
    await page.click("#new-target >> text=Cancel");
    await page.waitForFunction(() => document.querySelector("#target-name")?.value === "");
    // A file task, its directory chosen by browsing the node through the agent.
    await page.click("nav >> text=Backup tasks");
    await page.waitForSelector("text=No backup tasks yet");
    await page.click("#new-task");
    await page.fill("#task-name", "etc");
    await page.click("#browse");
    let at = "/";
    await page.waitForSelector("#picker-path");
    for (const step of src.split("/").filter(Boolean)) {
      await page.click(`#picker button.dir[data-name="${step}"]`);
      at = at === "/" ? `/${step}` : `${at}/${step}`;
      await page.waitForFunction((p) => document.querySelector("#picker-path")?.textContent === p, at);
    }
    check(await page.$('#picker button.dir[data-name="nested"]'), "the picker lists the source's own directories");
    await shot("07-task-picker");
    await page.click("#picker-choose");
    await page.waitForSelector(`#sources li[data-path="${src}"]`);
    check(await page.isChecked('input[name="target"][data-name="browser-disk"]'), "the only target is chosen");
    // The cron helper: a preset, then the next fire times in the chosen zone.
    await page.selectOption("#cron-preset", "0 3 * * *");
    await page.fill("#time-zone", "Asia/Shanghai");
    await page.waitForFunction(() => document.querySelectorAll("#next-fires li").length === 5);
    const fires = await page.$$eval("#next-fires li", (l) => l.map((e) => e.textContent));
    check(fires.every((f) => f.includes("03:00 CST")), `five runs at 03:00 Shanghai time: ${fires}`);
    await page.fill("#cron", "61 * * * *");
    const wrong = await page.textContent("#next-fires");
    check(wrong.startsWith("cronExpr:"), `a wrong expression is explained: ${wrong}`);
    await page.fill("#cron", "0 3 * * *");
    // New file tasks default to a deduplicated repository; this one is an archive, whose
    // download below is one file to hash.
    check((await page.inputValue("#format")) === "repository", "new file tasks default to repository");
    await page.selectOption("#format", "archive");
    await shot("08-task-form");
    await page.click("#save-task");
    const task = await page.waitForSelector('#tasks tr[data-name="etc"]');
    check((await task.textContent()).includes("0 3 * * * (Asia/Shanghai)"), "the schedule is listed");
    // Edit it: the form holds what was saved; leave out temporary files.
    await (await task.$("button.edit")).click();
    await page.waitForFunction(() => document.querySelector("#task-name")?.value === "etc");
    await page.waitForSelector(`#sources li[data-path="${src}"]`);
    await page.fill("#excludes", "*.tmp");
    await page.click("#save-task");
    await page.waitForSelector("#task-form", { state: "detached" });
    await shot("09-tasks");
    // Run it: the record's page follows the live log to success.
    await (await task.$("button.run")).click();
    await page.waitForURL(/\/backup-records\/\d+$/);
    await page.waitForSelector('#log .log-end[data-status="success"]', { timeout: 60000 });
    await page.waitForSelector("#download");
    const lines = await page.$$eval("#log li", (l) => l.map((e) => e.textContent));
    check(lines.length >= 2, `the log has lines: ${lines}`);
    check((await page.textContent("#record-status")).includes("success"), "the record succeeded");
    await page.waitForSelector('#record-targets tr[data-name="browser-disk"] .status.success');
    await shot("10-record");
    // Download: the artifact's bytes hash to the record's checksum.
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
    const bytes = readFileSync(await download.path());
    const sum = createHash("sha256").update(bytes).digest("hex");
    const checksum = (await page.textContent("#record-checksum")).trim();
    check(sum === checksum, `the download's sha256 ${sum} is the record's ${checksum}`);
    check(String(bytes.length) === (await page.getAttribute("#record-bytes", "data-bytes")), "the download's size");
    // Restore into a directory, followed live to success.
    await page.click("#restore");
    await page.check("#restore-elsewhere");
    await page.fill("#restore-path", restoreInto);
    await shot("11-restore-dialog");
    await page.click("#start-restore");
    await page.waitForSelector('#restore-log .log-end[data-status="success"]', { timeout: 60000 });
    check((await page.textContent("#restore-status")).includes("success"), "the restore succeeded");
    await shot("12-restored");
    // Check the archive: read whole by the agent, its log says so.
    await page.click("#verify");
    await page.waitForSelector('#verify-result[data-status="success"]', { timeout: 60000 });
    await page.waitForSelector('#verify-log .log-end[data-status="success"]', { timeout: 60000 });
    const archiveLog = await page.textContent("#verify-log");
    check(archiveLog.includes("the archive is whole"), `the archive check's log: ${archiveLog}`);
    // The list: one backup; a filter that matches none says what to do.
    await page.click("nav >> text=Backups");
    await page.waitForSelector("#records tbody tr");
    check((await page.$$("#records tbody tr")).length === 1, "one backup listed");
    check((await page.textContent("#page-of")).includes("1 / 1"), "one page");
    await shot("13-records");
    await page.selectOption("#filter-status", "failed");
    await page.waitForSelector("text=No backups match");
    await page.selectOption("#filter-status", "");
    await page.waitForSelector("#records tbody tr");
    // The dashboard counts it.
    await page.click("nav >> text=Dashboard");
    await page.waitForSelector("#stat-tasks");
    const tasks = (await page.textContent("#stat-tasks .value")).trim();
    const rate = (await page.textContent("#stat-rate .value")).trim();
    const nodes = (await page.textContent("#stat-nodes .value")).trim();
    check(tasks === "1", `one task, saw ${tasks}`);
    check(rate === "100.0 %", `success rate 100.0 %, saw ${rate}`);
    check(nodes.startsWith("1"), `one node online, saw ${nodes}`);
    const today = new Date().toISOString().slice(0, 10);
    const bar = await page.$(`#chart g[data-date="${today}"] rect.ok`);
    check(bar && Number(await bar.getAttribute("height")) > 0, "today's bar shows the success");
    const recent = await page.textContent("#recent");
    check(recent.includes("etc") && recent.includes("success"), `recent activity: ${recent}`);
    await shot("14-dashboard");
    // Nodes: a new node shows its token once; a node that runs tasks cannot be deleted.
    await page.click("nav >> text=Nodes");
    await page.fill("#node-name", "spare-nas");
    await page.click("#add-node");
    await page.waitForSelector('#token[data-node="spare-nas"]');
    await page.waitForSelector('#nodes tr[data-name="spare-nas"]');
    const caps = await page.textContent('#nodes tr[data-name="browser-node"] .caps');
    check(caps.includes("at once"), `the agent's capabilities: ${caps}`);
    await page.click('#nodes tr[data-name="spare-nas"] button.rename-button');
    await page.fill("#nodes input.new-name", "spare-nas-2");
    await page.press("#nodes input.new-name", "Enter");
    await page.waitForSelector('#nodes tr[data-name="spare-nas-2"]');
    await shot("15-nodes");
    await (await page.$('#nodes tr[data-name="browser-node"] button.delete')).click();
    const busy = await page.waitForSelector("section [role=alert]");
    check((await busy.getAttribute("data-code")) === "NODE_HAS_TASKS", "a node with tasks is kept");
    await (await page.$('#nodes tr[data-name="spare-nas-2"] button.delete')).click();
    await page.waitForSelector('#nodes tr[data-name="spare-nas-2"]', { state: "detached" });
    // 中文: the same pages in Simplified Chinese.
    await page.click("nav >> text=Dashboard");
    await page.waitForSelector("#stat-tasks");
    await page.click("text=中文");
    await page.waitForSelector("text=仪表盘");
    await shot("16-dashboard-zh");
    await page.click("nav >> text=备份任务");
    await page.waitForSelector('#tasks tr[data-name="etc"]');
    await shot("17-tasks-zh");
    await page.click("nav >> text=存储目标");
    await page.waitForSelector("text=节点上的目录");
    await page.click("text=English");
    // Phone width: the record list still reads.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.click("nav >> text=Backups");
    await page.waitForSelector("#records tbody tr");
    await shot("18-records-phone");
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.click("#sign-out");
    await page.waitForSelector("#username");
    done.backup = { tasks, rate, nodes, checksum };
  } else if (phase === "admin") {
    const hook = process.env.STOWAGE_TEST_HOOK;
    const newPassword = process.env.STOWAGE_TEST_NEW_PASSWORD;
    await page.waitForSelector("#username");
    await signIn("admin", password);
    await page.waitForSelector("#stat-tasks");
    // The task can be paused; the backup can be deleted with the list's bulk delete.
    await page.click("nav >> text=Backup tasks");
    await (await page.waitForSelector('#tasks tr[data-name="etc"] button.toggle')).click();
    await page.waitForSelector('#tasks tr.disabled[data-name="etc"]');
    await page.click("nav >> text=Backups");
    await (await page.waitForSelector("#records tbody tr input.select")).check();
    await page.click("#delete-selected");
    await page.waitForSelector("text=No backups match");
    // Notifications: a signed webhook, tested before it is saved and after.
    await page.click("nav >> text=Notifications");
    await page.waitForSelector("text=No channels yet");
    await page.fill("#channel-name", "ops-hook");
    await page.fill('#channel-form input[name="url"]', hook);
    await page.fill('#channel-form input[name="secret"]', "hook signing secret");
    await page.click("#try-channel");
    await page.waitForSelector("#channel-tested");
    await page.click("#save-channel");
    const channel = await page.waitForSelector('#channels tr[data-name="ops-hook"]');
    await (await channel.$("button.test")).click();
    await page.waitForSelector('#channels tr[data-name="ops-hook"] .test-result .success');
    await (await page.$('#channels tr[data-name="ops-hook"] button.edit')).click();
    await page.waitForFunction(() => document.querySelector("#channel-name")?.value === "ops-hook");
    check((await page.inputValue('#channel-form input[name="secret"]')) === "********", "the secret is masked when edited");
    await shot("19-notifications");
    await page.click("#channel-form >> text=Cancel");
    // The audit log, filtered to one action.
    await page.click("nav >> text=Audit log");
    await page.waitForSelector("#audit tbody tr");
    await page.fill("#audit-action", "backup_task.create");
    await page.click("#audit-apply");
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll("#audit tbody tr")];
      return rows.length > 0 && rows.every((r) => r.dataset.action === "backup_task.create");
    });
    await shot("20-audit");
    // Settings: a change is saved; a bad value is refused with the API's code.
    await page.click("nav >> text=Settings");
    await page.waitForSelector("#settings-form");
    await page.fill("#site-name", "Fleet backups");
    await page.click("#save-settings");
    await page.waitForSelector("#settings-saved");
    await page.fill("#settings-zone", "Mars/Olympus");
    await page.click("#save-settings");
    const bad = await page.waitForSelector("#settings-form [role=alert]");
    check((await bad.getAttribute("data-code")) === "SETTINGS_INVALID", "an unknown zone is refused");
    await shot("21-settings");
    // System: what runs, and the update check against the releases feed.
    await page.click("nav >> text=System");
    await page.waitForSelector("#system-version");
    check((await page.textContent("#system-cron")).length > 0, "the scheduler's state");
    await page.click("#update-check");
    const update = await page.waitForSelector('#update-result[data-has-update="true"]');
    check((await update.textContent()).includes("99.1.0"), "the newer release is named");
    await shot("22-system");
    // Profile: a wrong current password is refused; the right one changes it.
    await page.click("#profile-link");
    await page.waitForSelector("#profile-username");
    await page.fill("#old-password", "not my password");
    await page.fill("#new-password", newPassword);
    await page.fill("#new-password-again", newPassword);
    await page.click("#change-password");
    const wrong = await page.waitForSelector("#password-form [role=alert]");
    check((await wrong.getAttribute("data-code")) === "AUTH_WRONG_PASSWORD", "the wrong current password");
    await page.fill("#old-password", password);
    await page.click("#change-password");
    await page.waitForSelector("#password-changed");
    await shot("23-profile");
    await page.click("#sign-out");
    await page.waitForSelector("#username");
    await signIn("admin", newPassword);
    await page.waitForSelector("#stat-tasks");
    await page.click("#sign-out");
    await page.waitForSelector("#username");
    done.admin = true;
  } else if (phase === "repository") {
    // A repository record (made by the test through the API): browse its snapshot, pick one
    // folder, restore only that; check its data; see the target's repository and prune it.
    const src = process.env.STOWAGE_TEST_SRC;
    const record = process.env.STOWAGE_TEST_RECORD;
    await page.waitForSelector("#username");
    await signIn("admin", process.env.STOWAGE_TEST_NEW_PASSWORD);
    await page.waitForSelector("#stat-tasks");
    await page.goto(`${base}/backup-records/${record}`, { waitUntil: "load" });
    check(!(await page.$("#download")), "a snapshot is not downloaded as one file");
    await page.waitForSelector("#browse-entries li");
    let at = "";
    // Each click waits for its folder to be listed (the previous listing stays up while the next
    // one loads, so the path alone is not the sign).
    for (const step of src.split("/").filter(Boolean)) {
      await page.click(`#browse-entries li[data-name="${step}"] button.dir`);
      at = `${at}/${step}`;
      await page.waitForFunction((p) => document.querySelector("#browse-path")?.textContent === p, at);
    }
    await page.waitForSelector('#browse-entries li[data-name="nested"]');
    const names = await page.$$eval("#browse-entries li", (l) => l.map((e) => e.dataset.name));
    check(JSON.stringify(names) === JSON.stringify(["nested", "hosts"]), `folders first, then files: ${names}`);
    await page.check('#browse-entries li[data-name="nested"] input.pick');
    check((await page.textContent("#browse-picked")).trim() === "1", "one path picked");
    await shot("24-snapshot-browser");
    await page.click("#restore");
    check((await page.textContent("#restore-selected")).includes(`${src}/nested`), "the dialog names the pick");
    await page.check("#restore-elsewhere");
    await page.fill("#restore-path", process.env.STOWAGE_TEST_PICKED);
    await page.click("#start-restore");
    await page.waitForSelector('#restore-log .log-end[data-status="success"]', { timeout: 60000 });
    await page.click("#verify");
    await page.waitForSelector('#verify-result[data-status="success"]', { timeout: 60000 });
    const verdict = (await page.textContent("#verify-result")).trim();
    await page.waitForSelector('#verify-log .log-end[data-status="success"]', { timeout: 60000 });
    const checkLog = await page.textContent("#verify-log");
    check(checkLog.includes("the repository is whole"), `the check's live log: ${checkLog}`);
    await shot("25-checked");
    await page.click("nav >> text=Storage targets");
    const line = await (await page.waitForSelector('#targets tr[data-name="repo-disk"] .repository')).textContent();
    check(line.includes("restic repository") && line.includes("next prune"), `the repository's state: ${line}`);
    check(line.includes("recovery kit never saved"), `a kit never handed out says so: ${line}`);
    // The recovery kit: a wrong password is refused; the right one shows the sheet.
    await page.click('#targets tr[data-name="repo-disk"] button.recovery-kit');
    await page.fill("#kit-password", "not my password");
    await page.click("#show-kit");
    await page.waitForSelector('#recovery-kit-form .error');
    await page.fill("#kit-password", process.env.STOWAGE_TEST_NEW_PASSWORD);
    await page.click("#show-kit");
    const kit = await (await page.waitForSelector("#recovery-kit")).textContent();
    check(kit.includes("password:") && kit.includes("restic --repo"), `the kit sheet: ${kit}`);
    await shot("26-recovery-kit");
    await page.click("#close-kit");
    await page.waitForFunction(() => document.querySelector('#targets tr[data-name="repo-disk"] .repository')?.textContent.includes("recovery kit handed out"));
    await page.click('#targets tr[data-name="repo-disk"] button.prune');
    await page.waitForSelector('#targets tr[data-name="repo-disk"] .upkeep');
    await shot("27-prune-started");
    done.repository = { verdict, line, kit };
  } else {
    throw new Error(`unknown phase ${phase}`);
  }
  check(problems.length === 0, `no errors in the page: ${problems.join(" | ")}`);
  console.log(JSON.stringify({ ok: true, ...done }));
} catch (e) {
  await shot(`failed-${phase}`).catch(() => {});
  console.error(String(e.stack || e));
  console.error(`page errors: ${problems.join(" | ")}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
