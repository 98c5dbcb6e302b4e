// The web console in headless Chromium, driven by playwright-core, against
// two real `eligibility-server --demo` processes started by
// `server/tests/console_browser.rs`: CONSOLE_URL (open reads, auth off) and
// CONSOLE_AUTH_URL (reads need a token; READER_TOKEN and WRITER_TOKEN).
// ELIGCTL writes behind an open page's back. Screenshots go to SCREENSHOTS.
// Exits non-zero on the first failed check, saying which.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import net from "node:net";
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const BASE = env("CONSOLE_URL");
const AUTH = env("CONSOLE_AUTH_URL");
const SHOTS = env("SCREENSHOTS");
const failures = [];

async function step(name, body) {
  const started = Date.now();
  try {
    await body();
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.stack || e}`);
    failures.push(name);
  }
}

const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const laptop = { viewport: { width: 1280, height: 900 } };
const errors = [];
async function newPage(options = laptop) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(`${page.url()}: ${e.message}`));
  page.on("console", (m) => {
    // A refused token is an expected 401 in the sign-in checks.
    if (m.type() === "error" && !/status of 401/.test(m.text())) errors.push(`${page.url()}: ${m.text()}`);
  });
  return page;
}
const text = (page, sel) => page.locator(sel).first().innerText();
const mapClass = (page, cc) => page.locator(`svg.map path[data-cc="${cc}"]`).getAttribute("class");
const eligctl = (...args) => {
  const r = spawnSync(env("ELIGCTL"), ["--server", BASE, ...args], { input: args.includes("-") ? eligctl.input : undefined, encoding: "utf8" });
  assert.equal(r.status, 0, `eligctl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};

const page = await newPage();

await step("lists page: the cyber list, its mode, authority and 37 members now", async () => {
  await page.goto(`${BASE}/`);
  const row = page.locator('#lists tr[data-list="cyber"]');
  assert.match(await row.innerText(), /allowlist/);
  assert.match(await row.innerText(), /Calcalist/);
  assert.equal((await row.locator(".count").innerText()).trim(), "37");
  assert.match(await row.innerText(), /2021-11-01/);
  await page.screenshot({ path: `${SHOTS}/lists.png`, fullPage: true });
});

let firstRender = {};
await step("cyber as of 2021-10-15: 41 members, MX among them, coloured eligible", async () => {
  await page.goto(`${BASE}/lists/cyber?as_of=2021-10-15`);
  assert.equal(await text(page, "#member-count"), "41");
  assert.equal(await page.locator('#members tr[data-cc="MX"]').count(), 1);
  assert.match(await text(page, '#members tr[data-cc="MX"]'), /Mexico/);
  assert.equal(await mapClass(page, "MX"), "eligible");
  await page.screenshot({ path: `${SHOTS}/list-2021-10-15.png`, fullPage: true });
});

