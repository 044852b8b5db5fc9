// The operators' page of the central hub: the maintenance queue (work orders,
// most urgent first), one work order's evidence, plots and audit trail with
// the actions an operator may take on it, the assets' health, the crews'
// schedule, the gateways and the model rollouts (which engineers may
// pause, resume or roll back). It talks only to the hub's own /api (see the
// contract), with the operator's bearer token.
//
// It is self-contained on purpose (plain JavaScript, no framework, no CDN,
// no web fonts, plots drawn as inline SVG here): a control room is often
// offline, and the hub serves these three files from its own binary.
"use strict";

// ---------------------------------------------------------------- helpers

const $ = (sel, root = document) => root.querySelector(sel);
const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" };
/** Every server string goes through this before it is put into HTML. */
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ESC[c]);
const num = (x, digits = 2) => (x == null || !Number.isFinite(Number(x)) ? "–" : Number(x).toFixed(digits));
const sig = x => (x == null || !Number.isFinite(Number(x)) ? "–" : Number(x).toPrecision(3));
const words = s => esc(String(s ?? "").replace(/_/g, " "));
/** "2026-11-24T08:15:02Z" -> "2026-11-24 08:15" (UTC), escaped. */
const when = s => esc(String(s ?? "").replace("T", " ").replace(/(:\d\d)?(\.\d+)?(Z|[+-]00:00)$/, ""));
const whenMs = ms => (ms == null ? "" : when(new Date(ms).toISOString()));
const priority = wo => Math.min(4, Math.max(1, Math.round(Number(wo.priority)) || 4));
const badge = p => `<span class="badge p${p}">P${p}</span>`;
const healthColour = h => (h >= 80 ? "var(--normal)" : h >= 50 ? "var(--warning)" : "var(--alarm)");
const bar = (pct, colour) => `<span class="bar"><span style="width:${Math.max(0, Math.min(100, Number(pct) || 0))}%;background:${colour}"></span></span>`;

function showError(id, message) {
  const el = document.getElementById(id);
  el.textContent = message || "";
  el.hidden = !message;
}

// ------------------------------------------------------------ token, API

const TOKEN_KEY = "pdm-hub-token";
let token = null;
let me = null;

/** A token passed as `#token=...`, removed from the address bar at once. */
function tokenFromHash() {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, "", location.pathname + location.search);
  try { return decodeURIComponent(m[1]); } catch { return m[1]; }
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/** Calls the hub with the token; 4xx/5xx become ApiError with the hub's words. */
async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, `hub unreachable (${e.message})`);
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  const message = (data && data.error) || `${method} ${path}: ${res.status} ${res.statusText}`;
  if (res.status === 401) {
    signOut(`Not signed in: ${message}`);
  }
  if (!res.ok) throw new ApiError(res.status, message);
  return data;
}

function showSignIn(message) {
  $("#app").hidden = true;
  $("#tabs").hidden = true;
  $("#sign-out").hidden = true;
  $("#me").textContent = "";
  $("#status").textContent = "not signed in";
  $("#signin").hidden = false;
  showError("signin-error", message);
  $("#token-input").focus();
}

function signOut(message) {
  token = null;
  me = null;
  sessionStorage.removeItem(TOKEN_KEY);
  closeDetail();
  closeRollout();
  showSignIn(message);
}

