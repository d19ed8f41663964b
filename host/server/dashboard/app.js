// Pipecat dashboard: plain JavaScript, no dependencies. Routes live in the URL hash:
//   #/workflows, #/workflows/<id>, #/runs/<id>. The API key stays in sessionStorage.
"use strict";

const KEY = "pipecat_api_key";
const SVG = "http://www.w3.org/2000/svg";
const main = () => document.getElementById("main");

// ---------- DOM helpers (text is always set as text, never parsed as HTML) ----------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}
function say(text) { document.getElementById("status").textContent = text || ""; }
function fmtMs(v) {
  if (v === null || v === undefined) return "–";
  if (v >= 1000) return (v / 1000).toFixed(2) + " s";
  if (v >= 10) return Math.round(v) + " ms";
  return (Math.round(v * 10) / 10) + " ms";
}
function fmtPct(v) { return v === null || v === undefined ? "–" : (Math.round(v * 1000) / 10) + " %"; }
function fmtTime(t) { return t ? new Date(t).toLocaleString() : "–"; }
function badge(status) { return h("span", { class: "badge " + status, text: status }); }
function pretty(v) {
  if (v === null || v === undefined) return "null";
  return typeof v === "string" ? v : JSON.stringify(v, null, 2);
}

// ---------- API ----------
class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || ("HTTP " + status));
    this.status = status;
    this.code = body && body.error && body.error.code;
  }
}
async function api(path) {
  const key = sessionStorage.getItem(KEY);
  const res = await fetch(path, { headers: { "X-API-Key": key || "" } });
  let body = null;
  try { body = await res.json(); } catch (_) { body = null; }
  if (res.status === 401) {
    sessionStorage.removeItem(KEY);
    location.hash = "#/signin";
    throw new ApiError(401, body);
  }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

// ---------- routing ----------
function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/workflows";
  const [path, query] = raw.split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(query || "") };
}
function setHashParams(params) {
  const { parts } = parseHash();
  const q = params.toString();
  location.hash = "#/" + parts.join("/") + (q ? "?" + q : "");
}
let current = 0;
async function route() {
  const token = ++current;
  const signedIn = !!sessionStorage.getItem(KEY);
  document.getElementById("sign-out").hidden = !signedIn;
  const { parts, params } = parseHash();
  // Render off-page, then swap in only if no newer navigation started meanwhile.
  const m = h("div", {});
  say("Loading…");
  main().setAttribute("aria-busy", "true");
  try {
    if (!signedIn || parts[0] === "signin") signInPage(m);
    else if (parts[0] === "workflows" && parts[1]) await workflowPage(m, parts[1], params);
    else if (parts[0] === "runs" && parts[1]) await runPage(m, parts[1]);
    else await workflowsPage(m);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    m.append(h("div", { class: "error-box", role: "alert", "data-testid": "page-error" },
      h("strong", { text: "Could not load this page: " }), e.message));
  }
  if (token !== current) return;
  main().replaceChildren(m);
  main().removeAttribute("aria-busy");
  say("");
  const h1 = m.querySelector("h1");
  if (h1) { h1.setAttribute("tabindex", "-1"); h1.focus(); document.title = h1.textContent + " · Pipecat"; }
}

// ---------- pages ----------
function signInPage(m) {
  const input = h("input", { id: "api-key", type: "password", autocomplete: "off", required: true, "aria-describedby": "key-help" });
  const err = h("div", { role: "alert", "data-testid": "signin-error" });
  const form = h("form", { class: "signin", onsubmit: async (ev) => {
    ev.preventDefault();
    err.replaceChildren();
    sessionStorage.setItem(KEY, input.value.trim());
    try {
      const res = await fetch("/v1/workflows", { headers: { "X-API-Key": input.value.trim() } });
      if (!res.ok) throw new Error(res.status === 401 ? "That key was not accepted." : "HTTP " + res.status);
      if (location.hash === "#/workflows") route();
      else location.hash = "#/workflows";
    } catch (e) {
      sessionStorage.removeItem(KEY);
      err.append(h("p", { class: "error-box", text: e.message }));
    }
  } },
    h("label", { for: "api-key", text: "API key" }), input,
    h("p", { id: "key-help", class: "muted", text: "An account key (pc_live_…). It is kept in this tab only." }),
    h("button", { type: "submit", text: "Sign in" }), err);
  m.append(h("h1", { text: "Sign in" }), form);
}

