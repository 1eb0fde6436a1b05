// Admins only: each server's voice bridge token. A new token is shown once, here, and never again: the host keeps
// only its salted hash. Hiding it (or leaving the tab) removes it from the page.
import { api, el, notice } from "./api.js";

const box = document.getElementById("bridge-tokens");

function when(ts) { return ts ? new Date(ts).toLocaleString() : ""; }

function describe(state) {
  if (!state.bridge) return "no [bridge] section in server.toml: plugins cannot connect";
  if (state.set_by) return `token set by ${state.set_by} at ${when(state.set_at)}`;
  if (state.revoked_by) return `no token: revoked by ${state.revoked_by} at ${when(state.revoked_at)}`;
  return "no token set here";
}

function shownOnce(made) {
  const output = el("code", { class: "new-token" }, made.token);
  const panel = el("div", { class: "token-once", role: "status" },
    el("p", {}, `New token for ${made.server}. Put it in the plugin's config now: it is not shown again.`),
    output,
    el("button", { type: "button", onclick: () => panel.remove() }, "Hide"));
  return panel;
}

function serverRow(state) {
  const base = `/api/servers/${encodeURIComponent(state.server)}/bridge-token`;
  const rotate = async () => {
    if (state.set_by && !confirm(`Replace the bridge token of ${state.server}? Plugins using it cannot reconnect.`)) return;
    try {
      const made = await api("POST", base);
      notice("");
      const row = serverRow(made);
      row.append(shownOnce(made));
      box.querySelector(`[data-server="${CSS.escape(state.server)}"]`).replaceWith(row);
    } catch (error) { notice(error.message); }
  };
  const revoke = async () => {
    if (!confirm(`Revoke the bridge token of ${state.server}? Plugins using it cannot reconnect.`)) return;
    try { await api("DELETE", base); notice(""); await loadTokens(); } catch (error) { notice(error.message); }
  };
  const env = state.token_env ? el("p", { class: "last" }, `Also taken: the token in ${state.token_env}, if set where the gateway runs.`) : null;
  return el("div", { class: "token", "data-server": state.server },
    el("strong", {}, state.server), " ", el("span", { class: "token-state" }, describe(state)), env,
    state.bridge ? el("div", { class: "row" },
      el("button", { type: "button", onclick: rotate }, state.set_by ? "Rotate token" : "Set token"),
      state.set_by ? el("button", { type: "button", onclick: revoke }, "Revoke") : null) : null);
}

async function loadTokens() {
  const servers = await api("GET", "/api/servers");
  const states = await Promise.all(servers.map((s) => api("GET", `/api/servers/${encodeURIComponent(s.name)}/bridge-token`)));
  box.replaceChildren(el("h3", {}, "Voice bridge tokens"), ...states.map(serverRow));
  box.hidden = false;
}

export function startTokens(signedIn) {
  if (signedIn.role !== "admin") return;
  document.addEventListener("tab", (event) => {
    if (event.detail === "profiles") loadTokens().catch((e) => notice(e.message));
    else box.replaceChildren();  // a token shown once does not stay in the page behind another tab
  });
}
