// The game master's map of a `table` server: tokens on the x-z plane (x east, z south), moved by dragging.
// Every move is sent to /api/table/<server>/tokens, which the host treats exactly like positions from a game.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const GRID = 5;
const $ = (id) => document.getElementById(id);
const server = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
let board = { npcs: [], tokens: [] };
let csrf = null;

function setState(state, text) {
  $("state").dataset.state = state;
  $("state").textContent = text;
}

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  const response = await fetch(path, { method, headers, body: body && JSON.stringify(body), credentials: "same-origin" });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.detail || `HTTP ${response.status}`);
  return data;
}

function element(name, attributes, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  parent.append(node);
  return node;
}

function draw() {
  const map = $("map");
  map.replaceChildren();
  for (let v = -40; v <= 40; v += GRID) {
    element("line", { class: "grid", x1: v, y1: -40, x2: v, y2: 40 }, map);
    element("line", { class: "grid", x1: -40, y1: v, x2: 40, y2: v }, map);
  }
  const ranges = Object.fromEntries(board.npcs.map((npc) => [npc.id, npc]));
  for (const token of board.tokens) {
    const npc = ranges[token.name];
    if (npc) {
      element("circle", { class: "speaking", cx: token.x, cy: token.z, r: npc.speaking_range }, map);
      element("circle", { class: "hearing", cx: token.x, cy: token.z, r: npc.hearing_range }, map);
    }
  }
  for (const token of board.tokens) {
    const group = element("g", { class: `token ${token.kind}`, "data-name": token.name, transform: `translate(${token.x} ${token.z})` }, map);
    element("circle", { r: 1.2 }, group);
    // yaw 0 faces +z (south, down on the map), 90 faces -x (west)
    const radians = (token.yaw * Math.PI) / 180;
    element("line", { x1: 0, y1: 0, x2: -Math.sin(radians) * 1.6, y2: Math.cos(radians) * 1.6 }, group);
    const label = element("text", { y: -1.8 }, group);
    label.textContent = ranges[token.name]?.name || token.name;
    group.addEventListener("pointerdown", (event) => drag(event, token, group));
    group.addEventListener("dblclick", () => move({ ...token, yaw: ((token.yaw + 90 + 180) % 360) - 180 }));
  }
  const players = board.tokens.filter((token) => token.kind === "player");
  $("players").replaceChildren(
    ...players.map((token) => {
      const item = document.createElement("li");
      item.textContent = `${token.name} (${token.x.toFixed(1)}, ${token.z.toFixed(1)}) `;
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Invite";
      button.dataset.player = token.name;
      button.addEventListener("click", () => invite(token.name));
      item.append(button);
      return item;
    }),
  );
}

function toMap(event) {
  const point = $("map").createSVGPoint();
  point.x = event.clientX;
  point.y = event.clientY;
  const local = point.matrixTransform($("map").getScreenCTM().inverse());
  return { x: Math.max(-40, Math.min(40, local.x)), z: Math.max(-40, Math.min(40, local.y)) };
}

function drag(event, token, group) {
  event.preventDefault();
  group.setPointerCapture(event.pointerId);
  let at = { x: token.x, z: token.z };
  const follow = (moveEvent) => {
    at = toMap(moveEvent);
    group.setAttribute("transform", `translate(${at.x} ${at.z})`);
  };
  const drop = () => {
    group.removeEventListener("pointermove", follow);
    group.removeEventListener("pointerup", drop);
    move({ ...token, x: Math.round(at.x * 2) / 2, z: Math.round(at.z * 2) / 2 });
  };
  group.addEventListener("pointermove", follow);
  group.addEventListener("pointerup", drop);
}

async function move(token) {
  try {
    board = await api("PUT", `/api/table/${encodeURIComponent(server)}/tokens`, { tokens: [token] });
    setState("live", `${token.name} moved to (${token.x}, ${token.z}).`);
  } catch (error) {
    setState("closed", `Not moved: ${error.message}`);
  }
  draw();
}

async function invite(player) {
  try {
    const answer = await api("POST", `/api/table/${encodeURIComponent(server)}/invites`, { player });
    $("invite-url").value = answer.url;
    $("invite-url").select();
    setState("live", `Invite for ${player}: give them the link; it works once, within ${answer.minutes} minutes.`);
  } catch (error) {
    setState("closed", `No invite: ${error.message}`);
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  $("server").textContent = server;
  try {
    const me = await fetch("/api/me", { credentials: "same-origin" });
    if (me.ok) csrf = (await me.json()).csrf_token;
    board = await api("GET", `/api/table/${encodeURIComponent(server)}`);
    setState("live", "Ready.");
  } catch (error) {
    setState("closed", `Cannot load the board: ${error.message}`);
  }
  draw();
  $("add").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("player-name").value.trim();
    if (name) move({ name, kind: "player", x: 0, z: 4, yaw: 180 });
    $("player-name").value = "";
  });
});
