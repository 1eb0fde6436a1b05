// The live view: servers and NPCs with their state and steering controls, and the transcript (history + live).
import { api, el, notice } from "./api.js";

const transcript = document.getElementById("transcript");
const serverSelect = document.getElementById("filter-server");
const npcFilter = document.getElementById("filter-npc");
const playerFilter = document.getElementById("filter-player");
const liveState = document.getElementById("live-state");
let before = null;
let socket = null;
let me = null;

function time(ts) { return ts ? new Date(ts).toLocaleTimeString() : ""; }

function lineItem(line) {
  const who = line.addressee ? `${line.speaker} > ${line.addressee}` : line.speaker;
  const tags = Object.entries(line.tags).map(([k, v]) => (v ? `${k}=${v}` : k)).join(" ");
  const annotate = el("button", { type: "button", title: "annotate this line", onclick: () => annotateLine(line) }, "✎");
  return el("li", { class: `line-${line.source}`, "data-ref": line.ref, "data-addressee": line.addressee || "" },
    el("span", { class: "ts" }, time(line.ts)),
    me.role === "viewer" ? null : annotate,
    el("span", { class: "src" }, `${line.source} ${who}`),
    el("span", { class: "text" }, line.text),
    tags ? el("span", { class: "tags" }, `[${tags}]`) : null);
}

async function annotateLine(line) {
  const text = prompt(`Annotation for: ${line.text.slice(0, 80)}`);
  if (!text) return;
  await act("POST", `/api/transcript/${serverSelect.value}/annotations`, { ref: line.ref, text });
}

function filters() {
  const params = new URLSearchParams({ server: serverSelect.value });
  if (npcFilter.value.trim()) params.set("npc", npcFilter.value.trim());
  if (playerFilter.value.trim()) params.set("player", playerFilter.value.trim());
  return params;
}

async function loadHistory(reset) {
  if (!serverSelect.value) return;
  if (reset) { transcript.replaceChildren(); before = null; }
  const params = filters();
  params.delete("server");
  if (before) params.set("before", before);
  const page = await api("GET", `/api/transcript/${encodeURIComponent(serverSelect.value)}?${params}`);
  transcript.prepend(...page.lines.map(lineItem));
  before = page.before;
  document.getElementById("older").disabled = !before;
  if (reset) transcript.scrollTop = transcript.scrollHeight;
}

