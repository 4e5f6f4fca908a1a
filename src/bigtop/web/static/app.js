// The dashboard: one websocket for everything live, plain fetch() for actions.
import { LiveChart } from "./charts.js";
import {
  bytes, clock, duration, emptySeries, eventDetails, exitText, percent, plural, pushPoint, restartText,
} from "./format.js";

const MAX_EVENTS = 500;
const MAX_LOG_LINES = 1000;
const ACTIONS = ["start", "stop", "restart", "reload", "incr", "decr"];

const state = {
  csrf: null,
  daemons: new Map(), // id -> {id, label, endpoint, up, error, watchers: [], series: Map}
  events: [],
  watch: null, // {daemon, watcher, procs, series: Map(pid -> columns), history, seen: Set}
  socket: null,
  route: { view: "overview" },
};
const charts = new Map();
const main = document.getElementById("view");

// ---- small DOM helpers --------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function badge(text) {
  return el("span", { class: `badge state-${text}`, "data-role": "state", text });
}

function toast(message, bad = false) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.className = bad ? "show bad" : "show";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.className = ""; }, 4000);
}

function setConnection(text, live) {
  const node = document.getElementById("conn");
  node.textContent = text;
  node.className = live ? "conn live" : "conn";
}

function watcherHref(daemon, watcher) {
  return `#/w/${encodeURIComponent(daemon)}/${encodeURIComponent(watcher)}`;
}

// ---- talking to the server ----------------------------------------------------------------
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-CSRF-Token"] = state.csrf || "";
  }
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (response.status === 401) { location.reload(); }
  if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  return data;
}

async function act(daemon, watcher, action, body = {}) {
  const path = `/api/d/${encodeURIComponent(daemon)}/w/${encodeURIComponent(watcher)}/${action}`;
  try {
    await api("POST", path, body);
    toast(`${action} ${watcher}: sent`);
  } catch (error) {
    toast(`${action} ${watcher}: ${error.message}`, true);
  }
}