async function workflowsPage(m) {
  const { workflows } = await api("/v1/workflows");
  m.append(h("h1", { text: "Workflows" }));
  if (!workflows.length) { m.append(h("p", { text: "No workflows yet." })); return; }
  m.append(h("table", { "data-testid": "workflows" },
    h("caption", { text: workflows.length + " workflow(s)" }),
    h("thead", {}, h("tr", {}, ["Name", "Published version", "Updated", "Id"].map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, workflows.map((w) => h("tr", {},
      h("td", {}, h("a", { href: "#/workflows/" + w.id, text: w.name })),
      h("td", { text: w.published_version ?? "not published" }),
      h("td", { text: fmtTime(w.updated_at) }),
      h("td", {}, h("code", { text: w.id })))))));
}

async function workflowPage(m, id, params) {
  const windowName = params.get("window") || "24h";
  const [wf, stats] = await Promise.all([
    api("/v1/workflows/" + encodeURIComponent(id)),
    api("/v1/workflows/" + encodeURIComponent(id) + "/stats?window=" + encodeURIComponent(windowName)),
  ]);
  m.append(h("p", {}, h("a", { href: "#/workflows", text: "← Workflows" })));
  m.append(h("h1", { text: wf.name }));

  const select = h("select", { id: "window", onchange: () => { params.set("window", select.value); setHashParams(params); } },
    [["1h", "Last hour"], ["24h", "Last 24 hours"], ["30d", "Last 30 days"], ["all", "All time"]]
      .map(([v, t]) => h("option", { value: v, selected: v === windowName, text: t })));
  m.append(h("div", { class: "filters" }, h("label", { for: "window" }, "Window", select)));

  const lat = stats.latency_ms || {};
  m.append(h("dl", { class: "cards", "data-testid": "stat-cards" },
    card("Runs", stats.runs, "runs"), card("Success rate", fmtPct(stats.success_rate), "success-rate"),
    card("Errors", stats.error, "errors"), card("p50", fmtMs(lat.p50), "p50"), card("p95", fmtMs(lat.p95), "p95"),
    card("p99", fmtMs(lat.p99), "p99"), card("Tokens", stats.tokens.total, "tokens")));
  if (Object.keys(stats.error_codes || {}).length) {
    m.append(h("p", {}, "Error codes: ", Object.entries(stats.error_codes).map(([c, n]) => h("code", { text: c + " × " + n + " " }))));
  }

  m.append(h("h2", { text: "Over time" }));
  m.append(h("div", { class: "charts" }, latencyChart(stats), successChart(stats)));

  const doc = wf.draft || {};
  m.append(h("h2", { text: "Graph" }), graph(doc, stats));
  m.append(h("h2", { text: "Nodes" }), partTable("Latency of each node", stats.nodes, "node_id", "Node", "nodes"));
  if (stats.tools.length) m.append(h("h2", { text: "Tools" }), partTable("Latency of each tool", stats.tools, "tool", "Tool", "tools"));

  m.append(h("h2", { text: "Runs" }));
  await runsSection(m, id, params);
}

function card(label, value, testid) {
  return h("div", { class: "card" }, h("dt", { text: label }), h("dd", { "data-testid": "stat-" + testid, text: value ?? "–" }));
}

function partTable(caption, rows, key, label, testid) {
  return h("table", { "data-testid": testid },
    h("caption", { text: caption }),
    h("thead", {}, h("tr", {}, [label, "Count", "Errors", "p50", "p95", "p99"].map((t, i) => h("th", { scope: "col", class: i ? "num" : null, text: t })))),
    h("tbody", {}, rows.map((r) => h("tr", {},
      h("th", { scope: "row", text: r[key] + (r.type ? " (" + r.type + ")" : "") }),
      h("td", { class: "num", text: r.count }), h("td", { class: "num", text: r.errors }),
      h("td", { class: "num", text: fmtMs(r.latency_ms && r.latency_ms.p50) }),
      h("td", { class: "num", text: fmtMs(r.latency_ms && r.latency_ms.p95) }),
      h("td", { class: "num", text: fmtMs(r.latency_ms && r.latency_ms.p99) })))));
}

// ---------- charts (inline SVG) ----------
const W = 520, H = 200, PAD = { l: 48, r: 10, t: 10, b: 28 };
function axes(svg, maxY, fmt, buckets) {
  const ih = H - PAD.t - PAD.b;
  for (let i = 0; i <= 4; i++) {
    const y = PAD.t + ih - (ih * i) / 4;
    svg.append(s("line", { x1: PAD.l, x2: W - PAD.r, y1: y, y2: y, stroke: "#e3e7ee" }));
    svg.append(s("text", { x: PAD.l - 6, y: y + 4, "text-anchor": "end" }, fmt((maxY * i) / 4)));
  }
  const n = buckets.length;
  [0, Math.floor(n / 2), n - 1].forEach((i, k) => {
    if (!buckets[i]) return;
    const x = PAD.l + ((W - PAD.l - PAD.r) * (i + 0.5)) / n;
    const d = new Date(buckets[i].start);
    const label = (buckets.length && (new Date(buckets[n - 1].start) - new Date(buckets[0].start)) > 2 * 86400e3)
      ? d.toLocaleDateString() : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    svg.append(s("text", { x, y: H - 8, "text-anchor": ["start", "middle", "end"][k] }, label));
  });
}
function latencyChart(stats) {
  const b = stats.buckets;
  const maxY = Math.max(1, ...b.map((x) => x.p99_ms || 0)) * 1.1;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img",
    "aria-label": "Latency percentiles per " + stats.bucket_seconds + " s bucket" });
  axes(svg, maxY, fmtMs, b);
  const iw = W - PAD.l - PAD.r, ih = H - PAD.t - PAD.b;
  for (const [k, color] of [["p50_ms", "var(--p50)"], ["p95_ms", "var(--p95)"], ["p99_ms", "var(--p99)"]]) {
    let d = "";
    b.forEach((x, i) => {
      if (x[k] === null || x[k] === undefined) return;
      const px = PAD.l + (iw * (i + 0.5)) / b.length, py = PAD.t + ih - (ih * x[k]) / maxY;
      d += (d ? " L" : "M") + px.toFixed(1) + " " + py.toFixed(1);
      svg.append(s("circle", { cx: px.toFixed(1), cy: py.toFixed(1), r: 2.5, fill: color }, s("title", {}, k.replace("_ms", "") + " " + fmtMs(x[k]))));
    });
    if (d) svg.append(s("path", { d, stroke: color, fill: "none", "stroke-width": 2 }));
  }
  return h("figure", { "data-testid": "latency-chart" }, svg,
    h("figcaption", {}, "Latency over time ",
      h("span", { class: "legend" }, ...[["p50", "--p50"], ["p95", "--p95"], ["p99", "--p99"]].map(([t, c]) => {
        const i = h("i", {}); i.style.background = `var(${c})`; return h("span", {}, i, t);
      }))),
    dataTable(b, "Latency per bucket", ["start", "runs", "p50_ms", "p95_ms", "p99_ms"]));
}
function successChart(stats) {
  const b = stats.buckets;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img",
    "aria-label": "Success rate and run count per " + stats.bucket_seconds + " s bucket" });
  axes(svg, 1, fmtPct, b);
  const iw = W - PAD.l - PAD.r, ih = H - PAD.t - PAD.b, bw = Math.max(1, iw / b.length - 2);
  b.forEach((x, i) => {
    if (!x.runs) return;
    const rate = x.success_rate ?? 0, bh = ih * rate;
    const px = PAD.l + (iw * i) / b.length + 1;
    svg.append(s("rect", { x: px.toFixed(1), y: (PAD.t + ih - bh).toFixed(1), width: bw.toFixed(1), height: bh.toFixed(1), fill: rate < 1 ? "var(--warn)" : "var(--ok)" },
      s("title", {}, `${fmtPct(rate)} of ${x.runs} run(s)`)));
  });
  return h("figure", { "data-testid": "success-chart" }, svg, h("figcaption", { text: "Success rate over time" }),
    dataTable(b, "Success per bucket", ["start", "runs", "success", "error", "success_rate"]));
}
function dataTable(rows, caption, cols) {
  const used = rows.filter((r) => r.runs);
  return h("details", {}, h("summary", { text: "Data" }),
    h("table", {}, h("caption", { text: caption }),
      h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col", text: c })))),
      h("tbody", {}, used.map((r) => h("tr", {}, cols.map((c) => h("td", {
        text: c === "start" ? fmtTime(r[c]) : c.endsWith("_ms") ? fmtMs(r[c]) : c === "success_rate" ? fmtPct(r[c]) : r[c] })))))));
}

