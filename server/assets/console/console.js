// The eligibility console's script. Pages are complete without it; it adds
// the token (kept in this tab's sessionStorage and sent as an
// Authorization header, never a cookie), live updates from the change
// stream (GET /v1/watch, server-sent events, resumed with Last-Event-ID),
// and the write forms (previewed with validateOnly, recorded with an
// Idempotency-Key so a double click records once).
"use strict";

const TOKEN_KEY = "eligibility-console-token";
const token = () => sessionStorage.getItem(TOKEN_KEY);
const authHeaders = () => (token() ? { Authorization: `Bearer ${token()}` } : {});
const regionNames = typeof Intl.DisplayNames === "function" ? new Intl.DisplayNames(["en"], { type: "region" }) : null;
const countryName = (cc) => {
  try {
    return (regionNames && regionNames.of(cc)) || "";
  } catch {
    return "";
  }
};
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
};

// ---- pages fetched with the token -------------------------------------

/** Shows why a token was refused, and forgets it. */
function refuseToken(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  const p = document.getElementById("token-error");
  if (p) {
    p.textContent = `Token refused: ${message}`;
    p.hidden = false;
  }
}

/** The message of a refused request: problem+json detail, or the page's. */
async function messageOf(resp) {
  const text = await resp.text();
  try {
    const p = JSON.parse(text);
    const fields = (p.violations || p.fieldViolations || []).map((v) => `${v.field}: ${v.description}`);
    return [p.detail || p.title || text, ...fields].join("; ");
  } catch {
    const doc = new DOMParser().parseFromString(text, "text/html");
    const m = doc.querySelector("#error-message, #sign-in-needed");
    return m ? m.textContent : `HTTP ${resp.status}`;
  }
}

/** Loads `url` with the token and shows it in place of the current page. */
async function loadPage(url, how) {
  let resp;
  try {
    resp = await fetch(url, { headers: { ...authHeaders(), Accept: "text/html" } });
  } catch (e) {
    announce(`Cannot reach the server (${e.message}); retrying when it answers.`);
    return false;
  }
  if (resp.status === 401 && token()) {
    const message = await messageOf(resp);
    refuseToken(message);
    return false;
  }
  const html = await resp.text();
  const doc = new DOMParser().parseFromString(html, "text/html");
  const live = document.getElementById("live");
  const keep = live ? live.textContent : "";
  document.title = doc.title;
  document.body.replaceWith(doc.body);
  if (keep) announce(keep);
  liveState(document.documentElement.dataset.live || "off");
  if (how === "push") history.pushState({}, "", resp.url);
  else if (how === "replace") history.replaceState({}, "", resp.url);
  return true;
}

function sameOriginPage(url) {
  return (
    url.origin === location.origin &&
    !url.pathname.startsWith("/v1/") &&
    !url.pathname.startsWith("/console/assets/")
  );
}

// With a token, navigation goes through fetch so each page carries it.
document.addEventListener("click", (ev) => {
  const a = ev.target.closest && ev.target.closest("a[href]");
  if (!a || !token() || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey) return;
  const url = new URL(a.href, location.href);
  if (!sameOriginPage(url) || (url.pathname === location.pathname && url.search === location.search && url.hash)) return;
  ev.preventDefault();
  loadPage(url.href, "push");
});

document.addEventListener("submit", (ev) => {
  const form = ev.target;
  if (form.id === "token-form") {
    ev.preventDefault();
    const value = new FormData(form).get("token").trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    loadPage(location.href, "replace").then(() => restartStream());
    return;
  }
  if (form.id === "apply-form" || form.id === "replace-form") {
    ev.preventDefault();
    preview(form);
    return;
  }
  if (token() && (form.method || "get").toLowerCase() === "get") {
    ev.preventDefault();
    const url = new URL(form.action, location.href);
    url.search = new URLSearchParams(new FormData(form)).toString();
    loadPage(url.href, "push");
  }
});

window.addEventListener("popstate", () => {
  if (token()) loadPage(location.href, "none");
});

document.addEventListener("click", (ev) => {
  if (ev.target.id === "sign-out") {
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  }
});

