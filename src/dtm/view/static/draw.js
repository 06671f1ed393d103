// The topology drawing: the sync above, the data nodes below, and messages moving between them.
const NS = "http://www.w3.org/2000/svg";
const MAX_IN_FLIGHT = 40; // beyond this a message is not drawn (the timeline still lists it)
const TRAVEL_MS = 900;
let inFlight = 0;

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

export function positions(names) {
  const pos = { sync: { x: 320, y: 50 } };
  const n = names.length;
  names.forEach((name, i) => { pos[name] = { x: Math.round(640 * (i + 1) / (n + 1)), y: 230 }; });
  return pos;
}

export function drawTopology(svg, state) {
  const names = state.nodes.map((n) => n.name);
  const pos = positions(names);
  svg.replaceChildren();
  const layer = el("g", { id: "links" });
  for (const name of names) {
    layer.append(el("line", { x1: pos.sync.x, y1: pos.sync.y + 22, x2: pos[name].x, y2: pos[name].y - 30 }));
  }
  svg.append(layer);
  const sync = state.sync;
  const syncClass = !sync.reachable ? "box down" : "box";
  const syncBox = el("g", { "data-box": "sync" });
  syncBox.append(el("rect", { class: sync.state === "PAUSED" ? "box paused" : syncClass,
    x: pos.sync.x - 70, y: pos.sync.y - 22, width: 140, height: 44, rx: 6 }));
  syncBox.append(el("text", { class: "name", x: pos.sync.x, y: pos.sync.y - 4, "text-anchor": "middle" }, "sync"));
  const syncWord = sync.state === "PAUSED" ? "paused" : sync.reachable ? `${sync.mode}, ${sync.conflicts} conflicts` : "unreachable";
  syncBox.append(el("text", { x: pos.sync.x, y: pos.sync.y + 13, "text-anchor": "middle" }, syncWord));
  svg.append(syncBox);
  for (const n of state.nodes) {
    const p = pos[n.name];
    const cls = n.state === "PAUSED" ? "box paused" : n.reachable ? "box" : "box down";
    const g = el("g", { "data-box": n.name });
    g.append(el("rect", { class: cls, x: p.x - 75, y: p.y - 30, width: 150, height: 62, rx: 6 }));
    g.append(el("text", { class: "name", x: p.x, y: p.y - 12, "text-anchor": "middle" }, n.name));
    const line1 = n.reachable ? `version ${n.last_version}` : (n.state || "down").toLowerCase();
    const line2 = n.reachable ? `${n.live_rows} rows, ${n.tombstones} tombstones` : "no answer";
    g.append(el("text", { x: p.x, y: p.y + 5, "text-anchor": "middle" }, line1));
    g.append(el("text", { x: p.x, y: p.y + 21, "text-anchor": "middle" }, line2));
    svg.append(g);
  }
  svg.append(el("g", { id: "messages" }));
}

export function sendMessage(svg, state, ev) {
  if (!state || inFlight >= MAX_IN_FLIGHT || document.hidden) return;
  const pos = positions(state.nodes.map((n) => n.name));
  const a = pos[ev.src], b = pos[ev.dst];
  if (!a || !b) return;
  const layer = svg.querySelector("#messages");
  if (!layer) return;
  const dot = el("circle", { class: `dot-${ev.kind}`, r: 6 + Math.min(8, Math.log2(1 + ev.size)), cx: a.x, cy: a.y });
  const label = el("text", { class: "size", x: a.x + 10, y: a.y }, ev.size ? `${ev.size}` : "");
  layer.append(dot, label);
  inFlight += 1;
  const t0 = performance.now();
  function step(now) {
    const f = Math.min(1, (now - t0) / TRAVEL_MS);
    const x = a.x + (b.x - a.x) * f, y = a.y + (b.y - a.y) * f;
    dot.setAttribute("cx", x); dot.setAttribute("cy", y);
    label.setAttribute("x", x + 10); label.setAttribute("y", y);
    if (f < 1) requestAnimationFrame(step);
    else { dot.remove(); label.remove(); inFlight -= 1; }
  }
  requestAnimationFrame(step);
}