let retries = 0;
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws`);
  state.socket = socket;
  socket.onopen = () => {
    retries = 0;
    setConnection("live", true);
    sendWatch();
  };
  socket.onmessage = (event) => receive(JSON.parse(event.data));
  socket.onclose = async () => {
    state.socket = null;
    setConnection("reconnecting…", false);
    try { await api("GET", "/api/session"); } catch { return; }
    retries += 1;
    setTimeout(connect, Math.min(10000, 500 * 2 ** Math.min(retries, 5)));
  };
}

function sendWatch() {
  const route = state.route;
  if (!state.socket || state.socket.readyState !== WebSocket.OPEN) return;
  const message = route.view === "watcher"
    ? { type: "watch", daemon: route.daemon, watcher: route.watcher }
    : { type: "watch", watcher: null };
  state.socket.send(JSON.stringify(message));
}

// ---- messages from the server -------------------------------------------------------------
function receive(message) {
  switch (message.type) {
    case "hello": return onHello(message);
    case "tick": return onTick(message);
    case "procs": return onProcs(message);
    case "watching": return onWatching(message);
    case "history": return onHistory(message);
    case "log": return onLog(message);
    case "event": return onEvent(message);
    case "gone": return onGone(message);
    default: return undefined;
  }
}

function onHello(message) {
  state.daemons.clear();
  for (const d of message.daemons) {
    const series = new Map(Object.entries(message.series[d.id] || {}));
    state.daemons.set(d.id, { ...d, watchers: [], series, seen: false });
  }
  for (const tick of message.ticks) applyTick(tick);
  state.events = message.events.slice(-MAX_EVENTS);
  render();
}

function applyTick(message) {
  const daemon = state.daemons.get(message.daemon);
  if (!daemon) return false;
  const before = daemon.watchers.map((w) => w.name).join("\n") + `|${daemon.up}`;
  daemon.up = message.up;
  daemon.error = message.error || null;
  daemon.seen = true;
  if (message.up) {
    daemon.watchers = message.watchers;
    const names = new Set();
    for (const w of message.watchers) {
      names.add(w.name);
      if (!daemon.series.has(w.name)) daemon.series.set(w.name, emptySeries());
      const columns = daemon.series.get(w.name);
      if (columns[0][columns[0].length - 1] !== message.t) pushPoint(columns, message.t, w.cpu, w.mem);
    }
    for (const name of [...daemon.series.keys()]) if (!names.has(name)) daemon.series.delete(name);
  }
  return before !== daemon.watchers.map((w) => w.name).join("\n") + `|${daemon.up}`;
}

function onTick(message) {
  const changed = applyTick(message);
  const view = state.route.view;
  if (view === "overview") {
    if (changed) render();
    else updateOverview(message.daemon);
  } else if (view === "watcher" && state.route.daemon === message.daemon) {
    updateWatcherHeader();
  }
}

function currentWatch(message) {
  const w = state.watch;
  return w && w.daemon === message.daemon && w.watcher === message.watcher ? w : null;
}

function onWatching(message) {
  const route = state.route;
  if (route.view !== "watcher" || route.daemon !== message.daemon || route.watcher !== message.watcher) return;
  const series = new Map(Object.entries(message.series).map(([pid, columns]) => [Number(pid), columns]));
  state.watch = {
    daemon: message.daemon, watcher: message.watcher, procs: message.procs, series,
    history: message.history, seen: new Set(),
  };
  render();
  appendLog(message.log.lines, message.log.dropped);
}

function onProcs(message) {
  const watch = currentWatch(message);
  if (!watch) return;
  const before = (watch.procs ? watch.procs.processes : []).map((p) => p.pid).join(",");
  watch.procs = message;
  const pids = new Set();
  for (const p of message.processes) {
    pids.add(p.pid);
    if (!watch.series.has(p.pid)) watch.series.set(p.pid, emptySeries());
    pushPoint(watch.series.get(p.pid), message.t, p.cpu, p.mem);
  }
  for (const pid of [...watch.series.keys()]) if (!pids.has(pid)) watch.series.delete(pid);
  const after = message.processes.map((p) => p.pid).join(",");
  if (before !== after) renderProcesses();
  else updateProcesses();
  updateWatcherHeader();
}

function onHistory(message) {
  const watch = currentWatch(message);
  if (!watch) return;
  watch.history = message.entries;
  renderHistory();
}

function onLog(message) {
  if (!currentWatch(message)) return;
  appendLog(message.lines, message.dropped);
}

function onGone(message) {
  const watch = currentWatch(message);
  if (!watch) return;
  watch.procs = null;
  const node = document.getElementById("watcher-state");
  if (node) node.replaceChildren(badge("removed"));
}

function onEvent(message) {
  state.events.push(message);
  if (state.events.length > MAX_EVENTS) state.events.shift();
  if (state.route.view === "events") {
    const body = document.getElementById("events-body");
    if (body) {
      const row = eventRow(message);
      row.hidden = !matchesFilter(message);
      body.prepend(row);
      while (body.children.length > MAX_EVENTS) body.lastChild.remove();
    }
  }
}

// ---- views ----------------------------------------------------------------------------------
function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "w" && parts.length >= 3) {
    return { view: "watcher", daemon: parts[1], watcher: parts.slice(2).join("/") };
  }
  if (["events", "sockets", "config"].includes(parts[0])) return { view: parts[0] };
  return { view: "overview" };
}

function destroyCharts() {
  for (const chart of charts.values()) chart.destroy();
  charts.clear();
}

function chart(key, node, options) {
  const made = new LiveChart(node, options);
  charts.set(key, made);
  return made;
}

function render() {
  destroyCharts();
  const route = state.route;
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("current", link.dataset.view === route.view);
  }
  if (route.view === "watcher") renderWatcher();
  else if (route.view === "events") renderEvents();
  else if (route.view === "sockets") renderSockets();
  else if (route.view === "config") renderConfig();
  else renderOverview();
}

// overview
function renderOverview() {
  const sections = [];
  for (const daemon of state.daemons.values()) {
    const cards = daemon.watchers.map((w) => el("a", {
      class: "card watcher", href: watcherHref(daemon.id, w.name), "data-watcher": `${daemon.id}/${w.name}`,
    },
    el("div", { class: "card-head" }, el("strong", { class: "name", text: w.name }), badge(w.state)),
    el("div", { class: "figures" },
      el("span", { "data-role": "count", text: plural(w.n, "proc") }),
      el("span", { class: "cpu", "data-role": "cpu", text: percent(w.cpu) }),
      el("span", { class: "mem", "data-role": "mem", text: bytes(w.mem) }),
      el("span", { "data-role": "restarts", text: w.restarts ? plural(w.restarts, "restart") : "" })),
    el("div", { class: "chart", "data-chart": `${daemon.id}/${w.name}` })));
    let body;
    if (!daemon.up && daemon.seen) body = el("p", { class: "error", text: `unreachable: ${daemon.error || ""}` });
    else if (!daemon.seen) body = el("p", { class: "muted", text: "waiting for the first figures…" });
    else if (!cards.length) body = el("p", { class: "muted", text: "no watchers" });
    else body = el("div", { class: "grid" }, cards);
    sections.push(el("section", { class: "daemon", "data-daemon": daemon.id },
      el("h2", {}, el("span", { text: daemon.label }), el("small", { class: "muted", text: ` ${daemon.id}` })),
      body));
  }
  main.replaceChildren(el("div", { class: "overview" }, sections));
  for (const daemon of state.daemons.values()) {
    for (const w of daemon.watchers) {
      const key = `${daemon.id}/${w.name}`;
      const node = main.querySelector(`[data-chart="${CSS.escape(key)}"]`);
      if (node) chart(key, node, { height: 60 }).set(daemon.series.get(w.name) || emptySeries());
    }
  }
}

function updateOverview(daemonId) {
  const daemon = state.daemons.get(daemonId);
  if (!daemon) return;
  for (const w of daemon.watchers) {
    const key = `${daemon.id}/${w.name}`;
    const card = main.querySelector(`[data-watcher="${CSS.escape(key)}"]`);
    if (!card) continue;
    card.querySelector('[data-role="state"]').replaceWith(badge(w.state));
    card.querySelector('[data-role="count"]').textContent = plural(w.n, "proc");
    card.querySelector('[data-role="cpu"]').textContent = percent(w.cpu);
    card.querySelector('[data-role="mem"]').textContent = bytes(w.mem);
    card.querySelector('[data-role="restarts"]').textContent = w.restarts ? plural(w.restarts, "restart") : "";
    const plot = charts.get(key);
    if (plot) plot.set(daemon.series.get(w.name) || emptySeries());
  }
}

// watcher page
function summaryOf(route) {
  const daemon = state.daemons.get(route.daemon);
  return daemon ? daemon.watchers.find((w) => w.name === route.watcher) : undefined;
}

function renderWatcher() {
  const route = state.route;
  const daemon = state.daemons.get(route.daemon);
  const watch = currentWatch({ daemon: route.daemon, watcher: route.watcher });
  const buttons = ACTIONS.map((action) => el("button", {
    type: "button", "data-action": action, text: action,
    onclick: () => {
      if (action === "stop" && !confirm(`Stop every process of ${route.watcher}?`)) return;
      act(route.daemon, route.watcher, action);
    },
  }));
  main.replaceChildren(el("div", { class: "watcher-page", "data-page": `${route.daemon}/${route.watcher}` },
    el("div", { class: "page-head" },
      el("h1", {}, route.watcher, " ", el("small", { class: "muted", text: daemon ? daemon.label : route.daemon })),
      el("span", { id: "watcher-state" }),
      el("span", { id: "watcher-figures", class: "figures" })),
    el("div", { class: "actions" }, buttons),
    el("div", { class: "chart big", id: "watcher-chart", "data-chart": "watcher" }),
    el("p", { class: "legend muted" }, el("span", { class: "cpu", text: "— CPU % of one core" }), " ",
      el("span", { class: "mem", text: "— resident memory" }), " (a process and its direct children)"),
    el("h2", {}, "Processes"),
    el("div", { id: "processes", class: "grid procs" }, watch ? null : el("p", { class: "muted", text: "loading…" })),
    el("h2", {}, "Restart history"),
    el("div", { id: "history", class: "table-wrap" }),
    el("h2", {}, "Output ", el("small", { class: "muted", text: "(live: stdout, stderr in red)" })),
    el("pre", { id: "log", class: "log", "aria-live": "off" })));
  chart("watcher", document.getElementById("watcher-chart"), { height: 160, axes: true });
  updateWatcherHeader();
  if (watch) {
    renderProcesses();
    renderHistory();
  }
}

function updateWatcherHeader() {
  const route = state.route;
  if (route.view !== "watcher") return;
  const summary = summaryOf(route);
  const daemon = state.daemons.get(route.daemon);
  const stateNode = document.getElementById("watcher-state");
  const figures = document.getElementById("watcher-figures");
  if (!stateNode || !figures) return;
  if (summary) {
    stateNode.replaceChildren(badge(summary.state));
    figures.replaceChildren(
      el("span", { "data-role": "count", text: plural(summary.n, "proc") }),
      el("span", { class: "cpu", text: percent(summary.cpu) }),
      el("span", { class: "mem", text: bytes(summary.mem) }));
  }
  const plot = charts.get("watcher");
  if (plot && daemon) plot.set(daemon.series.get(route.watcher) || emptySeries());
}

function renderProcesses() {
  const watch = state.watch;
  const box = document.getElementById("processes");
  if (!box || !watch) return;
  for (const key of [...charts.keys()]) {
    if (key.startsWith("pid:")) { charts.get(key).destroy(); charts.delete(key); }
  }
  const processes = watch.procs ? watch.procs.processes : [];
  if (!processes.length) {
    box.replaceChildren(el("p", { class: "muted", text: "no processes" }));
    return;
  }
  box.replaceChildren(...processes.map((p) => el("div", { class: "card proc", "data-pid": p.pid },
    el("div", { class: "card-head" },
      el("span", {}, el("strong", { text: `pid ${p.pid}` }), " ",
        el("span", { class: "muted", text: p.wid === null ? "" : `wid ${p.wid}` })),
      badge(p.state)),
    el("div", { class: "figures" },
      el("span", { class: "cpu", "data-role": "cpu", text: percent(p.cpu) }),
      el("span", { class: "mem", "data-role": "mem", text: bytes(p.mem) }),
      el("span", { "data-role": "age", text: `up ${duration(p.age)}` }),
      el("span", { "data-role": "restarts", text: p.restarts ? plural(p.restarts, "restart") : "" })),
    el("div", { class: "chart", "data-chart": `pid:${p.pid}` }),
    el("button", {
      type: "button", class: "danger", "data-action": "kill", text: "kill",
      onclick: () => act(watch.daemon, watch.watcher, "kill", { pid: p.pid }),
    }))));
  for (const p of processes) {
    const node = box.querySelector(`[data-chart="pid:${p.pid}"]`);
    chart(`pid:${p.pid}`, node, { height: 50 }).set(watch.series.get(p.pid) || emptySeries());
  }
}

function updateProcesses() {
  const watch = state.watch;
  const box = document.getElementById("processes");
  if (!box || !watch || !watch.procs) return;
  for (const p of watch.procs.processes) {
    const card = box.querySelector(`[data-pid="${p.pid}"]`);
    if (!card) continue;
    card.querySelector('[data-role="state"]').replaceWith(badge(p.state));
    card.querySelector('[data-role="cpu"]').textContent = percent(p.cpu);
    card.querySelector('[data-role="mem"]').textContent = bytes(p.mem);
    card.querySelector('[data-role="age"]').textContent = `up ${duration(p.age)}`;
    card.querySelector('[data-role="restarts"]').textContent = p.restarts ? plural(p.restarts, "restart") : "";
    const plot = charts.get(`pid:${p.pid}`);
    if (plot) plot.set(watch.series.get(p.pid) || emptySeries());
  }
}

function renderHistory() {
  const box = document.getElementById("history");
  const watch = state.watch;
  if (!box || !watch) return;
  const entries = (watch.history || []).slice().reverse();
  if (!entries.length) {
    box.replaceChildren(el("p", { class: "muted", text: "no process has ended yet" }));
    return;
  }
  box.replaceChildren(el("table", { class: "history" },
    el("thead", {}, el("tr", {}, ["time", "pid", "wid", "exit", "reason", "uptime", "restart"].map((h) => el("th", { text: h })))),
    el("tbody", {}, entries.map((e) => el("tr", {},
      el("td", { text: clock(e.time) }),
      el("td", { text: e.pid ?? "–" }),
      el("td", { text: e.wid ?? "–" }),
      el("td", { text: exitText(e) }),
      el("td", { text: e.reason || "" }),
      el("td", { text: e.uptime === undefined ? "–" : duration(e.uptime) }),
      el("td", { text: restartText(e.restart_in) }))))));
}

function appendLog(lines, dropped) {
  const box = document.getElementById("log");
  const watch = state.watch;
  if (!box || !watch) return;
  const stick = box.scrollTop + box.clientHeight >= box.scrollHeight - 20;
  const fragment = document.createDocumentFragment();
  for (const [when, , pid, stream, text] of lines) {
    const key = `${when}|${pid}|${stream}|${text}`;
    if (watch.seen.has(key)) continue; // already shown by the tail
    watch.seen.add(key);
    if (watch.seen.size > 4 * MAX_LOG_LINES) watch.seen.clear();
    fragment.append(el("div", { class: stream === "stderr" ? "line err" : "line" },
      el("span", { class: "pid", text: `${pid} ` }), text));
  }
  if (dropped) fragment.append(el("div", { class: "line muted", text: `… ${dropped} lines skipped (too fast to show)` }));
  box.append(fragment);
  while (box.childNodes.length > MAX_LOG_LINES) box.firstChild.remove();
  if (stick) box.scrollTop = box.scrollHeight;
}

// events
let eventFilter = "";
function matchesFilter(message) {
  return !eventFilter || `${message.topic} ${eventDetails(message.data)}`.toLowerCase().includes(eventFilter);
}

function eventRow(message) {
  const daemon = state.daemons.get(message.daemon);
  return el("tr", {},
    el("td", { text: clock(message.data && message.data.time) }),
    el("td", { text: daemon ? daemon.label : message.daemon }),
    el("td", {}, message.watcher
      ? el("a", { href: watcherHref(message.daemon, message.watcher), text: message.watcher }) : ""),
    el("td", { class: `action-${message.action}`, text: message.action }),
    el("td", { class: "details", text: eventDetails(message.data) }));
}

function renderEvents() {
  const body = el("tbody", { id: "events-body" });
  for (const message of state.events.slice().reverse()) {
    const row = eventRow(message);
    row.hidden = !matchesFilter(message);
    body.append(row);
  }
  const filter = el("input", {
    type: "search", placeholder: "filter (topic or payload)", value: eventFilter,
    oninput: (event) => {
      eventFilter = event.target.value.toLowerCase();
      const rows = [...body.children];
      state.events.slice().reverse().forEach((message, index) => {
        if (rows[index]) rows[index].hidden = !matchesFilter(message);
      });
    },
  });
  main.replaceChildren(el("div", { class: "events-page" },
    el("h1", {}, "Events"), filter,
    el("div", { class: "table-wrap" }, el("table", { class: "events" },
      el("thead", {}, el("tr", {}, ["time", "daemon", "watcher", "event", "details"].map((h) => el("th", { text: h })))),
      body))));
}

// sockets
async function renderSockets() {
  const box = el("div", { class: "sockets-page" }, el("h1", {}, "Sockets"),
    el("button", { type: "button", text: "refresh", onclick: () => render() }));
  main.replaceChildren(box);
  for (const daemon of state.daemons.values()) {
    const section = el("section", { "data-daemon": daemon.id }, el("h2", { text: daemon.label }),
      el("p", { class: "muted", text: "loading…" }));
    box.append(section);
    try {
      const data = await api("GET", `/api/d/${encodeURIComponent(daemon.id)}/sockets`);
      if (!data.sockets.length) {
        section.lastChild.replaceWith(el("p", { class: "muted", text: "no sockets" }));
        continue;
      }
      section.lastChild.replaceWith(el("div", { class: "table-wrap" }, el("table", {},
        el("thead", {}, el("tr", {}, ["fd", "name", "address", "backlog", "connections", "waiting"].map((h) => el("th", { text: h })))),
        el("tbody", {}, data.sockets.map((s) => el("tr", { "data-socket": s.name },
          el("td", { text: s.fd }),
          el("td", { text: s.name }),
          el("td", { text: s.path || `${s.host}:${s.port}` }),
          el("td", { text: s.backlog ?? "–" }),
          el("td", { text: s.activity ? s.activity.connections : "–" }),
          el("td", { text: s.activity ? s.activity.waiting : "–" })))))));
    } catch (error) {
      section.lastChild.replaceWith(el("p", { class: "error", text: error.message }));
    }
  }
}

// reloadconfig
function renderConfig() {
  const box = el("div", { class: "config-page" }, el("h1", {}, "Reload configuration"),
    el("p", { class: "muted", text: "See what reloadconfig would change in each daemon, then apply it." }));
  for (const daemon of state.daemons.values()) {
    const result = el("div", { class: "plan" });
    const apply = el("button", {
      type: "button", class: "danger", "data-action": "apply", text: "apply", hidden: true,
      onclick: async () => {
        try {
          await api("POST", `/api/d/${encodeURIComponent(daemon.id)}/reloadconfig`);
          toast(`${daemon.label}: reloadconfig started`);
          apply.hidden = true;
        } catch (error) { toast(error.message, true); }
      },
    });
    const show = el("button", {
      type: "button", "data-action": "plan", text: "show the plan",
      onclick: async () => {
        try {
          const data = await api("GET", `/api/d/${encodeURIComponent(daemon.id)}/reloadconfig`);
          const steps = data.plan || [];
          result.replaceChildren(steps.length
            ? el("ol", {}, steps.map((s) => el("li", {}, el("strong", { text: s.action }), " ", s.watcher || "", s.detail ? ` – ${s.detail}` : "")))
            : el("p", { text: "Nothing to do: the file matches what runs." }));
          apply.hidden = steps.length === 0;
        } catch (error) {
          result.replaceChildren(el("p", { class: "error", text: error.message }));
          apply.hidden = true;
        }
      },
    });
    box.append(el("section", { "data-daemon": daemon.id }, el("h2", { text: daemon.label }), show, " ", apply, result));
  }
  main.replaceChildren(box);
}

// ---- start ----------------------------------------------------------------------------------
async function start() {
  try {
    const session = await api("GET", "/api/session");
    state.csrf = session.csrf;
  } catch (error) {
    setConnection(error.message, false);
    return;
  }
  document.getElementById("logout").addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": state.csrf || "" } });
    location.href = "/";
  });
  state.route = parseRoute();
  window.addEventListener("hashchange", () => {
    state.route = parseRoute();
    if (state.route.view !== "watcher") state.watch = null;
    else if (!currentWatch(state.route)) state.watch = null;
    sendWatch();
    render();
  });
  render();
  connect();
}

start();
