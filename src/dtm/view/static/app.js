// The live view: log in with the cluster secret, follow the event stream, render, pull levers.
import { drawTopology, sendMessage } from "./draw.js";

const MAX_EVENTS = 2000;
const $ = (sel) => document.querySelector(sel);
let state = null;
let events = [];
let paused = false;
let unseen = 0;
let stream = null;

function text(tag, value, cls) {
  const e = document.createElement(tag);
  e.textContent = value === undefined || value === null ? "" : String(value);
  if (cls) e.className = cls;
  return e;
}

function time(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function stampTime(hlc) {
  // a stamp is physical_ms << 16 | logical; JSON numbers keep 53 bits, enough for the
  // milliseconds but not always for the logical part, which is left out
  const ms = Math.floor(hlc / 65536);
  return new Date(ms).toLocaleString([], { hour12: false }) + "." + String(ms % 1000).padStart(3, "0");
}

async function login(secret) {
  const r = await fetch("/login", { method: "POST", headers: { Authorization: `Bearer ${secret}` }, credentials: "same-origin" });
  return r.ok;
}

async function start() {
  const m = /(?:^#|&)k=([^&]+)/.exec(location.hash);
  if (m) {
    history.replaceState(null, "", location.pathname); // the secret leaves the address bar
    await login(decodeURIComponent(m[1]));
  }
  const probe = await fetch("/v1/state", { credentials: "same-origin" });
  if (probe.status === 401) return showLogin();
  follow();
}

function showLogin() {
  $("#login").hidden = false;
  $("#main").hidden = true;
  $("#login").onsubmit = async (e) => {
    e.preventDefault();
    if (await login($("#secret").value.trim())) { $("#login").hidden = true; follow(); }
    else $("#login-error").textContent = "that is not the cluster secret";
  };
}

function follow() {
  $("#main").hidden = false;
  if (stream) stream.close();
  stream = new EventSource("/v1/events");
  stream.addEventListener("hello", (m) => {
    const hello = JSON.parse(m.data);
    if (hello.state) setState(hello.state);
    events = hello.events.slice(-MAX_EVENTS);
    renderTimeline();
  });
  stream.addEventListener("state", (m) => setState(JSON.parse(m.data)));
  stream.addEventListener("event", (m) => addEvent(JSON.parse(m.data)));
  stream.onopen = () => { $("#conn").textContent = "live"; $("#conn").className = "conn on"; };
  stream.onerror = async () => {
    $("#conn").textContent = "reconnecting…"; $("#conn").className = "conn off";
    const probe = await fetch("/v1/state", { credentials: "same-origin" }).catch(() => null);
    if (probe && probe.status === 401) { stream.close(); showLogin(); }
  };
}

function setState(s) {
  state = s;
  drawTopology($("#topology"), s);
  renderNodes(); renderPairs(); renderComponents(); renderConflicts();
}

function addEvent(ev) {
  events.push(ev);
  if (events.length > MAX_EVENTS) events.splice(0, events.length - MAX_EVENTS);
  if (ev.kind === "poll" || ev.kind === "batch") sendMessage($("#topology"), state, ev);
  if (paused) { unseen += 1; $("#timeline-note").textContent = `paused: ${unseen} new`; return; }
  $("#timeline").prepend(eventItem(ev));
  $("#timeline-note").textContent = `${events.length} events kept`;
  const list = $("#timeline");
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
}

function eventItem(ev) {
  const li = document.createElement("li");
  li.className = `ev-${ev.kind}`;
  li.dataset.kind = ev.kind;
  li.append(text("span", time(ev.at_ms), "t"), text("span", ev.kind, "k"), text("span", ev.text));
  return li;
}

function renderTimeline() {
  const list = $("#timeline");
  list.replaceChildren(...events.slice().reverse().map(eventItem));
  unseen = 0;
  $("#timeline-note").textContent = `${events.length} events kept`;
}

function cell(row, value, cls) { row.append(text("td", value, cls)); }

function leverButtons(name, kinds) {
  const td = document.createElement("td");
  for (const [lever, label, offset] of kinds) {
    const b = text("button", label);
    b.type = "button";
    b.dataset.lever = lever; b.dataset.comp = name;
    if (offset !== undefined) b.dataset.offset = offset;
    b.disabled = !state.levers;
    b.title = state.levers ? `${lever} ${name}` : "levers need the cluster's supervisord";
    b.onclick = () => pull(b, lever, name, offset);
    td.append(b);
  }
  return td;
}

const COMMON = [["stop", "stop"], ["start", "start"], ["restart", "restart"], ["pause", "pause"], ["resume", "resume"]];
const NODE = [...COMMON, ["wipe", "wipe"], ["skew", "skew +3s", "+3000"], ["skew", "skew 0", "0"]];

async function pull(button, lever, component, offset) {
  document.querySelectorAll("button[data-lever]").forEach((b) => { b.disabled = true; });
  $("#lever-msg").textContent = `${lever} ${component}…`;
  try {
    const body = JSON.stringify(offset === undefined ? { lever, component } : { lever, component, offset });
    const r = await fetch("/v1/lever", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Dtm-View": "1" }, body });
    const answer = await r.json();
    $("#lever-msg").textContent = r.ok ? answer.message : `${answer.error}: ${answer.message}`;
  } catch (e) {
    $("#lever-msg").textContent = `${lever} ${component} failed: ${e}`;
  } finally {
    document.querySelectorAll("button[data-lever]").forEach((b) => { b.disabled = !state.levers; });
  }
}

function renderNodes() {
  const body = $("#nodes tbody");
  body.replaceChildren(...state.nodes.map((n) => {
    const tr = document.createElement("tr");
    tr.dataset.node = n.name;
    cell(tr, n.name);
    cell(tr, n.state || "?", n.state === "RUNNING" ? "ok" : "warn");
    cell(tr, !n.reachable ? `unreachable: ${n.error}` : n.fenced ? "FENCED: refuses client writes" : "ok", !n.reachable || n.fenced ? "bad" : "ok");
    cell(tr, n.epoch);
    cell(tr, n.reachable ? n.last_version : "?", "num version");
    cell(tr, n.reachable ? n.live_rows : "?", "num rows");
    cell(tr, n.reachable ? n.tombstones : "?", "num");
    cell(tr, n.reachable ? `${n.offset_ms >= 0 ? "+" : ""}${n.offset_ms} ms` : "?", "num");
    return tr;
  }));
}

function renderPairs() {
  const s = state.sync;
  $("#sync-line").textContent = s.reachable
    ? `${s.mode}; feed pages read: ${Object.entries(s.rounds).map(([k, v]) => `${k} ${v}`).join(", ")}`
    : `${s.state === "PAUSED" ? "paused" : "unreachable"}: ${s.error}`;
  $("#pairs tbody").replaceChildren(...s.pairs.map((p) => {
    const tr = document.createElement("tr");
    tr.dataset.pair = `${p.source}-${p.target}`;
    cell(tr, `${p.source} → ${p.target}`);
    cell(tr, p.cursor, "num"); cell(tr, p.source_last_version, "num");
    cell(tr, p.lag_versions, p.lag_versions ? "num warn" : "num");
    cell(tr, p.lag_ms === null ? "?" : p.lag_ms, "num");
    cell(tr, p.rows_sent, "num"); cell(tr, p.conflicts, "num");
    cell(tr, p.reachable ? "" : "unreachable", "bad");
    return tr;
  }));
  $("#purges").textContent = s.reachable
    ? `conflicts: ${s.conflicts}; tombstones waiting to be purged: ${s.awaiting_purge}; purged so far: ${s.purged}` : "";
  $("#holds").replaceChildren(...s.holds.map((h) => text("li", h)));
}

function renderComponents() {
  const others = state.components.filter((c) => c.kind !== "view");
  $("#components tbody").replaceChildren(...others.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.comp = c.name;
    cell(tr, c.name);
    cell(tr, c.state || "?", c.state === "RUNNING" ? "ok" : "warn");
    tr.append(leverButtons(c.name, c.kind === "node" ? NODE : COMMON));
    return tr;
  }));
}

function rowWords(r) {
  let what = "deleted";
  if (!r.deleted) {
    const v = r.value;
    what = v && typeof v === "object" && "text" in v ? `[${v.status}] ${v.text}` : JSON.stringify(v);
  }
  return `${what} — written on ${r.origin} at ${stampTime(r.hlc)}`;
}

function renderConflicts() {
  const KNOWN = new Set(["key", "winner", "loser", "node", "at_ms"]);
  const list = $("#conflicts");
  if (!state.conflicts.length) { list.replaceChildren(text("li", "none yet: pause the sync, change one task on two nodes, resume")); return; }
  list.replaceChildren(...state.conflicts.map((c) => {
    const li = document.createElement("li");
    li.dataset.key = c.key;
    li.append(text("div", `${c.key} — decided by ${c.node} at ${time(c.at_ms)}`));
    li.append(text("div", `winner: ${rowWords(c.winner)}`, "winner"));
    li.append(text("div", `loser (lost): ${rowWords(c.loser)}`, "loser"));
    for (const [k, v] of Object.entries(c)) if (!KNOWN.has(k)) li.append(text("div", `${k}: ${JSON.stringify(v)}`));
    return li;
  }));
}

$("#pause-timeline").onclick = () => {
  paused = !paused;
  $("#pause-timeline").textContent = paused ? "Resume" : "Pause";
  if (!paused) renderTimeline(); else $("#timeline-note").textContent = "paused: 0 new";
};

start();