await step("cyber now: 37 members, MX under removed with the 2021-11-01 change and its reason; the chart's step; the map", async () => {
  await page.goto(`${BASE}/lists/cyber`);
  await page.waitForLoadState("load");
  await page.waitForFunction(() => performance.getEntriesByType("paint").some((e) => e.name === "first-contentful-paint"));
  firstRender = await page.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const fcp = performance.getEntriesByType("paint").find((e) => e.name === "first-contentful-paint");
    return { response: nav.responseEnd, dom: nav.domContentLoadedEventEnd, load: nav.loadEventEnd, fcp: fcp ? fcp.startTime : null, bytes: nav.transferSize };
  });
  assert.equal(await text(page, "#member-count"), "37");
  assert.equal(await page.locator('#members tr[data-cc="MX"]').count(), 0);
  const mx = await text(page, '#removed tr[data-cc="MX"]');
  assert.match(mx, /2021-11-01/);
  assert.match(mx, /List cut from 102 to 37/);
  // The member-count chart: 41 from 2021-01-01, then 37 from 2021-11-01.
  const steps = await page.locator("svg.chart g.step").evaluateAll((gs) => gs.map((g) => [g.dataset.from.slice(0, 10), g.dataset.members]));
  assert.deepEqual(steps, [["2021-01-01", "41"], ["2021-11-01", "37"]]);
  assert.equal(await mapClass(page, "MX"), "removed");
  assert.equal(await mapClass(page, "FR"), "eligible");
  assert.equal(await mapClass(page, "CN"), "ineligible");
  await page.screenshot({ path: `${SHOTS}/list.png`, fullPage: true });
  await page.locator("section.figure").nth(1).scrollIntoViewIfNeeded();
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${SHOTS}/list-top.png` });
  await page.locator("section.figure").first().screenshot({ path: `${SHOTS}/chart.png` });
  await page.locator("svg.map").screenshot({ path: `${SHOTS}/map.png` });
});

await step("MX's timeline: eligible from 2021-01-01 until 2021-11-01, each boundary with its revision and reason", async () => {
  await page.goto(`${BASE}/countries/MX`);
  const eligible = page.locator("ol.intervals li.eligible");
  assert.equal(await eligible.count(), 1);
  const line = await eligible.innerText();
  assert.match(line, /Eligible from 2021-01-01 until 2021-11-01/);
  assert.match(line, /r2/);
  const after = await text(page, "ol.intervals li.ineligible:last-child");
  assert.match(after, /from 2021-11-01/);
  assert.match(after, /r3/);
  assert.match(after, /List cut/);
  assert.equal(await page.locator("svg.timeline rect.eligible").count(), 1);
  await page.screenshot({ path: `${SHOTS}/country-MX.png`, fullPage: true });
});

await step("the lookup form and the keyboard: Tab reaches the skip link first", async () => {
  await page.goto(`${BASE}/`);
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.className), "skip");
  await page.fill("#lookup-code", "mex");
  await page.press("#lookup-code", "Enter");
  await page.waitForURL(/\/countries\/MX$/);
  assert.match(await text(page, "h1"), /MX Mexico/);
});

let permalink;
await step("a change written with eligctl appears on an open page within 1 s, without a reload", async () => {
  await page.goto(`${BASE}/lists/cyber`);
  permalink = await page.locator("a.permalink").getAttribute("href");
  assert.match(permalink, /at_revision=3/);
  await page.evaluate(() => {
    window.__sameDocument = true;
  });
  // Let the script open its event stream (it starts on DOMContentLoaded).
  await page.waitForFunction(() => document.documentElement.dataset.live === "on");
  eligctl.input = "list,country,action\ncyber,JP,remove\n";
  const written = Date.now();
  eligctl("apply", "-", "--reason", "JP removed in the browser test");
  await page.waitForFunction(() => /revision 4: JP removed from cyber/.test(document.getElementById("live").textContent), null, { timeout: 1000 });
  const seenAfter = Date.now() - written;
  await page.waitForFunction(() => document.getElementById("member-count").textContent === "36", null, { timeout: 1000 });
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page was reloaded");
  assert.equal(await page.locator('#removed tr[data-cc="JP"]').count(), 1);
  console.log(`     the banner appeared ${seenAfter} ms after eligctl returned`);
  await page.screenshot({ path: `${SHOTS}/live.png` });
});

await step("a link with at_revision reproduces the old view after later writes", async () => {
  await page.goto(`${BASE}${permalink}`);
  assert.equal(await text(page, "#member-count"), "37");
  assert.equal(await page.locator('#members tr[data-cc="JP"]').count(), 1);
  assert.match(await text(page, "#summary"), /Later revisions exist/);
  assert.equal(await mapClass(page, "JP"), "eligible");
});

await step("diff and history pages", async () => {
  await page.goto(`${BASE}/lists/cyber/diff?from_as_of=2021-10-15&from_revision=3&as_of=2021-11-15&at_revision=3`);
  const removed = await page.locator("#removed li").evaluateAll((ls) => ls.map((l) => l.dataset.cc).sort());
  assert.deepEqual(removed, ["AE", "MA", "MX", "SA"]);
  assert.equal(await page.locator("#added li").count(), 0);
  await page.screenshot({ path: `${SHOTS}/diff.png`, fullPage: true });
  await page.goto(`${BASE}/history`);
  const revs = await page.locator("#history tbody tr").evaluateAll((rs) => rs.map((r) => r.dataset.rev));
  assert.deepEqual(revs, ["4", "3", "2", "1"]);
  assert.match(await text(page, "#r3"), /demo-loader/);
  assert.match(await text(page, "#r3"), /cyber: −MX −MA −SA −AE/);
  await page.screenshot({ path: `${SHOTS}/history.png`, fullPage: true });
});

await step("a phone-width list page fits without sideways scrolling of the page", async () => {
  const phone = await newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await phone.goto(`${BASE}/lists/cyber`);
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page is ${overflow} px wider than the screen`);
  await phone.screenshot({ path: `${SHOTS}/list-phone.png`, fullPage: false });
  await phone.context().close();
});

