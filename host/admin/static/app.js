// The operator's page: sign-in, tabs, and the three views (live, profiles, charts).
import { api, ApiError, notice, setCsrf } from "./api.js";
import { startLive } from "./live.js";
import { startProfiles } from "./profiles.js";
import { startCharts } from "./charts.js";
import { startTokens } from "./tokens.js";

const signIn = document.getElementById("sign-in");
const signInError = document.getElementById("sign-in-error");
let started = false;

function show(me) {
  setCsrf(me.csrf_token);
  document.body.dataset.role = me.role;
  const who = document.getElementById("who");
  who.textContent = `${me.name} (${me.role})`;
  who.hidden = false;
  document.getElementById("sign-out").hidden = false;
  signIn.hidden = true;
  document.getElementById("app").hidden = false;
  if (!started) {
    started = true;
    startLive(me);
    startProfiles(me);
    startTokens(me);
    startCharts();
  }
}

signIn.addEventListener("submit", async (event) => {
  event.preventDefault();
  signInError.textContent = "";
  try {
    show(await api("POST", "/api/session", {
      name: document.getElementById("sign-in-name").value,
      password: document.getElementById("sign-in-password").value,
    }));
  } catch (error) {
    signInError.textContent = error instanceof ApiError ? error.message : String(error);
  }
});

document.getElementById("sign-out").addEventListener("click", async () => {
  await api("DELETE", "/api/session").catch(() => null);
  location.reload();
});

for (const button of document.querySelectorAll("nav button")) {
  button.addEventListener("click", () => {
    for (const other of document.querySelectorAll("nav button")) other.classList.toggle("active", other === button);
    for (const tab of document.querySelectorAll(".tab")) tab.hidden = tab.id !== `tab-${button.dataset.tab}`;
    document.dispatchEvent(new CustomEvent("tab", { detail: button.dataset.tab }));
  });
}

api("GET", "/api/me").then(show).catch((error) => {
  if (!(error instanceof ApiError && error.status === 401)) notice(String(error));
});
