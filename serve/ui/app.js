// The weft web page: no framework, no build step. Every value shown comes
// from the query API of the instance that serves the page.
"use strict";

const state = { config: {}, token: sessionStorage.getItem("weft-token") || "", watch: null, shown: null };

const $ = (id) => document.getElementById(id);

// el builds an element; text is set as text, never as markup.
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function svgEl(tag, attrs = {}) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function showError(msg) {
  const e = $("error");
  e.textContent = msg;
  e.hidden = !msg;
}

// api fetches a path of the API as JSON; a problem answer becomes an error
// with its status and detail.
async function api(path) {
  const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
  const resp = await fetch(path, { headers });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    if (resp.status === 401 || resp.status === 403) $("token-form").hidden = false;
    const err = new Error(body.detail || resp.statusText);
    err.status = resp.status;
    throw err;
  }
  return body;
}

// ---- trace ids and links ----

function parseTraceparent(tp) {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/.exec(tp || "");
  return m ? { traceId: m[1], spanId: m[2] } : null;
}

// traceLink shows a trace id, linked to the tracing UI if one is configured.
function traceLink(tp) {
  const ids = parseTraceparent(tp);
  if (!ids) return el("span", { class: "muted" }, "no writer recorded");
  const t = state.config.trace_url_template;
  const label = el("code", {}, ids.traceId);
  const wrap = el("span", { class: "trace" });
  if (t) {
    const href = t.replaceAll("{trace_id}", ids.traceId).replaceAll("{span_id}", ids.spanId);
    wrap.append(el("a", { href, class: "trace-link", "data-trace-id": ids.traceId, target: "_blank", rel: "noopener" }, "trace ", label));
  } else {
    wrap.append("trace ", label);
  }
  wrap.append(" span ", el("code", { class: "span-id" }, ids.spanId));
  return wrap;
}

// ---- topology graph: a layered layout, left to right ----

const palette = ["#0b5cad", "#8250df", "#1a7f37", "#bc4c00", "#cf222e", "#1b7c83", "#9a6700", "#bf3989", "#4d2d00", "#0550ae"];