await step("the live stream reconnects by itself after a server restart and misses nothing", async () => {
  const port = await new Promise((res) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  const start = async () => {
    const child = spawn(env("SERVER"), ["--demo", "--listen", `127.0.0.1:${port}`, "--data-dir", env("RESTART_DATA"), "--log-level", "warn"], { stdio: "inherit" });
    // Ready when it answers a read: the port is bound while the registry
    // still loads (reads and writes then answer UNAVAILABLE).
    for (let i = 0; i < 200; i++) {
      const ready = await fetch(`${url}/v1/lists`).then((r) => r.ok, () => false);
      if (ready) return child;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("the server did not become ready");
  };
  let server = await start();
  const p = await newPage();
  try {
    await p.goto(`${url}/lists/cyber`);
    await p.waitForFunction(() => document.documentElement.dataset.live === "on");
    await p.evaluate(() => {
      window.__sameDocument = true;
    });
    await new Promise((res) => {
      server.on("exit", res);
      server.kill("SIGTERM");
    });
    await p.waitForFunction(() => document.documentElement.dataset.live === "reconnecting", null, { timeout: 15000 });
    server = await start();
    // Written before the page is back: the resumed stream (Last-Event-ID)
    // must still bring it.
    const r = spawnSync(env("ELIGCTL"), ["--server", url, "apply", "-", "--reason", "after the restart"], { input: "list,country,action\ncyber,NZ,remove\n", encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    await p.waitForFunction(() => /revision 4: NZ removed from cyber/.test(document.getElementById("live").textContent), null, { timeout: 15000 });
    await p.waitForFunction(() => document.getElementById("member-count").textContent === "36", null, { timeout: 2000 });
    assert.equal(await p.evaluate(() => window.__sameDocument), true, "the page was reloaded");
  } finally {
    await p.context().close();
    server.kill("SIGTERM");
  }
});

// ---- the server whose reads need a token --------------------------------

async function signIn(token) {
  const p = await newPage();
  const resp = await p.goto(`${AUTH}/lists/cyber`);
  assert.equal(resp.status(), 401);
  assert.match(await text(p, "#sign-in-needed"), /authenticated readers only/);
  assert.equal(await p.locator("#member-count").count(), 0, "a list was shown without a token");
  await p.fill("#token", token);
  await p.click("#token-form button");
  return p;
}

await step("a wrong token is refused with a message", async () => {
  const p = await signIn("not-a-token");
  await p.waitForSelector("#token-error:not([hidden])", { timeout: 5000 });
  assert.match(await text(p, "#token-error"), /Token refused: the bearer token is not valid/);
  assert.equal(await p.evaluate(() => sessionStorage.getItem("eligibility-console-token")), null);
  await p.context().close();
});

await step("a reader reads (the token kept for the tab) and sees no write forms", async () => {
  const p = await signIn(env("READER_TOKEN"));
  await p.waitForSelector("#member-count", { timeout: 5000 });
  assert.match(await text(p, "#signed-in"), /rita \(reader\)/);
  assert.equal(await text(p, "#member-count"), "37");
  assert.equal(await p.locator("#apply-form, #replace-form").count(), 0);
  // Navigation keeps the token: the country page is shown, not a sign-in.
  await p.click('#removed tr[data-cc="MX"] a.country');
  await p.waitForSelector("ol.intervals", { timeout: 5000 });
  assert.match(await text(p, "h1"), /MX Mexico/);
  assert.equal(await p.evaluate(() => document.cookie), "");
  await p.context().close();
});

await step("a writer replaces the members: the preview lists exactly the removals; one commit records once", async () => {
  const p = await signIn(env("WRITER_TOKEN"));
  await p.waitForSelector("#replace-form", { timeout: 5000 });
  assert.match(await text(p, "#signed-in"), /walt \(writer\)/);
  const head = async () =>
    p.evaluate(async (t) => {
      const r = await fetch("/v1/lists/cyber", { headers: { Authorization: `Bearer ${t}` } });
      return (await r.json()).header.revision;
    }, env("WRITER_TOKEN"));
  const before = Number(await head());
  const current = (await p.inputValue('#replace-form textarea[name="members"]')).split(/\s+/).filter(Boolean);
  assert.equal(current.length, 37);
  const kept = current.filter((c) => c !== "FR" && c !== "DE");
  await p.fill('#replace-form textarea[name="members"]', kept.join("\n"));
  await p.fill('#replace-form input[name="reason"]', "browser test: FR and DE out");
  await p.fill('#replace-form input[name="reference"]', "test notice 1");
  await p.click("#replace-form button[type=submit]");
  await p.waitForSelector("#replace .preview ul.changes", { timeout: 5000 });
  const changes = await p
    .locator("#replace .preview li")
    .evaluateAll((ls) => ls.map((l) => `${l.dataset.action} ${l.dataset.cc}`).sort());
  assert.deepEqual(changes, ["remove DE", "remove FR"]);
  assert.match(await text(p, "#replace .preview"), /would record revision 4/);
  assert.equal(Number(await head()), before, "the preview recorded something");
  await p.screenshot({ path: `${SHOTS}/write-preview.png`, fullPage: false });
  const commit = p.locator("#replace .preview button.commit");
  await commit.click();
  await p.waitForFunction(() => /Recorded revision 4/.test(document.querySelector("#replace .preview .result").textContent), null, { timeout: 5000 });
  await commit.click();
  await p.waitForFunction(() => /nothing new was recorded/.test(document.querySelector("#replace .preview .result").textContent), null, { timeout: 5000 });
  assert.equal(Number(await head()), before + 1, "two clicks recorded more than one changeset");
  await p.screenshot({ path: `${SHOTS}/write-recorded.png`, fullPage: false });
  await p.context().close();
});

console.log(
  `     time to first render of the list page (from navigation start): response end ${firstRender.response?.toFixed(1)} ms, ` +
    `first contentful paint ${firstRender.fcp?.toFixed(1)} ms, DOM ready ${firstRender.dom?.toFixed(1)} ms, ` +
    `load ${firstRender.load?.toFixed(1)} ms (${firstRender.bytes} bytes)`,
);
await browser.close();
if (errors.length) {
  console.log(`FAIL script errors in pages:\n${errors.join("\n")}`);
  failures.push("page errors");
}
if (failures.length) {
  console.log(`${failures.length} check(s) failed: ${failures.join("; ")}`);
  process.exit(1);
}
console.log("all console checks passed");
