// The console in a real browser: Debian's headless Chromium driven by npm's playwright-core.
// Run by tests/tests/e2e/console.rs, which starts the real servers and agents around it:
//
//   node tests/browser/console.mjs <phase> <base url> <screenshots dir>
//
// The password comes in STOWAGE_TEST_PASSWORD (never an argument). Each phase prints what it
// checked as one JSON line on stdout; any failed check throws, and the process exits non-zero.

import { chromium } from "playwright-core";

const [phase, base, shots] = process.argv.slice(2);
const password = process.env.STOWAGE_TEST_PASSWORD;
if (!phase || !base || !shots || !password) {
  console.error("usage: console.mjs <setup|dashboard> <base url> <screenshots dir> (STOWAGE_TEST_PASSWORD set)");
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
  // ... and the dashboard phase's incomplete storage target gets a 400, a busy node's delete 409.
  if (m.type() === "error" && !/status of 40[019]/.test(m.text())) problems.push(m.text());
});
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
  } else if (phase === "dashboard") {
    await page.waitForSelector("#username");
    await signIn("admin", password);
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
    await shot("05-dashboard");
    // Storage targets: the one the API made is listed; one added with the form tests green on
    // the real agent.
    await page.click("text=Storage targets");
    await page.waitForSelector('#targets tr[data-name="disk"]');
    await page.fill("#target-name", "browser-disk");
    await page.fill('input[name="basePath"]', process.env.STOWAGE_TEST_DIR);
    await page.click("#save-target");
    const row = await page.waitForSelector('#targets tr[data-name="browser-disk"]');
    await (await row.$("button.test")).click();
    await page.waitForSelector('#targets tr[data-name="browser-disk"] .test-result .success');
    const told = await page.textContent('#targets tr[data-name="browser-disk"] .test-result');
    check(told.includes("connected"), `the test's message: ${told}`);
    check((await page.inputValue('input[name="basePath"]')) === "", "a save clears the form");
    await page.fill("#target-name", "no-path");
    await page.click("#save-target");
    const refused = await page.waitForSelector("#new-target [role=alert]");
    check((await refused.getAttribute("data-code")) === "STORAGE_TARGET_INVALID_CONFIG", "a config without its directory is refused");
    await shot("07-storage");
    // Nodes: the agent's node is online; a new node shows its token once, in install commands
    // that keep it off the agent's command line; a node that runs tasks cannot be deleted.
    await page.click("text=Nodes");
    const mine = await page.waitForSelector('#nodes tr[data-name="browser-node"]');
    check((await mine.textContent()).includes("online"), "the agent's node is online");
    await page.fill("#node-name", "spare-nas");
    await page.click("#add-node");
    const token = await page.waitForSelector('#token[data-node="spare-nas"]');
    const commands = await token.textContent();
    check(/'stn_[0-9a-f]{64}'/.test(commands), `the token in: ${commands}`);
    check(commands.includes(`stowage-agent run --server ${base} --token-file /etc/stowage/agent.token`), "the run command");
    await page.waitForSelector('#nodes tr[data-name="spare-nas"]');
    await shot("08-nodes");
    await (await page.$('#nodes tr[data-name="browser-node"] button.delete')).click();
    const busy = await page.waitForSelector("section [role=alert]");
    check((await busy.getAttribute("data-code")) === "NODE_HAS_TASKS", "a node with tasks is kept");
    await (await page.$('#nodes tr[data-name="spare-nas"] button.delete')).click();
    await page.waitForSelector('#nodes tr[data-name="spare-nas"]', { state: "detached" });
    await page.click("text=Dashboard");
    await page.waitForSelector("#stat-tasks");
    // 中文: the same page in Simplified Chinese.
    await page.click("text=中文");
    await page.waitForSelector("text=仪表盘");
    await shot("06-dashboard-zh");
    await page.click("#sign-out");
    await page.waitForSelector("#username");
    done.dashboard = { tasks, rate, nodes };
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