function drawTopology(d) {
  const box = $("topology");
  box.replaceChildren();
  const nodes = d.diagram.nodes, edges = d.diagram.edges;
  if (!nodes.length) {
    box.append(el("p", { class: "muted" }, "The topology has no nodes."));
    return;
  }
  const byId = new Map(nodes.map((n, i) => [n.id, { ...n, i, rank: 0 }]));
  // Longest path from the sources; bounded so that a cycle cannot loop.
  for (let round = 0; round < nodes.length; round++) {
    let changed = false;
    for (const e of edges) {
      const a = byId.get(e.from), b = byId.get(e.to);
      if (a && b && b.rank < a.rank + 1) { b.rank = a.rank + 1; changed = true; }
    }
    if (!changed) break;
  }
  const columns = [];
  for (const n of byId.values()) (columns[n.rank] ||= []).push(n);
  // Order each column by the mean row of its predecessors (fewer crossings).
  const preds = new Map();
  for (const e of edges) (preds.get(e.to) || preds.set(e.to, []).get(e.to)).push(e.from);
  const rowH = 46, gapX = 56, charW = 7, padX = 16;
  let x = 10, height = 0;
  columns.forEach((col, ci) => {
    if (ci > 0) {
      const mean = (n) => {
        const ps = (preds.get(n.id) || []).map((p) => byId.get(p)).filter((p) => p && p.row !== undefined);
        return ps.length ? ps.reduce((s, p) => s + p.row, 0) / ps.length : n.i;
      };
      col.sort((a, b) => mean(a) - mean(b));
    }
    const w = Math.max(...col.map((n) => n.label.length * charW + 2 * padX));
    col.forEach((n, r) => { n.row = r; n.x = x; n.y = 10 + r * rowH; n.w = n.label.length * charW + 2 * padX; });
    x += w + gapX;
    height = Math.max(height, 10 + col.length * rowH);
  });
  const svg = svgEl("svg", { width: x, height, viewBox: `0 0 ${x} ${height}`, role: "img", "aria-labelledby": "topology-title" });
  const title = svgEl("title", { id: "topology-title" });
  title.textContent = `Topology ${d.app}: ${d.groups.length} groups, ${nodes.length} nodes, ${edges.length} edges`;
  svg.append(title);
  const defs = svgEl("defs");
  const marker = svgEl("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(svgEl("path", { d: "M0,0 L10,5 L0,10 z", fill: "#59636e" }));
  defs.append(marker);
  svg.append(defs);
  const h = 30;
  for (const e of edges) {
    const a = byId.get(e.from), b = byId.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + a.w, y1 = a.y + h / 2, x2 = b.x, y2 = b.y + h / 2, mx = (x1 + x2) / 2;
    const attrs = { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, fill: "none", stroke: "#59636e", "marker-end": "url(#arrow)", class: "edge edge-" + e.kind };
    if (e.kind !== "flow") attrs["stroke-dasharray"] = "5 4";
    if (e.kind === "table") attrs["marker-start"] = "url(#arrow)";
    svg.append(svgEl("path", attrs));
  }
  for (const n of byId.values()) {
    const color = n.group === undefined ? "#6e7781" : palette[n.group % palette.length];
    const g = svgEl("g", { class: "node node-" + n.type, "data-id": n.id });
    const shape = { x: n.x, y: n.y, width: n.w, height: h, stroke: color, "stroke-width": 1.5 };
    if (n.type === "topic") Object.assign(shape, { rx: 15, fill: "#fff8c5" });
    else if (n.type === "store") Object.assign(shape, { rx: 4, fill: "#ddf4ff", "stroke-dasharray": "3 2" });
    else Object.assign(shape, { rx: 4, fill: "#fff" });
    g.append(svgEl("rect", shape));
    const t = svgEl("text", { x: n.x + padX, y: n.y + 19 });
    t.textContent = n.label;
    g.append(t);
    svg.append(g);
  }
  box.append(svg);
  const legend = el("p", { class: "legend" });
  // Colors through the CSSOM: the page's policy forbids style attributes.
  const item = (color, text) => { const s = el("span", {}, text); s.style.setProperty("--c", color); return s; };
  for (const g of d.groups) {
    legend.append(item(palette[g.index % palette.length], `group ${g.name}` + (g.table ? ` (table ${g.table})` : "")));
  }
  legend.append(item("#fff8c5", "topic"), item("#ddf4ff", "state store"));
  box.append(legend);
}

// ---- tables ----

async function loadTables() {
  const { tables } = await api("/tables");
  const body = $("tables").querySelector("tbody");
  body.replaceChildren();
  const select = $("table");
  const chosen = select.value;
  select.replaceChildren();
  for (const t of tables) {
    body.append(el("tr", {}, el("td", {}, t.name), el("td", {}, el("code", {}, t.topic)), el("td", {}, String(t.partitions)),
      el("td", {}, t.assigned.join(", ") || "none"), el("td", {}, t.ready.join(", ") || "none")));
    select.append(el("option", { value: t.name }, t.name));
  }
  if (chosen) select.value = chosen;
}

// ---- a key: value, lineage, live updates ----

const enc = encodeURIComponent;

async function readValue(table, key) {
  if (key !== "watch") return api(`/tables/${enc(table)}/${enc(key)}`);
  // /tables/{table}/watch is the watch endpoint: read the key "watch" by a scan.
  const page = await api(`/tables/${enc(table)}?prefix=watch&limit=1`);
  const v = page.items.find((i) => i.key === "watch");
  if (!v) { const e = new Error(`key "watch" has no value`); e.status = 404; throw e; }
  return v;
}

function renderValue(v) {
  const pre = $("value");
  pre.textContent = v.deleted ? "(deleted)" : v.value_text !== undefined ? v.value_text : JSON.stringify(v.value, null, 2);
  pre.classList.remove("flash");
  void pre.offsetWidth; // restart the animation
  pre.classList.add("flash");
  $("version").textContent = v.deleted ? "deleted" : String(v.version);
  $("event-time").textContent = v.event_time || "none recorded";
  $("writer").replaceChildren(traceLink(v.writer_traceparent));
}

function renderLineage(versions) {
  const ol = $("lineage");
  ol.replaceChildren();
  if (!versions.length) ol.append(el("li", { class: "muted" }, "no versions recorded"));
  for (const v of versions) {
    const li = el("li", { class: "version", "data-version": String(v.version) });
    li.append(el("div", { class: "head" }, `version ${v.version}`), el("div", {}, "event time ", el("time", {}, v.event_time || "none")),
      el("div", {}, "writer ", traceLink(v.writer_traceparent)));
    if (v.replay_job) li.append(el("div", { class: "replay-job" }, "written by replay job ", el("code", {}, v.replay_job)));
    if (v.sources && v.sources.length) {
      const ul = el("ul", { class: "sources", "aria-label": "sources" });
      v.sources.forEach((s, i) => ul.append(el("li", {}, (i === 0 ? "made by " : "after ") + `${s.topic}/${s.partition}@${s.offset}` +
        (s.upstream ? ` (emitted upstream, #${s.index})` : ""))));
      li.append(ul);
    }
    if (v.contributors && v.contributors.length) {
      const ul = el("ul", { class: "contributors", "aria-label": "contributors" });
      for (const c of v.contributors) ul.append(el("li", {}, traceLink(c)));
      li.append(el("div", {}, `coalesced from ${v.contributors.length + (v.contributors_dropped || 0)} records:`), ul);
    }
    ol.append(li);
  }
}

async function refresh(table, key) {
  try {
    renderValue(await readValue(table, key));
  } catch (e) {
    if (e.status !== 404) throw e;
    $("value").textContent = "(no value)";
    $("version").textContent = $("event-time").textContent = "";
    $("writer").replaceChildren();
  }
  try {
    renderLineage((await api(`/tables/${enc(table)}/${enc(key)}/lineage`)).versions);
  } catch (e) {
    if (e.status !== 404) throw e;
    renderLineage([]);
  }
}

function setLive(on, text) {
  const b = $("live");
  b.classList.toggle("on", on);
  b.textContent = text;
}

// watch follows the key's changes: EventSource, or a fetch stream when a
// token has to be sent (EventSource cannot send headers).
function watch(table, key) {
  if (state.watch) state.watch.close();
  const url = `/tables/${enc(table)}/watch?key=${enc(key)}`;
  const onChange = (data) => {
    const v = JSON.parse(data);
    if (v.key !== key) return;
    renderValue(v);
    api(`/tables/${enc(table)}/${enc(key)}/lineage`).then((l) => renderLineage(l.versions), () => {});
  };
  const onMissed = () => refresh(table, key).catch((e) => showError(e.message));
  if (!state.token) {
    const es = new EventSource(url);
    es.onopen = () => { setLive(true, "live"); refresh(table, key).catch((e) => showError(e.message)); };
    es.onmessage = (ev) => onChange(ev.data);
    es.addEventListener("missed", onMissed);
    es.addEventListener("unavailable", () => { setLive(false, "not served here"); es.close(); });
    es.onerror = () => {
      setLive(false, "reconnecting…");
      // A refusal (503 while the partition restores, 429) closes an
      // EventSource for good: try again in a while, if still shown.
      if (es.readyState === EventSource.CLOSED) {
        setTimeout(() => { if (state.watch === es) watch(table, key); }, 3000);
      }
    };
    state.watch = es;
    return;
  }
  const ctl = new AbortController();
  state.watch = { close: () => ctl.abort() };
  (async () => {
    const resp = await fetch(url, { headers: { Authorization: "Bearer " + state.token }, signal: ctl.signal });
    if (!resp.ok) { setLive(false, "not live"); return; }
    setLive(true, "live");
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data = line.slice(6);
        }
        if (!data) continue;
        if (event === "message") onChange(data);
        else if (event === "missed") onMissed();
      }
    }
    setLive(false, "not live");
  })().catch(() => setLive(false, "not live"));
}