function connect() {
  if (socket) socket.close();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/api/live?${filters()}`);
  socket.onopen = () => { liveState.textContent = "live"; liveState.classList.add("on"); };
  socket.onclose = () => {
    liveState.textContent = "offline"; liveState.classList.remove("on");
    setTimeout(() => { if (socket && socket.readyState === WebSocket.CLOSED) { connect(); } }, 2000);
  };
  socket.onmessage = (message) => {
    const { line } = JSON.parse(message.data);
    const atEnd = transcript.scrollTop + transcript.clientHeight >= transcript.scrollHeight - 20;
    // A player's line comes again addressed to the NPC that answers it: it takes the place of its unaddressed self.
    const unaddressed = line.addressee && [...transcript.querySelectorAll("li[data-addressee='']")].find((li) => li.dataset.ref === line.ref);
    if (unaddressed) unaddressed.replaceWith(lineItem(line)); else transcript.append(lineItem(line));
    if (atEnd) transcript.scrollTop = transcript.scrollHeight;
  };
}

function refilter() { loadHistory(true).catch((e) => notice(e.message)); connect(); }

async function act(method, path, body) {
  try {
    await api(method, path, body);
    notice("");
    await refreshServers();
  } catch (error) {
    notice(error.message);
  }
}

function textAction(label, placeholder, send) {
  const input = el("input", { placeholder, maxlength: "2000", "aria-label": placeholder });
  const go = async () => { if (input.value.trim()) { await send(input.value.trim()); input.value = ""; } };
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
  return el("div", { class: "row" }, input, el("button", { type: "button", onclick: go }, label));
}

function npcCard(server, npc) {
  const base = `/api/npcs/${encodeURIComponent(server)}/${encodeURIComponent(npc.id)}`;
  const badges = [
    npc.present ? el("span", { class: "badge on" }, "present") : null,
    npc.paused ? el("span", { class: "badge warn", "data-state": "paused" }, "paused") : null,
    npc.muted ? el("span", { class: "badge warn" }, "muted") : null,
    npc.talking_to ? el("span", { class: "badge on" }, `talking to ${npc.talking_to}`) : null,
  ];
  const last = npc.last_reply
    ? `last to ${npc.last_player} at ${time(npc.last_turn_at)}` +
      (npc.last_latency_ms !== null ? ` (${Math.round(npc.last_latency_ms)} ms)` : "") + `: “${npc.last_reply}”`
    : "no turn since this page's server started";
  const control = (action) => act("POST", `${base}/control`, { action });
  return el("div", { class: "npc", "data-npc": npc.id },
    el("div", {}, el("span", { class: "name" }, `${npc.name} (${npc.id})`), ...badges),
    el("div", { class: "last" }, last),
    el("div", { class: "row" },
      el("button", { type: "button", onclick: () => control(npc.paused ? "resume" : "pause") }, npc.paused ? "Resume" : "Pause"),
      el("button", { type: "button", onclick: () => control(npc.muted ? "unmute" : "mute") }, npc.muted ? "Unmute" : "Mute"),
      el("button", { type: "button", onclick: () => control("stop") }, "Stop talking")),
    textAction("Add note", `note for ${npc.name}`, (text) => act("POST", `${base}/notes`, { text })),
    textAction("Say", `say as ${npc.name}`, (text) => act("POST", `${base}/say`, { text })),
    textAction("Correct", `what ${npc.name} should have said last`, (text) => act("POST", `${base}/corrections`, { text })),
    el("details", { ontoggle: (e) => e.target.open && loadAdvice(e.target, server, npc.id) },
      el("summary", {}, "Advisor recommendations"), el("div", { class: "advice" })));
}

async function loadAdvice(details, server, npc) {
  const list = await api("GET", `/api/npcs/${encodeURIComponent(server)}/${encodeURIComponent(npc)}/recommendations`);
  const decide = async (id, accept) => {
    await act("POST", `/api/recommendations/${id}/decision`, { accept });
    await loadAdvice(details, server, npc);
  };
  details.querySelector(".advice").replaceChildren(...(list.length ? list.map((r) => el("div", { class: "recommendation", "data-recommendation": r.id },
    el("p", {}, `${time(r.created_at)} [${r.status}]: ${[...r.steering, ...r.facts, ...r.warnings].join("; ")}${r.mood ? ` (mood: ${r.mood})` : ""}`),
    r.status === "pending" && me.role !== "viewer" ? el("div", { class: "row" },
      el("button", { type: "button", onclick: () => decide(r.id, true) }, "Accept"),
      el("button", { type: "button", onclick: () => decide(r.id, false) }, "Reject")) : null))
    : [el("p", {}, "none yet")]));
}

let shown = "";

// A table has no game server: its game master places the tokens on the map (operators and admins only).
function tableMapLink(server) {
  if (server.game !== "table" || me.role === "viewer") return null;
  return el("a", { class: "table-map", href: `/table/${encodeURIComponent(server.name)}`, target: "_blank", rel: "noopener" },
    "Open the table map");
}

async function refreshServers() {
  const servers = await api("GET", "/api/servers");
  const fresh = JSON.stringify(servers);
  if (fresh === shown) return;
  shown = fresh;
  const box = document.getElementById("servers");
  const open = new Set([...box.querySelectorAll("details[open]")].map((d) => d.closest(".npc").dataset.npc));
  // Half-typed notes and the caret survive the redraw.
  const typed = new Map([...box.querySelectorAll("input")].map((i) => [i.placeholder, i.value]));
  const focused = document.activeElement && box.contains(document.activeElement) ? document.activeElement.placeholder : null;
  box.replaceChildren(...servers.map((server) => el("div", { class: "server", "data-server": server.name },
    el("h2", {}, `${server.name} (${server.game})`, tableMapLink(server)),
    textAction("Note to all", `note for every NPC of ${server.name}`,
      (text) => act("POST", `/api/servers/${encodeURIComponent(server.name)}/notes`, { text })),
    ...server.npcs.map((npc) => npcCard(server.name, npc)))));
  for (const details of box.querySelectorAll("details")) if (open.has(details.closest(".npc").dataset.npc)) details.open = true;
  for (const input of box.querySelectorAll("input")) {
    input.value = typed.get(input.placeholder) || "";
    if (input.placeholder === focused) input.focus();
  }
  if (!serverSelect.options.length) {
    serverSelect.replaceChildren(...servers.map((s) => el("option", { value: s.name }, s.name)));
    refilter();
  }
}

export function startLive(signedIn) {
  me = signedIn;
  serverSelect.addEventListener("change", refilter);
  npcFilter.addEventListener("change", refilter);
  playerFilter.addEventListener("change", refilter);
  document.getElementById("older").addEventListener("click", () => loadHistory(false).catch((e) => notice(e.message)));
  refreshServers().catch((e) => notice(e.message));
  setInterval(() => refreshServers().catch(() => null), 2000);
}