// ---------- workflow graph ----------
function graph(doc, stats) {
  const nodes = Array.isArray(doc.nodes) ? doc.nodes : [];
  const edges = Array.isArray(doc.edges) ? doc.edges : [];
  if (!nodes.length) return h("p", { class: "muted", text: "The draft has no nodes." });
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const incoming = new Map(nodes.map((n) => [n.id, []]));
  edges.forEach((e) => incoming.has(e.to) && byId.has(e.from) && incoming.get(e.to).push(e.from));
  const depth = new Map();
  const visiting = new Set();
  const level = (id) => {
    if (depth.has(id)) return depth.get(id);
    if (visiting.has(id)) return 0;
    visiting.add(id);
    const d = Math.max(-1, ...incoming.get(id).map(level)) + 1;
    depth.set(id, d);
    return d;
  };
  nodes.forEach((n) => level(n.id));
  const columns = [];
  nodes.forEach((n) => { const d = depth.get(n.id); (columns[d] = columns[d] || []).push(n.id); });
  const nw = 150, nh = 52, gx = 60, gy = 22;
  const pos = new Map();
  columns.forEach((col, c) => col.forEach((id, r) => pos.set(id, { x: 10 + c * (nw + gx), y: 10 + r * (nh + gy) })));
  const width = 20 + columns.length * (nw + gx) - gx, height = 20 + Math.max(...columns.map((c) => c.length)) * (nh + gy) - gy;
  const lat = new Map((stats.nodes || []).map((n) => [n.node_id, n]));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width: Math.min(width, 1100), role: "img",
    "aria-label": "Workflow graph: " + nodes.length + " nodes; the typical (p50) latency is shown on each node" });
  svg.append(s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
    s("path", { d: "M0 0 L10 5 L0 10 z", fill: "#5b6475" }))));
  edges.forEach((e) => {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) return;
    const x1 = a.x + nw, y1 = a.y + nh / 2, x2 = b.x, y2 = b.y + nh / 2, mx = (x1 + x2) / 2;
    svg.append(s("path", { class: "edge", d: `M${x1} ${y1} C${mx} ${y1} ${mx} ${y2} ${x2} ${y2}`, "marker-end": "url(#arrow)" }));
  });
  const outputs = typeof doc.output === "string" ? [doc.output] : Object.values(doc.output || {});
  nodes.forEach((n) => {
    const p = pos.get(n.id), st = lat.get(n.id);
    const typical = st && st.latency_ms ? "p50 " + fmtMs(st.latency_ms.p50) : "no runs";
    svg.append(s("g", { class: "node" + (outputs.includes(n.id) ? " out" : ""), transform: `translate(${p.x} ${p.y})`, "data-node": n.id },
      s("title", {}, `${n.id} (${n.type}): ${typical}`),
      s("rect", { width: nw, height: nh, rx: 6 }),
      s("text", { class: "id", x: 8, y: 18 }, n.id.length > 20 ? n.id.slice(0, 19) + "…" : n.id),
      s("text", { x: 8, y: 34 }, n.type || ""),
      s("text", { x: 8, y: 47, "data-testid": "graph-latency" }, typical)));
  });
  return h("figure", { class: "graph", "data-testid": "graph" }, svg,
    h("figcaption", { text: "Each node shows its typical (median) latency over the selected window." }));
}