async function lookup(ev) {
  ev.preventDefault();
  showError("");
  const table = $("table").value, key = $("key").value;
  if (!table || !key) return;
  $("result-key").textContent = key;
  $("result").hidden = false;
  setLive(false, "connecting…");
  const u = new URL(location);
  u.searchParams.set("table", table);
  u.searchParams.set("key", key);
  history.replaceState(null, "", u);
  try {
    await refresh(table, key);
  } catch (e) {
    showError(e.message);
  }
  watch(table, key);
}

async function load() {
  showError("");
  try {
    state.config = await (await fetch("/ui/config.json")).json();
    if (state.config.token_required && !state.token) {
      $("token-form").hidden = false;
      $("token").focus();
      return;
    }
    await loadTables();
    try {
      drawTopology(await api("/topology"));
    } catch (e) {
      $("topology").replaceChildren(el("p", { class: "muted" }, e.status === 404 ? e.message : "The topology could not be read: " + e.message));
    }
    const q = new URLSearchParams(location.search);
    if (q.get("table") && q.get("key")) {
      $("table").value = q.get("table");
      $("key").value = q.get("key");
      $("lookup").requestSubmit();
    }
  } catch (e) {
    showError(e.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("lookup").addEventListener("submit", lookup);
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.token = $("token").value;
    sessionStorage.setItem("weft-token", state.token);
    $("token-form").hidden = true;
    load();
  });
  load();
});