// The revision slider and its number field move together.
document.addEventListener("input", (ev) => {
  const t = ev.target;
  const form = t.form;
  if (!form) return;
  if (t.classList.contains("rev-slider")) form.querySelector(".rev-number").value = t.value;
  if (t.classList.contains("rev-number")) {
    const s = form.querySelector(".rev-slider");
    if (s) s.value = t.value;
  }
});

// ---- live updates -------------------------------------------------------

function announce(text) {
  const live = document.getElementById("live");
  if (live) live.textContent = text;
}

/** "revision 4: JP removed from cyber; FR added to cyber". */
function describe(cs) {
  const groups = new Map();
  const other = [];
  for (const ch of cs.changes || []) {
    if (ch.entry) {
      const verb = ch.entry.action === "ENTRY_ACTION_REMOVE" ? "removed from" : "added to";
      const key = `${verb} ${ch.entry.listId}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(ch.entry.country);
    } else if (ch.createList) {
      other.push(`list ${ch.createList.list.id} created`);
    } else if (ch.updateList) {
      other.push(`list ${ch.updateList.list.id} details changed`);
    }
  }
  const parts = [...groups].map(([key, codes]) => {
    const shown = codes.length > 8 ? `${codes.slice(0, 8).join(", ")} and ${codes.length - 8} more` : codes.join(", ");
    return `${shown} ${key}`;
  });
  const activation = cs.activatesRevision && cs.activatesRevision !== "0" ? ` (revision ${cs.activatesRevision} takes effect)` : "";
  return `revision ${cs.revision}${activation}: ${[...parts, ...other].join("; ") || "recorded"}`;
}

let stream = null;
let lastId = null;
let refreshing = null;

function restartStream() {
  if (stream) stream.abort();
  stream = null;
  watch();
}

/** Follows the change stream from the page's head, resuming after drops. */
async function watch(delay = 1000) {
  const controller = new AbortController();
  stream = controller;
  if (lastId === null) lastId = document.body.dataset.head || "0";
  let resp;
  try {
    resp = await fetch(`/v1/watch?after_revision=${lastId}`, {
      headers: { ...authHeaders(), Accept: "text/event-stream", "Last-Event-ID": lastId },
      signal: controller.signal,
    });
  } catch {
    if (controller.signal.aborted) return;
    liveState("reconnecting");
    setTimeout(() => watch(Math.min(delay * 2, 10000)), delay);
    return;
  }
  if (resp.status === 401 || resp.status === 403) return; // needs a token: watch() again once one is given
  if (!resp.ok || !resp.body) {
    liveState("reconnecting");
    setTimeout(() => watch(Math.min(delay * 2, 10000)), delay);
    return;
  }
  liveState("on");
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        handleEvent(block);
      }
    }
  } catch {
    if (controller.signal.aborted) return;
  }
  if (!controller.signal.aborted) {
    liveState("reconnecting");
    setTimeout(() => watch(1000), 1000);
  }
}

/** Shows whether live updates flow (kept on <html>: pages replace <body>). */
function liveState(state) {
  document.documentElement.dataset.live = state;
  const s = document.getElementById("live-state");
  if (s) s.textContent = `live updates ${state}`;
}

function handleEvent(block) {
  let id = null;
  let kind = "message";
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("id:")) id = line.slice(3).trim();
    else if (line.startsWith("event:")) kind = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trim();
  }
  if (id !== null) lastId = id;
  if (kind !== "changeset") return;
  const cs = JSON.parse(data);
  const head = document.getElementById("head");
  if (head) head.textContent = cs.revision;
  document.body.dataset.head = cs.revision;
  const pinned = document.body.dataset.pinned;
  const text = describe(cs);
  announce(pinned ? `${text}. This page is fixed at revision ${pinned}; remove at_revision from the address to see it.` : text);
  if (!pinned && !refreshing) {
    // Several revisions in a burst: one refresh after them.
    refreshing = setTimeout(async () => {
      refreshing = null;
      if (!document.querySelector(".preview:not(:empty)")) await loadPage(location.href, "none");
      announce(text);
    }, 150);
  }
}

// ---- writes: preview, then commit ---------------------------------------

const codes = (text) =>
  (text || "")
    .split(/[\s,;]+/)
    .map((c) => c.trim().toUpperCase())
    .filter(Boolean);

function request(form) {
  const f = new FormData(form);
  const list = form.dataset.list;
  const options = { reason: f.get("reason").trim(), reference: f.get("reference").trim() };
  const effective = f.get("effective");
  const body = { options };
  if (effective) body.effectiveAt = `${effective}T00:00:00Z`;
  if (form.id === "apply-form") {
    const conditions = f.get("conditions").trim();
    body.changes = [
      ...codes(f.get("add")).map((country) => ({ listId: list, country, action: "ENTRY_ACTION_ADD", conditions })),
      ...codes(f.get("remove")).map((country) => ({ listId: list, country, action: "ENTRY_ACTION_REMOVE" })),
    ];
    return { method: "POST", url: "/v1/changesets", body };
  }
  body.members = codes(f.get("members")).map((country) => ({ country }));
  return { method: "PUT", url: `/v1/lists/${encodeURIComponent(list)}/members`, body };
}

function newKey() {
  if (crypto.randomUUID) return `console-${crypto.randomUUID()}`;
  const b = crypto.getRandomValues(new Uint8Array(16));
  return `console-${[...b].map((x) => x.toString(16).padStart(2, "0")).join("")}`;
}

async function send(req, key, validateOnly) {
  const body = validateOnly ? { ...req.body, validateOnly: true } : req.body;
  const resp = await fetch(req.url, {
    method: req.method,
    headers: { ...authHeaders(), "Content-Type": "application/json", "Idempotency-Key": key },
    body: JSON.stringify(body),
  });
  if (!resp.ok) throw new Error(await messageOf(resp));
  return resp.json();
}

function changeList(cs) {
  const ul = el("ul", { class: "changes" });
  for (const ch of cs.changes || []) {
    if (!ch.entry) continue;
    const remove = ch.entry.action === "ENTRY_ACTION_REMOVE";
    const name = countryName(ch.entry.country);
    const cond = !remove && ch.entry.conditions ? ` (conditions: ${ch.entry.conditions})` : "";
    ul.append(
      el(
        "li",
        { "data-cc": ch.entry.country, "data-action": remove ? "remove" : "add" },
        `${remove ? "remove" : "add"} ${ch.entry.country}${name ? ` ${name}` : ""}${cond}`,
      ),
    );
  }
  return ul;
}

async function preview(form) {
  const out = form.parentElement.querySelector(".preview");
  out.replaceChildren(el("p", {}, "Checking with the server..."));
  const req = request(form);
  const key = newKey();
  let answer;
  try {
    answer = await send(req, key, true);
  } catch (e) {
    out.replaceChildren(el("p", { class: "error", role: "alert" }, `Not accepted: ${e.message}`));
    return;
  }
  if (!answer.changeset) {
    out.replaceChildren(el("p", { class: "result" }, "Nothing to record: the list already says this."));
    return;
  }
  const cs = answer.changeset;
  const commit = el("button", { type: "button", class: "commit" }, "Record this changeset");
  const cancel = el("button", { type: "button", class: "cancel" }, "Cancel");
  const result = el("p", { class: "result", role: "status" });
  out.replaceChildren(
    el(
      "p",
      {},
      `The server would record revision ${cs.revision}, effective ${cs.effectiveAt.slice(0, 10)}, ${(cs.changes || []).length} change(s):`,
    ),
    changeList(cs),
    commit,
    " ",
    cancel,
    result,
  );
  cancel.addEventListener("click", () => out.replaceChildren());
  commit.addEventListener("click", async () => {
    if (commit.dataset.busy) return;
    commit.dataset.busy = "1";
    commit.disabled = true;
    try {
      const done = await send(req, key, false);
      result.textContent = done.replayed
        ? `Already recorded as revision ${done.revision}: nothing new was recorded.`
        : `Recorded revision ${done.revision}.`;
      result.dataset.revision = done.revision;
    } catch (e) {
      result.textContent = `Not recorded: ${e.message}`;
      result.className = "result error";
    } finally {
      delete commit.dataset.busy;
      commit.disabled = false;
    }
  });
}

// ---- start --------------------------------------------------------------

document.addEventListener("DOMContentLoaded", async () => {
  if (token() && !document.body.dataset.who && document.body.dataset.auth === "true") {
    await loadPage(location.href, "none");
  }
  watch();
});