// ---------- runs table ----------
async function runsSection(m, workflowId, params) {
  const status = params.get("status") || "";
  const version = params.get("version") || "";
  const cursor = params.get("cursor") || "";
  const statusSel = h("select", { id: "f-status" },
    [["", "Any"], ["success", "Success"], ["error", "Error"], ["cancelled", "Cancelled"], ["running", "Running"]]
      .map(([v, t]) => h("option", { value: v, selected: v === status, text: t })));
  const versionIn = h("input", { id: "f-version", type: "number", min: 1, value: version, inputmode: "numeric" });
  const form = h("form", { class: "filters", "aria-label": "Filter runs", onsubmit: (ev) => {
    ev.preventDefault();
    for (const [k, v] of [["status", statusSel.value], ["version", versionIn.value]]) v ? params.set(k, v) : params.delete(k);
    params.delete("cursor"); params.delete("back");
    setHashParams(params);
  } },
    h("label", { for: "f-status" }, "Status", statusSel),
    h("label", { for: "f-version" }, "Version", versionIn),
    h("button", { type: "submit", text: "Apply" }));
  m.append(form);
  const q = new URLSearchParams({ limit: "20" });
  if (status) q.set("status", status);
  if (version) q.set("version", version);
  if (cursor) q.set("cursor", cursor);
  const page = await api("/v1/workflows/" + encodeURIComponent(workflowId) + "/runs?" + q);
  if (!page.runs.length) { m.append(h("p", { "data-testid": "no-runs", text: "No runs match." })); }
  else m.append(h("table", { "data-testid": "runs" },
    h("caption", { text: "Runs, newest first" }),
    h("thead", {}, h("tr", {}, ["Run", "Status", "Version", "Started", "Duration", "Error"].map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, page.runs.map((r) => h("tr", { "data-run": r.run_id },
      h("td", {}, h("a", { href: "#/runs/" + r.run_id, text: "…" + r.run_id.slice(-12), "aria-label": "Run " + r.run_id })),
      h("td", {}, badge(r.status)), h("td", { text: r.version }),
      h("td", { text: fmtTime(r.started_at) }), h("td", { class: "num", text: fmtMs(r.duration_ms) }),
      h("td", { text: r.error ? r.error.code : "" }))))));
  const back = (params.get("back") || "").split(",").filter(Boolean);
  const pager = h("div", { class: "pager" },
    h("button", { type: "button", disabled: !cursor, text: "Newer", onclick: () => {
      const prev = back.pop();
      prev && prev !== "-" ? params.set("cursor", prev) : params.delete("cursor");
      back.length ? params.set("back", back.join(",")) : params.delete("back");
      setHashParams(params);
    } }),
    h("button", { type: "button", disabled: !page.next_cursor, text: "Older", "data-testid": "older", onclick: () => {
      back.push(cursor || "-");
      params.set("back", back.join(","));
      params.set("cursor", page.next_cursor);
      setHashParams(params);
    } }));
  m.append(pager);
}

// ---------- one run ----------
async function runPage(m, id) {
  const run = await api("/v1/runs/" + encodeURIComponent(id));
  m.append(h("p", {}, h("a", { href: "#/workflows/" + run.workflow_id, text: "← Workflow" })));
  m.append(h("h1", {}, "Run ", h("code", { text: run.run_id })));
  m.append(h("dl", { class: "cards" },
    h("div", { class: "card" }, h("dt", { text: "Status" }), h("dd", { "data-testid": "run-status" }, badge(run.status))),
    h("div", { class: "card" }, h("dt", { text: "Version" }), h("dd", { text: run.version })),
    h("div", { class: "card" }, h("dt", { text: "Duration" }), h("dd", { "data-testid": "run-duration", text: fmtMs(run.duration_ms) })),
    h("div", { class: "card" }, h("dt", { text: "Started" }), h("dd", { text: fmtTime(run.started_at) })),
    h("div", { class: "card" }, h("dt", { text: "Tokens" }), h("dd", { text: run.usage ? (run.usage.input_tokens || 0) + (run.usage.output_tokens || 0) : 0 }))));
  if (run.error) {
    m.append(h("div", { class: "error-box", role: "alert", "data-testid": "run-error" },
      h("strong", { text: "Error " }), h("code", { "data-testid": "run-error-code", text: run.error.code }),
      run.error.node_id ? h("span", {}, " in node ", h("code", { "data-testid": "run-error-node", text: run.error.node_id })) : null,
      h("p", { "data-testid": "run-error-message", text: run.error.message })));
  }
  m.append(h("h2", { text: "Timeline" }), waterfall(run));
  m.append(h("h2", { text: "Input" }), h("pre", { "data-testid": "run-input", text: pretty(run.input) }));
  m.append(h("h2", { text: "Output" }), h("pre", { "data-testid": "run-output", text: pretty(run.output) }));
  const calls = run.tool_calls || [];
  m.append(h("h2", { text: "Tool calls" }));
  if (!calls.length) m.append(h("p", { class: "muted", text: "No tool calls." }));
  else m.append(h("table", { "data-testid": "tool-calls" },
    h("caption", { text: calls.length + " tool call(s), in order" }),
    h("thead", {}, h("tr", {}, ["Node", "Tool", "Input", "Result or error", "Duration"].map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, calls.map((c) => h("tr", {},
      h("td", { text: c.node_id }), h("td", {}, h("code", { text: (c.plugin ? c.plugin + "." : "") + c.tool })),
      h("td", {}, h("pre", { text: pretty(c.input) })),
      h("td", {}, c.error ? h("span", { class: "badge error", text: c.error.code + ": " + c.error.message }) : h("pre", { text: c.result ?? "" })),
      h("td", { class: "num", text: fmtMs(c.duration_ms) }))))));
  if (Array.isArray(run.logs) && run.logs.length) {
    m.append(h("h2", { text: "Plugin logs" }), h("pre", { "data-testid": "run-logs", text: run.logs.map(pretty).join("\n") }));
  }
}

function waterfall(run) {
  const nodes = (run.nodes || []).slice().sort((a, b) => a.offset_ms - b.offset_ms);
  if (!nodes.length) return h("p", { class: "muted", text: "No node timings." });
  const total = Math.max(run.duration_ms || 0, ...nodes.map((n) => (n.offset_ms || 0) + (n.duration_ms || 0)), 0.001);
  return h("table", { class: "waterfall", "data-testid": "waterfall" },
    h("caption", { text: "Each node's start offset and duration within the run (" + fmtMs(total) + ")" }),
    h("thead", {}, h("tr", {}, ["Node", "Type", "Status", "Start", "Duration", "Timeline"].map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, nodes.map((n) => {
      const bar = h("div", { class: "bar " + n.status, role: "presentation" });
      bar.style.marginLeft = ((100 * (n.offset_ms || 0)) / total).toFixed(2) + "%";
      bar.style.width = ((100 * (n.duration_ms || 0)) / total).toFixed(2) + "%";
      return h("tr", { "data-node": n.node_id },
        h("th", { scope: "row", text: n.node_id }), h("td", { text: n.type }), h("td", {}, badge(n.status)),
        h("td", { class: "num", "data-testid": "offset", text: fmtMs(n.offset_ms) }),
        h("td", { class: "num", "data-testid": "duration", text: fmtMs(n.duration_ms) }),
        h("td", { class: "track-cell" }, h("div", { class: "track" }, bar),
          n.error ? h("div", { class: "muted", text: n.error.code + ": " + n.error.message }) : null));
    })));
}

// ---------- start ----------
window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    location.hash = "#/signin";
  });
  route();
});