/** Checks a token with GET /api/me; on success shows the page. */
async function start(candidate) {
  token = candidate;
  try {
    me = await api("api/me");
  } catch (e) {
    if (e.status !== 401) showSignIn(`Cannot check the token: ${e.message}`);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("#token-input").value = "";
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#tabs").hidden = false;
  $("#sign-out").hidden = false;
  $("#me").textContent = `${me.name} (${me.role})`;
  crews = null;
  loadAssetSites();
  refresh();
}

// ------------------------------------------------------------ refreshing

const REFRESH_MS = 5000;
let view = "queue";
let refreshing = false;

function switchView(name) {
  view = name;
  document.querySelectorAll(".tab").forEach(t => t.classList.toggle("active", t.dataset.view === name));
  document.querySelectorAll(".view").forEach(v => { v.hidden = v.id !== `view-${name}`; });
  refresh();
}

/** Reloads what is on screen; forms and the open detail are kept. */
async function refresh() {
  if (!token || refreshing) return;
  refreshing = true;
  try {
    const jobs = [loadStatus()];
    if (view === "queue") {
      jobs.push(loadQueue());
      if (selectedId) jobs.push(loadDetail(selectedId));
    }
    if (view === "assets") jobs.push(loadAssets());
    if (view === "schedule") jobs.push(loadSchedule());
    if (view === "gateways") jobs.push(loadGateways());
    if (view === "rollouts") jobs.push(loadRollouts());
    await Promise.all(jobs);
  } finally {
    refreshing = false;
  }
}

async function loadStatus() {
  const parts = [];
  try {
    const s = await api("api/stats");
    parts.push(`broker ${s.broker_connected ? "connected" : "DISCONNECTED"}`, `${s.stored} messages stored`, `${s.malformed} malformed dropped`);
  } catch (e) {
    if (e.status === 0) { $("#status").textContent = e.message; return; }
  }
  parts.push(`updated ${new Date().toLocaleTimeString()}`);
  $("#status").textContent = parts.join(" · ");
}

// ----------------------------------------------------------------- queue

const STATUS_FILTERS = { active: "open,acknowledged,scheduled,in_progress", all: "", closed: "done,dismissed" };
const sites = new Set();
let queueSeq = 0;

function addSites(list) {
  const before = sites.size;
  list.forEach(s => s && sites.add(s));
  if (sites.size === before) return;
  const select = $("#filter-site");
  const chosen = select.value;
  select.innerHTML = `<option value="">all sites</option>` +
    [...sites].sort().map(s => `<option value="${esc(s)}">${esc(s)}</option>`).join("");
  select.value = chosen;
}

async function loadAssetSites() {
  try { addSites((await api("api/assets")).map(a => a.site)); } catch { /* the queue shows its own errors */ }
}

async function loadQueue() {
  const seq = ++queueSeq;
  const params = new URLSearchParams();
  const status = STATUS_FILTERS[$("#filter-status").value];
  if (status) params.set("status", status);
  if ($("#filter-site").value) params.set("site", $("#filter-site").value);
  const query = params.toString();
  try {
    const orders = await api(`api/work-orders${query ? `?${query}` : ""}`);
    if (seq !== queueSeq) return;
    addSites(orders.map(o => o.site));
    renderQueue(orders);
    showError("queue-error");
  } catch (e) {
    if (seq === queueSeq) showError("queue-error", `Work orders: ${e.message}`);
  }
}

function renderQueue(orders) {
  const body = $("#queue tbody");
  body.innerHTML = orders.length ? orders.map(queueRow).join("")
    : `<tr><td colspan="7" class="empty">No work orders here: every watched asset looks healthy.</td></tr>`;
}

function queueRow(wo) {
  const place = [wo.site, wo.location].filter(Boolean).map(esc).join(" · ");
  const selected = wo.id === selectedId ? " selected" : "";
  return `<tr class="wo${selected}" data-wo="${esc(wo.id)}">
    <td>${badge(priority(wo))}<br><span class="muted">${esc(wo.id)}</span></td>
    <td class="num">${num(wo.risk, 1)}</td>
    <td><b>${esc(wo.asset_id)}</b> <span class="muted">${esc(wo.asset_kind)}</span><br><span class="muted">${place}</span></td>
    <td>${words(wo.kind)}</td>
    <td class="status-${esc(wo.status)}">${words(wo.status)}</td>
    <td class="sla-${esc(wo.sla_state)}">${when(wo.due_at)}<br><span class="muted">${words(wo.sla_state)}</span></td>
    <td>${esc(wo.crew ?? "")}${wo.scheduled_day ? `<br>${esc(wo.scheduled_day)}` : ""}</td>
  </tr>`;
}

// ------------------------------------------------------- work-order detail

let selectedId = null;
let detail = null;
let detailGen = 0; // bumped by every action: older answers are dropped
let actionsKey = null; // the actions are rebuilt only when this changes

function openDetail(id) {
  selectedId = id;
  detail = null;
  actionsKey = null;
  detailGen++;
  showError("wo-error");
  $("#wo-detail-id").textContent = id;
  for (const part of ["summary", "actions", "plot-score", "plot-health", "features", "evidence", "audit"]) {
    $(`#wo-${part}`).innerHTML = "";
  }
  $("#wo-summary").innerHTML = `<p class="muted">loading&hellip;</p>`;
  $("#wo-detail").hidden = false;
  $(".queue-layout").classList.add("with-detail");
  document.querySelectorAll("tr.wo").forEach(tr => tr.classList.toggle("selected", tr.dataset.wo === id));
  loadDetail(id);
}

function closeDetail() {
  selectedId = null;
  detail = null;
  detailGen++;
  $("#wo-detail").hidden = true;
  $(".queue-layout").classList.remove("with-detail");
  document.querySelectorAll("tr.wo.selected").forEach(tr => tr.classList.remove("selected"));
}

async function loadDetail(id) {
  const gen = detailGen;
  try {
    const wo = await api(`api/work-orders/${encodeURIComponent(id)}`);
    if (gen !== detailGen || id !== selectedId) return;
    if (detail && detail.id === wo.id && wo.updated_at_ms < detail.updated_at_ms) return;
    renderDetail(wo);
  } catch (e) {
    if (gen === detailGen && id === selectedId) showError("wo-error", `Work order ${id}: ${e.message}`);
  }
}

function renderDetail(wo) {
  if (!wo.audit && detail && detail.id === wo.id) wo.audit = detail.audit; // an action's answer has none
  detail = wo;
  $("#wo-detail").dataset.status = wo.status;
  $("#wo-detail-id").textContent = wo.id;
  $("#wo-summary").innerHTML = summaryHtml(wo);
  $("#wo-plot-score").innerHTML = scorePlot(wo);
  $("#wo-features").innerHTML = featuresHtml(wo);
  $("#wo-evidence").innerHTML = evidenceHtml(wo);
  $("#wo-audit").innerHTML = auditHtml(wo.audit || []);
  renderHealth(wo);
  const key = [wo.id, wo.status, wo.crew, wo.scheduled_day, wo.required_skill].join("|");
  if (key !== actionsKey) {
    actionsKey = key;
    renderActions(wo);
  }
}

function summaryHtml(wo) {
  const p = priority(wo);
  const fact = (name, value) => (value ? `<dt>${name}</dt><dd>${value}</dd>` : "");
  const model = wo.model ? `${esc(wo.model.id)} ${esc(wo.model.version)}` : "";
  const ratio = wo.alarm_threshold ? ` (${num(wo.peak_score / wo.alarm_threshold, 1)} × the alarm level)` : "";
  return `<p class="reason">${esc(wo.reason)}</p><dl class="facts">
    ${fact("Asset", `<b>${esc(wo.asset_id)}</b> ${esc(wo.asset_kind)} · ${esc(wo.site)}${wo.location ? ` · ${esc(wo.location)}` : ""}`)}
    ${fact("Kind, status", `${badge(p)} ${words(wo.kind)} · <b class="status-${esc(wo.status)}">${words(wo.status)}</b>`)}
    ${fact("Risk", `${num(wo.risk, 1)} <span class="muted">criticality ${esc(wo.criticality)} · severity ${num(wo.severity, 1)} · persistence ${num(wo.persistence, 2)}</span>`)}
    ${fact("Due", `<span class="sla-${esc(wo.sla_state)}">${when(wo.due_at)} · ${words(wo.sla_state)}</span>`)}
    ${fact("Model", model)}
    ${fact("Peak score", `${sig(wo.peak_score)} vs alarm threshold ${sig(wo.alarm_threshold)}${ratio}`)}
    ${fact("Events", esc(wo.event_count))}
    ${fact("Needs", `${words(wo.required_skill)} crew`)}
    ${fact("Crew, day", wo.crew || wo.scheduled_day ? `${esc(wo.crew ?? "unassigned")} · ${esc(wo.scheduled_day ?? "no day")}` : "")}
    ${fact("Findings", esc(wo.findings ?? ""))}
    ${fact("Dismissed", esc(wo.dismissal_reason ?? ""))}
    ${fact("Resolution", esc(wo.resolution ?? ""))}
    ${fact("Opened", `${when(wo.created_at)} <span class="muted">updated ${when(wo.updated_at)}</span>`)}
  </dl>`;
}

function scorePlot(wo) {
  const points = (wo.evidence || []).filter(e => Number.isFinite(e.score)).map(e => [e.window_end_ms, e.score]);
  return linePlot({ cls: "plot-score", points, yMin: 0, threshold: wo.alarm_threshold, empty: "No scored evidence." });
}

/** The asset's health history, fetched at most every 30 s per asset. */
async function renderHealth(wo) {
  const box = $("#wo-plot-health");
  const known = cachedHistory(wo.site, wo.asset_id);
  if (known || !box.firstChild) {
    box.innerHTML = linePlot({ cls: "plot-health", points: historyPoints(known), yMin: 0, yMax: 100, empty: known ? "No health history yet." : "loading…" });
  }
  try {
    const fresh = await fetchHistory(wo.site, wo.asset_id);
    if (fresh !== known && detail && detail.id === wo.id) {
      box.innerHTML = linePlot({ cls: "plot-health", points: historyPoints(fresh), yMin: 0, yMax: 100, empty: "No health history yet." });
    }
  } catch (e) {
    if (detail && detail.id === wo.id) box.innerHTML = `<p class="error">Health history: ${esc(e.message)}</p>`;
  }
}

function featuresHtml(wo) {
  const evidence = wo.evidence || [];
  const newest = evidence[evidence.length - 1];
  const features = (newest && newest.top_features) || [];
  if (!features.length) return `<p class="empty">The newest evidence names no features.</p>`;
  return features.map(f => `<div class="feature"><span><b>${esc(f.name)}</b></span>
    <span>${bar(100 * f.share, "var(--warning)")} <span class="muted">${sig(f.value)} (normally ${sig(f.expected)})</span></span>
    <span class="num">${num(100 * f.share, 0)} %</span></div>`).join("");
}

function evidenceHtml(wo) {
  const rows = (wo.evidence || []).slice().reverse().map(e => {
    const features = (e.top_features || []).map(f =>
      `${esc(f.name)} ${sig(f.value)} <span class="muted">(exp. ${sig(f.expected)}, ${num(100 * f.share, 0)} %)</span>`).join("<br>");
    return `<tr><td>${whenMs(e.window_end_ms)}</td><td><span class="state ${esc(e.state)}">${words(e.state)}</span></td>
      <td class="num">${sig(e.score)}</td><td>${features}${e.detail ? `<br>${esc(e.detail)}` : ""}</td></tr>`;
  });
  if (!rows.length) return `<p class="empty">No evidence.</p>`;
  return `<table><thead><tr><th>Time (UTC)</th><th>State</th><th class="num">Score</th><th>Top features: value (expected, share)</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function auditHtml(audit) {
  if (!audit.length) return `<p class="empty">No audit entries.</p>`;
  const rows = audit.map(a => `<tr><td>${when(a.at)}</td><td>${esc(a.who)} <span class="muted">${esc(a.role)}</span></td>
    <td>${words(a.action)}</td><td>${a.from || a.to ? `${words(a.from ?? "–")} → ${words(a.to ?? "–")}` : ""}</td><td>${esc(a.note ?? "")}</td></tr>`);
  return `<table><thead><tr><th>When (UTC)</th><th>Who</th><th>Action</th><th>From → to</th><th>Note</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

// ---------------------------------------------------------------- actions

/** What may be done from each status (see the contract). */
const ACTIONS = {
  open: ["acknowledge", "schedule", "dismiss"],
  acknowledged: ["schedule", "start", "dismiss"],
  scheduled: ["start", "unschedule", "schedule", "dismiss"],
  in_progress: ["done", "dismiss"],
};
let crews = null; // a promise of GET /api/crews

function renderActions(wo) {
  const box = $("#wo-actions");
  const can = new Set(ACTIONS[wo.status] || []);
  if (!can.size) { box.innerHTML = `<p class="muted">This work order is ${words(wo.status)}: nothing more to do.</p>`; return; }
  const parts = [];
  const buttons = [];
  if (can.has("acknowledge")) buttons.push(`<button type="button" id="act-acknowledge">Acknowledge</button>`);
  if (can.has("start")) buttons.push(`<button type="button" id="act-start">Start work</button>`);
  if (can.has("unschedule")) buttons.push(`<button type="button" id="act-unschedule">Unschedule</button>`);
  if (buttons.length) parts.push(`<div class="row">${buttons.join("")}</div>`);
  if (can.has("schedule")) {
    parts.push(`<div class="row"><label>Crew <select id="schedule-crew"><option value="">loading…</option></select></label>
      <label>Day <input type="date" id="schedule-day"></label>
      <button type="button" id="act-schedule">${wo.status === "scheduled" ? "Re-schedule" : "Schedule"}</button></div>`);
  }
  if (can.has("done")) {
    parts.push(`<div><label for="done-findings">Findings</label><textarea id="done-findings" placeholder="What was found and done"></textarea>
      <button type="button" id="act-done">Close as done</button></div>`);
  }
  if (can.has("dismiss")) {
    parts.push(`<div><label for="dismiss-reason">Reason to dismiss</label><textarea id="dismiss-reason" placeholder="Why no work is needed"></textarea>
      <button type="button" id="act-dismiss">Dismiss</button></div>`);
  }
  box.innerHTML = `<div class="actions">${parts.join("")}</div>`;
  wireActions(wo);
}

function wireActions(wo) {
  const on = (id, handler) => { const b = document.getElementById(id); if (b) b.onclick = handler; };
  on("act-acknowledge", () => act(wo.id, "transition", { to: "acknowledged" }));
  on("act-start", () => act(wo.id, "transition", { to: "in_progress" }));
  on("act-unschedule", () => act(wo.id, "transition", { to: "acknowledged", note: "unscheduled" }));
  on("act-done", () => act(wo.id, "transition", { to: "done", findings: $("#done-findings").value.trim() }));
  on("act-dismiss", () => act(wo.id, "transition", { to: "dismissed", reason: $("#dismiss-reason").value.trim() }));
  on("act-schedule", () => act(wo.id, "schedule", { crew: $("#schedule-crew").value, day: $("#schedule-day").value }));
  if ($("#schedule-crew")) fillScheduleForm(wo);
}

async function fillScheduleForm(wo) {
  const select = $("#schedule-crew");
  const day = $("#schedule-day");
  let all;
  try {
    crews = crews || api("api/crews");
    all = await crews;
  } catch (e) {
    crews = null;
    showError("wo-error", `Crews: ${e.message}`);
    return;
  }
  if (select !== $("#schedule-crew")) return; // the form was rebuilt meanwhile
  const able = all.filter(c => (c.skills || []).includes(wo.required_skill));
  select.innerHTML = able.length
    ? able.map(c => `<option value="${esc(c.id)}">${esc(c.name)} (${esc(c.id)})</option>`).join("")
    : `<option value="">no crew has the skill ${esc(wo.required_skill)}</option>`;
  if (wo.crew && able.some(c => c.id === wo.crew)) select.value = wo.crew;
  const defaultDay = () => nextWorkingDay(able.find(c => c.id === select.value));
  day.value = wo.scheduled_day || defaultDay();
  day.dataset.auto = wo.scheduled_day ? "0" : "1";
  day.oninput = () => { day.dataset.auto = "0"; };
  select.onchange = () => { if (day.dataset.auto === "1") day.value = defaultDay(); };
}

const WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const isoDay = d => d.toISOString().slice(0, 10);
const weekday = day => WEEKDAYS[new Date(`${day}T00:00:00Z`).getUTCDay()];
const works = (crew, day) => (crew.working_days || []).includes(weekday(day)) && !(crew.holidays || []).includes(day);

/** The first day after today (UTC) the crew works; Monday to Friday without one. */
function nextWorkingDay(crew) {
  const d = new Date();
  for (let i = 1; i <= 366; i++) {
    d.setUTCDate(d.getUTCDate() + 1);
    const day = isoDay(d);
    if (crew ? works(crew, day) : !["sat", "sun"].includes(weekday(day))) return day;
  }
  return "";
}

/** POSTs an action; the hub's answer (or its error) is shown at once. */
async function act(id, path, body) {
  detailGen++;
  showError("wo-error");
  const buttons = [...document.querySelectorAll("#wo-actions :is(button, select, input, textarea)")];
  buttons.forEach(b => { b.disabled = true; });
  try {
    const wo = await api(`api/work-orders/${encodeURIComponent(id)}/${path}`, { method: "POST", body });
    detailGen++; // drop any load that started while this was in flight
    if (selectedId !== id) return;
    actionsKey = null;
    renderDetail(wo);
    await Promise.all([loadDetail(id), loadQueue()]);
  } catch (e) {
    showError("wo-error", e.message);
    buttons.forEach(b => { b.disabled = false; });
  }
}

// ---------------------------------------------------------------- assets

const HISTORY_EVERY_MS = 30000;
const HISTORY_SPAN_MS = 6 * 3600 * 1000;
const histories = new Map(); // "site/id" -> { at, data, pending }

function cachedHistory(site, id) {
  const h = histories.get(`${site}/${id}`);
  return h && h.data;
}

/** GET .../history, at most once per 30 s per asset. */
function fetchHistory(site, id) {
  const key = `${site}/${id}`;
  const h = histories.get(key) || {};
  if (h.pending) return h.pending;
  if (h.data && Date.now() - h.at < HISTORY_EVERY_MS) return Promise.resolve(h.data);
  const since = Date.now() - HISTORY_SPAN_MS;
  h.pending = api(`api/assets/${encodeURIComponent(site)}/${encodeURIComponent(id)}/history?since_ms=${since}`)
    .then(data => { Object.assign(h, { data, at: Date.now() }); return data; })
    .finally(() => { h.pending = null; });
  histories.set(key, h);
  return h.pending;
}

const historyPoints = h => (h || []).filter(p => Number.isFinite(p.health)).map(p => [p.at_ms, p.health]);

async function loadAssets() {
  try {
    const assets = await api("api/assets");
    addSites(assets.map(a => a.site));
    renderAssets(assets);
    showError("assets-error");
  } catch (e) {
    showError("assets-error", `Assets: ${e.message}`);
  }
}

function renderAssets(assets) {
  const body = $("#assets tbody");
  const sorted = assets.slice().sort((a, b) => a.health - b.health);
  if (!sorted.length) { body.innerHTML = `<tr><td colspan="10" class="empty">No gateway has reported yet.</td></tr>`; return; }
  body.innerHTML = sorted.map(assetRow).join("");
  body.querySelectorAll("td.spark").forEach(cell => {
    fetchHistory(cell.dataset.site, cell.dataset.asset)
      .then(h => { if (cell.isConnected) cell.innerHTML = sparkline(h); })
      .catch(e => { if (cell.isConnected) cell.innerHTML = `<span class="error">${esc(e.message)}</span>`; });
  });
}

const sparkline = h => linePlot({ cls: "spark", points: historyPoints(h), yMin: 0, yMax: 100, width: 120, height: 28, bare: true, empty: "" });

function assetRow(a) {
  const vib = a.velocity_rms_mm_s == null ? "" : `${num(a.velocity_rms_mm_s, 2)} mm/s${a.iso_zone ? `, zone ${esc(a.iso_zone)}` : ""}`;
  const orders = (a.open_work_orders || []).map(esc).join(", ");
  return `<tr><td><b>${esc(a.id)}</b> <span class="muted">${esc(a.kind)}</span>${a.registered === false ? `<br><span class="muted">not registered</span>` : ""}</td>
    <td>${bar(a.health, healthColour(a.health))} ${num(a.health, 0)}</td>
    <td class="spark" data-site="${esc(a.site)}" data-asset="${esc(a.id)}">${sparkline(cachedHistory(a.site, a.id))}</td>
    <td><span class="state ${esc(a.state)}">${words(a.state)}</span></td><td>${vib}</td>
    <td>${esc(a.site)}${a.location ? `<br><span class="muted">${esc(a.location)}</span>` : ""}</td>
    <td class="num">${esc(a.criticality)}</td><td>${esc(a.gateway)}</td>
    <td>${a.model ? `${esc(a.model.id)} ${esc(a.model.version)}` : ""}${commissioning(a.commissioning)}</td><td>${orders}</td></tr>`;
}

/** Where the asset's own baseline stands (the models learn one first). */
function commissioning(c) {
  if (!c) return "";
  if (c.phase === "baseline") return `<br><span class="muted">learning baseline ${esc(c.windows)}/${esc(c.windows_needed)}</span>`;
  return c.completed_at_ms ? `<br><span class="muted">commissioned ${whenMs(c.completed_at_ms)}</span>` : "";
}

// -------------------------------------------------------------- schedule

async function loadSchedule() {
  try {
    const s = await api("api/schedule?days=14");
    $("#schedule-grid").innerHTML = scheduleGrid(s);
    $("#schedule-late").innerHTML = lateHtml(s.late || []);
    showError("schedule-error");
  } catch (e) {
    showError("schedule-error", `Schedule: ${e.message}`);
  }
}

function scheduleGrid(s) {
  const days = s.days || [];
  if (!(s.crews || []).length) return `<p class="empty">No crews are configured.</p>`;
  const head = days.map(d => {
    const weekend = ["sat", "sun"].includes(weekday(d));
    return `<th class="${weekend ? "off" : ""}">${esc(weekday(d))}<br>${esc(d.slice(5))}</th>`;
  }).join("");
  const rows = s.crews.map(c => {
    const cells = days.map(d => {
      const booked = (s.bookings || []).filter(b => b.crew === c.id && b.day === d);
      const items = booked.map(b => `<span class="booking${b.late ? " late" : ""}" data-open="${esc(b.work_order)}" title="${esc(b.status)}, due ${when(b.due_at)}">
        ${badge(priority(b))} ${esc(b.work_order)}<br>${esc(b.asset_id)} · ${esc(b.site)}</span>`).join("");
      const off = !works(c, d);
      const load = booked.length ? `<span class="muted">${booked.length}/${esc(c.daily_capacity)}</span>` : "";
      return `<td class="${off ? "off" : ""}">${items}${off && !booked.length ? "off" : load}</td>`;
    }).join("");
    return `<tr><th>${esc(c.name)}<br><span class="muted">${esc(c.id)} · ${(c.skills || []).map(esc).join(", ")} · ${esc(c.daily_capacity)}/day</span></th>${cells}</tr>`;
  }).join("");
  return `<table class="schedule"><thead><tr><th>Crew</th>${head}</tr></thead><tbody>${rows}</tbody></table>`;
}

function lateHtml(late) {
  if (!late.length) return `<p class="empty">Nothing is planned past its due date.</p>`;
  const rows = late.map(l => `<tr><td><span class="booking late" data-open="${esc(l.work_order)}">${esc(l.work_order)}</span></td>
    <td>${when(l.due_at)}</td><td>${esc(l.planned_day ?? "not planned")}</td><td>${esc(l.reason)}</td></tr>`);
  return `<table><thead><tr><th>Work order</th><th>Due (UTC)</th><th>Planned day</th><th>Why late</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

async function planSchedule() {
  const button = $("#plan-schedule");
  button.disabled = true;
  showError("schedule-error");
  try {
    const r = await api("api/schedule/plan", { method: "POST", body: {} });
    $("#plan-result").textContent = `Planned ${(r.planned || []).length} work orders; ${(r.late || []).length} late.`;
    await loadSchedule();
  } catch (e) {
    showError("schedule-error", `Planning: ${e.message}`);
  } finally {
    button.disabled = false;
  }
}

// -------------------------------------------------------------- gateways

async function loadGateways() {
  try {
    const gateways = await api("api/gateways");
    $("#gateways tbody").innerHTML = gateways.length ? gateways.map(gatewayRow).join("")
      : `<tr><td colspan="7" class="empty">No gateway has reported yet.</td></tr>`;
    showError("gateways-error");
  } catch (e) {
    showError("gateways-error", `Gateways: ${e.message}`);
  }
}

/** Whether a gateway is there, and what its outbox holds and had to drop. */
function gatewayRow(g) {
  const o = g.outbox;
  const c = g.counters;
  const held = o ? `${o.records} held (${o.events} events, ${o.awaiting_receipt} awaiting the hub's receipt)` : "";
  const dropped = o ? [["heartbeats", o.dropped_telemetry], ["events", o.dropped_events], ["alarms", o.dropped_alarms],
    ["expired", o.expired], ["corrupt", o.corrupt], ["write failures", o.write_failures]]
    .filter(([, n]) => n > 0).map(([what, n]) => `${n} ${what}`).join(", ") || "none" : "";
  const windows = c ? `${c.windows_scored} / ${c.windows_dropped} / ${c.windows_rejected}` : "";
  return `<tr><td>${esc(g.id)}</td><td>${esc(g.site)}</td>
    <td><span class="state ${g.online ? "normal" : "offline"}">${g.online ? "online" : "offline"}</span>${g.offline_cause ? ` <span class="muted">(${esc(g.offline_cause)})</span>` : ""}</td>
    <td>${when(g.last_seen)}</td><td>${esc(windows)}</td><td>${esc(held)}</td><td>${esc(dropped)}</td></tr>`;
}

// -------------------------------------------------------------- rollouts

/** The gateway phases in the order a gateway goes through them. */
const PHASES = ["active", "shadow", "verifying", "downloading", "offered", "waiting", "failed", "rolling_back", "rolled_back"];
const phaseClass = p => (PHASES.includes(p) ? `ph-${p}` : "ph-other");
/** What an engineer may do from each rollout state (see the contract). */
const ROLLOUT_ACTIONS = {
  pause: ["running"],
  resume: ["paused", "halted"],
  rollback: ["running", "paused", "halted", "completed"],
};
const pct = x => (x == null || !Number.isFinite(Number(x)) ? "–" : `${(100 * Number(x)).toFixed(1)} %`);
const bytes = n => {
  if (n == null || !Number.isFinite(Number(n))) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
};
const gatewayName = g => `${g?.site ?? ""}/${g?.gateway ?? ""}`;

let selectedRollout = null;
let shownRollout = null;
let rolloutGen = 0; // bumped by every action: older answers are dropped
let rolloutBusy = false;

async function loadRollouts() {
  const gen = rolloutGen;
  try {
    const rollouts = await api("api/rollouts");
    if (gen !== rolloutGen) return;
    renderRollouts(rollouts || []);
    showError("rollouts-error");
    const open = selectedRollout && (rollouts || []).find(r => r.id === selectedRollout);
    if (open) renderRolloutDetail(open);
  } catch (e) {
    if (gen === rolloutGen) showError("rollouts-error", `Rollouts: ${e.message}`);
  }
}

function renderRollouts(rollouts) {
  $("#rollouts-empty").hidden = rollouts.length > 0;
  $("#rollouts").hidden = rollouts.length === 0;
  $("#rollouts tbody").innerHTML = rollouts.map(rolloutRow).join("");
}

/** "running, wave 2/4" and the halt reason, as HTML. */
function rolloutState(r) {
  const s = r.state || {};
  const waves = (r.wave_sizes || []).length || (r.spec?.waves || []).length;
  const wave = Number.isInteger(s.wave) ? ` · wave ${s.wave + 1}/${waves}` : "";
  const reason = s.reason ? `<br><span class="muted">${esc(s.reason)}</span>` : "";
  return `<span class="state rs-${esc(s.state)}">${words(s.state)}</span>${wave}${reason}`;
}

/** The gateways per phase: a stacked bar and the counts. */
function phaseCounts(summary) {
  const entries = Object.entries(summary || {}).filter(([, n]) => Number(n) > 0)
    .sort(([a], [b]) => (PHASES.indexOf(a) + 1 || 99) - (PHASES.indexOf(b) + 1 || 99));
  const total = entries.reduce((sum, [, n]) => sum + Number(n), 0);
  if (!total) return `<span class="muted">no gateways</span>`;
  const stack = entries.map(([p, n]) =>
    `<span class="${phaseClass(p)}" style="width:${(100 * Number(n)) / total}%" title="${esc(n)} ${words(p)}"></span>`).join("");
  const counts = entries.map(([p, n]) => `<span><span class="dot ${phaseClass(p)}"></span>${esc(n)} ${words(p)}</span>`).join(" · ");
  return `<div class="stack">${stack}</div><div class="counts">${counts}</div>`;
}

function rolloutRow(r) {
  const selected = r.id === selectedRollout ? " selected" : "";
  return `<tr class="rollout${selected}" data-rollout="${esc(r.id)}">
    <td class="nowrap"><b>${esc(r.id)}</b></td>
    <td>${esc(r.spec?.model)} <b>${esc(r.spec?.version)}</b></td>
    <td>${rolloutState(r)}</td>
    <td>${phaseCounts(r.summary)}</td>
    <td>${esc(r.created_by)}<br><span class="muted">${whenMs(r.created_at_ms)}</span></td>
  </tr>`;
}

function openRollout(id) {
  selectedRollout = id;
  shownRollout = null;
  rolloutGen++;
  showError("rollout-error");
  $("#rollout-detail-id").textContent = id;
  for (const part of ["summary", "waves", "gateways", "log"]) $(`#rollout-${part}`).innerHTML = "";
  $("#rollout-summary").innerHTML = `<p class="muted">loading&hellip;</p>`;
  $("#rollout-actions").hidden = true;
  $("#rollout-detail").hidden = false;
  $(".rollouts-layout").classList.add("with-detail");
  document.querySelectorAll("tr.rollout").forEach(tr => tr.classList.toggle("selected", tr.dataset.rollout === id));
  loadRollouts();
}

function closeRollout() {
  selectedRollout = null;
  shownRollout = null;
  rolloutGen++;
  $("#rollout-detail").hidden = true;
  $(".rollouts-layout").classList.remove("with-detail");
  document.querySelectorAll("tr.rollout.selected").forEach(tr => tr.classList.remove("selected"));
}

function renderRolloutDetail(r) {
  if (shownRollout && shownRollout.id === r.id && r.updated_at_ms < shownRollout.updated_at_ms) return;
  shownRollout = r;
  const detail = $("#rollout-detail");
  detail.dataset.state = r.state?.state ?? "";
  $("#rollout-detail-id").textContent = r.id;
  $("#rollout-summary").innerHTML = rolloutSummaryHtml(r);
  $("#rollout-waves").innerHTML = wavesHtml(r);
  $("#rollout-gateways").innerHTML = rolloutGatewaysHtml(r);
  $("#rollout-log").innerHTML = rolloutLogHtml(r.log || []);
  renderRolloutActions(r);
}

function rolloutSummaryHtml(r) {
  const spec = r.spec || {};
  const t = r.target || {};
  const fact = (name, value) => (value ? `<dt>${name}</dt><dd>${value}</dd>` : "");
  const target = [
    t.asset_kind ? `asset kind ${esc(t.asset_kind)}` : "",
    t.site ? `site ${esc(t.site)}` : "",
    Array.isArray(t.gateways) && t.gateways.length ? `gateways ${t.gateways.map(g => esc(typeof g === "string" ? g : gatewayName(g))).join(", ")}` : "",
  ].filter(Boolean).join(" · ") || "every gateway";
  const sha = spec.sha256 ? `<code title="${esc(spec.sha256)}">${esc(String(spec.sha256).slice(0, 16))}…</code>` : "";
  const rules = [
    `halt above ${pct(spec.max_failure_fraction)} failed per wave`,
    `gateway timeout ${esc(spec.gateway_timeout_s)} s`,
    `shadow ${esc(r.shadow_s)} s`,
    spec.allow_downgrade ? "downgrade allowed" : "",
  ].filter(Boolean).join(" · ");
  return `<dl class="facts">
    ${fact("Model", `${esc(spec.model)} <b>${esc(spec.version)}</b> <span class="muted">${bytes(r.package_size)}</span>`)}
    ${fact("SHA-256", sha)}
    ${fact("State", rolloutState(r))}
    ${fact("Target", target)}
    ${fact("Rules", rules)}
    ${fact("Gateways", phaseCounts(r.summary))}
    ${fact("Created", `${esc(r.created_by)} · ${whenMs(r.created_at_ms)} <span class="muted">updated ${whenMs(r.updated_at_ms)}</span>`)}
  </dl>`;
}

function wavesHtml(r) {
  const sizes = r.wave_sizes || [];
  const specWaves = r.spec?.waves || [];
  if (!sizes.length) return `<p class="empty">No waves.</p>`;
  const current = Number.isInteger(r.state?.wave) ? r.state.wave : null;
  const gateways = r.gateways || [];
  const rows = sizes.map((size, i) => {
    const mine = gateways.filter(g => g.wave === i);
    const count = p => mine.filter(g => g.phase?.state === p).length;
    const busy = mine.filter(g => ["offered", "downloading", "verifying", "shadow"].includes(g.phase?.state)).length;
    const here = i === current;
    return `<tr class="${here ? "current-wave" : ""}"><td>${i + 1}${here ? " ◀ current" : ""}</td>
      <td>${esc(specWaves[i] ?? "")}</td><td class="num">${esc(size)}</td><td class="num">${busy}</td>
      <td class="num">${count("active")}</td><td class="num">${count("failed")}</td><td class="num">${count("waiting")}</td></tr>`;
  }).join("");
  return `<table><thead><tr><th>Wave</th><th>Asked</th><th class="num">Gateways</th><th class="num">In flight</th>
    <th class="num">Active</th><th class="num">Failed</th><th class="num">Waiting</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function downloadHtml(phase) {
  if (phase?.state !== "downloading") return "";
  const total = Number(phase.received) >= 0 && Number(phase.total) > 0 ? Number(phase.total) : 0;
  const share = total ? Math.min(100, (100 * Number(phase.received)) / total) : 0;
  return `<span class="progress">${bar(share, "var(--accent)")} ${num(share, 0)} %</span>
    <span class="muted">${bytes(phase.received)} of ${bytes(phase.total)}</span>`;
}

function shadowHtml(s) {
  if (!s) return "";
  return `agreement <b>${pct(s.agreement)}</b><br><span class="muted">alarms new ${pct(s.alarm_rate_new)} · current ${pct(s.alarm_rate_active)} · ${esc(s.windows)} windows</span>`;
}

function rolloutGatewaysHtml(r) {
  const gateways = r.gateways || [];
  if (!gateways.length) return `<p class="empty">No gateways in this rollout.</p>`;
  const shadow = r.shadow || {};
  const rows = gateways.map(g => {
    const name = gatewayName(g.gateway);
    const phase = g.phase || {};
    const since = phase.state === "offered" && phase.offered_at_ms ? `<br><span class="muted">since ${whenMs(phase.offered_at_ms)}</span>` : "";
    const figures = Object.hasOwn(shadow, name) ? shadowHtml(shadow[name]) : "";
    return `<tr data-gateway="${esc(name)}"><td>${esc(g.gateway?.site)} / <b>${esc(g.gateway?.gateway)}</b></td>
      <td class="num">${Number.isInteger(g.wave) ? g.wave + 1 : ""}</td>
      <td><span class="phase ${phaseClass(phase.state)}">${words(phase.state)}</span>${since}</td>
      <td>${downloadHtml(phase)}</td><td>${esc(phase.reason ?? "")}</td><td>${figures}</td>
      <td>${whenMs(g.updated_at_ms)}</td></tr>`;
  }).join("");
  return `<table><thead><tr><th>Site / gateway</th><th class="num">Wave</th><th>Phase</th><th>Download</th><th>Failure</th>
    <th>Shadow (new vs current model)</th><th>Updated (UTC)</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function rolloutLogHtml(log) {
  if (!log.length) return `<p class="empty">Nothing logged yet.</p>`;
  const rows = log.slice().reverse().map(l => `<tr><td>${whenMs(l.at_ms)}</td><td>${esc(l.text)}</td></tr>`).join("");
  return `<table><thead><tr><th>When (UTC)</th><th>What</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** Pause, resume and roll back: for engineers, when the state allows. */
function renderRolloutActions(r) {
  const engineer = me && me.role === "engineer";
  const state = r.state?.state;
  let any = false;
  for (const [action, states] of Object.entries(ROLLOUT_ACTIONS)) {
    const b = $(`#rollout-${action}`);
    b.hidden = !(engineer && states.includes(state));
    b.disabled = rolloutBusy;
    any = any || !b.hidden;
  }
  $("#rollout-actions").hidden = !any;
}

async function rolloutAct(action) {
  const id = selectedRollout;
  if (!id || rolloutBusy) return;
  rolloutGen++;
  rolloutBusy = true;
  showError("rollout-error");
  document.querySelectorAll("#rollout-actions button").forEach(b => { b.disabled = true; });
  try {
    const r = await api(`api/rollouts/${encodeURIComponent(id)}/${action}`, { method: "POST", body: {} });
    rolloutGen++; // drop any load that started while this was in flight
    rolloutBusy = false;
    if (selectedRollout === id && r) renderRolloutDetail(r);
    await loadRollouts();
  } catch (e) {
    showError("rollout-error", e.message);
  } finally {
    rolloutBusy = false;
    document.querySelectorAll("#rollout-actions button").forEach(b => { b.disabled = false; });
  }
}

// ----------------------------------------------------------------- plots

/** Round tick values between lo and hi, about n of them. */
function ticks(lo, hi, n) {
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const step = mag * (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
  return { values: out, digits: Math.max(0, -Math.floor(Math.log10(step))) };
}

const extent = values => values.reduce(([lo, hi], v) => [Math.min(lo, v), Math.max(hi, v)], [Infinity, -Infinity]);

/** At most `max` points, evenly picked, the last always kept. */
const thin = (points, max) => (points.length <= max ? points
  : points.filter((_, i) => i % Math.ceil(points.length / max) === 0 || i === points.length - 1));

/**
 * An SVG line plot of [time ms, value] points: time on x (UTC), a few tick
 * labels on both axes, an optional dashed threshold line. `bare` draws the
 * line alone (a sparkline).
 */
function linePlot({ cls, points, width = 540, height = 160, yMin, yMax, threshold, bare = false, empty = "" }) {
  const m = bare ? { l: 1, r: 1, t: 2, b: 2 } : { l: 40, r: 12, t: 8, b: 22 };
  const svg = inner => `<svg class="plot ${cls}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img">${inner}</svg>`;
  if (!points.length) {
    return svg(empty ? `<text x="${width / 2}" y="${height / 2}" text-anchor="middle">${esc(empty)}</text>` : "");
  }
  points = thin(points, 500);
  let [x0, x1] = extent(points.map(p => p[0]));
  if (x1 === x0) { x0 -= 60000; x1 += 60000; }
  const hasLine = Number.isFinite(threshold);
  let [y0, y1] = extent(points.map(p => p[1]).concat(hasLine ? [threshold] : []));
  if (yMin != null) y0 = yMin;
  if (yMax != null) y1 = yMax; else y1 += (y1 - y0) * 0.1;
  if (!(y1 > y0)) y1 = y0 + 1;
  const X = t => m.l + ((t - x0) / (x1 - x0)) * (width - m.l - m.r);
  const Y = v => height - m.b - ((v - y0) / (y1 - y0)) * (height - m.t - m.b);
  const line = points.map(([t, v]) => `${X(t).toFixed(1)},${Y(v).toFixed(1)}`).join(" ");
  let out = `<polyline class="series" points="${line}"/>`;
  if (points.length <= 60 && !bare) out += points.map(([t, v]) => `<circle class="dot" cx="${X(t).toFixed(1)}" cy="${Y(v).toFixed(1)}" r="2"/>`).join("");
  if (hasLine && threshold <= y1) {
    out += `<line class="threshold" x1="${m.l}" x2="${width - m.r}" y1="${Y(threshold).toFixed(1)}" y2="${Y(threshold).toFixed(1)}"/>`;
    if (!bare) out += `<text class="threshold-label" x="${width - m.r}" y="${(Y(threshold) - 3).toFixed(1)}" text-anchor="end">alarm ${sig(threshold)}</text>`;
  }
  return svg((bare ? "" : axes(x0, x1, y0, y1, X, Y, m, width, height)) + out);
}

function axes(x0, x1, y0, y1, X, Y, m, width, height) {
  const yt = ticks(y0, y1, 4);
  let out = yt.values.map(v => `<line class="grid" x1="${m.l}" x2="${width - m.r}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}"/>
    <text x="${m.l - 4}" y="${(Y(v) + 3).toFixed(1)}" text-anchor="end">${v.toFixed(yt.digits)}</text>`).join("");
  const span = x1 - x0; // long spans show the date, short ones the seconds
  const [from, to] = span > 24 * 3600e3 ? [5, 16] : span < 600e3 ? [11, 19] : [11, 16];
  for (let i = 0; i <= 3; i++) {
    const t = x0 + (span * i) / 3;
    const label = new Date(t).toISOString().slice(from, to).replace("T", " ");
    const anchor = i === 0 ? "start" : i === 3 ? "end" : "middle";
    out += `<line class="axis" x1="${X(t).toFixed(1)}" x2="${X(t).toFixed(1)}" y1="${height - m.b}" y2="${height - m.b + 3}"/>
      <text x="${X(t).toFixed(1)}" y="${height - 6}" text-anchor="${anchor}">${label}</text>`;
  }
  out += `<line class="axis" x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${height - m.b}"/>
    <line class="axis" x1="${m.l}" x2="${width - m.r}" y1="${height - m.b}" y2="${height - m.b}"/>`;
  return out;
}

// ------------------------------------------------------------------ start

function wireUi() {
  document.querySelectorAll(".tab").forEach(t => { t.onclick = () => switchView(t.dataset.view); });
  $("#signin-form").onsubmit = e => {
    e.preventDefault();
    const t = $("#token-input").value.trim();
    if (t) start(t); else showError("signin-error", "Enter a token.");
  };
  $("#sign-out").onclick = () => signOut("");
  $("#queue tbody").onclick = e => { const tr = e.target.closest("tr[data-wo]"); if (tr) openDetail(tr.dataset.wo); };
  $("#filter-status").onchange = loadQueue;
  $("#filter-site").onchange = loadQueue;
  $("#wo-close").onclick = closeDetail;
  $("#rollouts tbody").onclick = e => { const tr = e.target.closest("tr[data-rollout]"); if (tr) openRollout(tr.dataset.rollout); };
  $("#rollout-close").onclick = closeRollout;
  for (const action of Object.keys(ROLLOUT_ACTIONS)) $(`#rollout-${action}`).onclick = () => rolloutAct(action);
  $("#plan-schedule").onclick = planSchedule;
  $("#view-schedule").onclick = e => {
    const b = e.target.closest("[data-open]");
    if (b) { switchView("queue"); openDetail(b.dataset.open); }
  };
  window.addEventListener("hashchange", () => { const t = tokenFromHash(); if (t) start(t); });
}

wireUi();
{
  const t = tokenFromHash() || sessionStorage.getItem(TOKEN_KEY);
  if (t) start(t); else showSignIn("");
}
setInterval(refresh, REFRESH_MS);
