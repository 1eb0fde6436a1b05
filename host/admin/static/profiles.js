// The configuration GUI: profile files as forms, problems shown next to their field, saved only when they pass.
import { api, ApiError, el, notice } from "./api.js";

const list = document.getElementById("profile-list");
const editor = document.getElementById("profile-editor");
let me = null;

async function loadList() {
  const folders = await api("GET", "/api/profiles");
  list.replaceChildren(...folders.map((folder) => el("div", { class: "folder" },
    el("h3", {}, folder.server || `${folder.folder} (not loaded)`),
    el("ul", {}, ...folder.files.map((file) => el("li", {},
      el("a", { href: "#", "data-file": `${folder.folder}/${file.name}`, onclick: (e) => { e.preventDefault(); open(folder.folder, file.name); } },
        file.name), file.problems.length ? el("span", { class: "badge warn" }, `${file.problems.length} problem(s)`) : null))),
    me.role === "admin" ? newNpcForm(folder.folder) : null)));
}

function newNpcForm(folder) {
  const id = el("input", { placeholder: "new npc id", pattern: "[a-z][a-z0-9_]{0,31}", "aria-label": "new NPC id" });
  const name = el("input", { placeholder: "name", "aria-label": "new NPC name" });
  const card = el("input", { type: "file", accept: ".png,.json", "aria-label": "character card" });
  return el("div", { class: "create" },
    el("div", { class: "row" }, id, name, el("button", { type: "button", onclick: async () => {
      try { const made = await api("POST", `/api/profiles/${folder}`, { id: id.value, name: name.value }); await loadList(); show(made); notice(""); }
      catch (error) { notice(error.message); }
    } }, "New from template")),
    el("div", { class: "row" }, card, el("button", { type: "button", onclick: async () => {
      if (!card.files.length) return;
      const form = new FormData();
      form.append("card", card.files[0]);
      if (id.value) form.append("npc_id", id.value);
      try { const made = await api("POST", `/api/profiles/${folder}/card`, form, { form: true }); await loadList(); show(made); notice(""); }
      catch (error) { notice(error.message); }
    } }, "Import card")));
}

async function open(folder, name) {
  show(await api("GET", `/api/profiles/${folder}/${name}`));
}

function input(field) {
  const attrs = { name: field.path, "data-field": field.path, "data-kind": field.kind, disabled: me.role !== "admin" };
  if (field.kind === "bool") return el("input", { ...attrs, type: "checkbox", checked: field.value });
  if (field.kind === "list") { const t = el("textarea", attrs); t.value = field.value.join("\n"); return t; }
  if (field.kind === "multiline") { const t = el("textarea", attrs); t.value = field.value; return t; }
  const i = el("input", { ...attrs, type: field.kind === "number" || field.kind === "integer" ? "text" : "text" });
  i.value = String(field.value);
  return i;
}

function values(form) {
  const out = {};
  for (const node of form.querySelectorAll("[data-field]")) {
    const kind = node.dataset.kind;
    if (kind === "bool") out[node.name] = node.checked;
    else if (kind === "list") out[node.name] = node.value.split("\n").filter((line) => line.trim());
    else out[node.name] = node.value;
  }
  return out;
}

function showProblems(form, problems) {
  for (const old of form.querySelectorAll(".field-error")) old.remove();
  for (const node of form.querySelectorAll(".invalid")) node.classList.remove("invalid");
  const general = form.querySelector(".general-errors");
  for (const problem of problems) {
    // A problem names a field; an unknown one (a missing field, the whole file) goes at the top.
    let node = form.querySelector(`[data-field="${CSS.escape(problem.field)}"]`);
    let parent = problem.field;
    while (!node && parent.includes(".")) {
      parent = parent.slice(0, parent.lastIndexOf("."));
      node = form.querySelector(`[data-field^="${CSS.escape(parent)}."]`);
    }
    const message = el("p", { class: "field-error", "data-error-for": problem.field, role: "alert" },
      `${problem.field}: ${problem.message}${problem.line ? ` (line ${problem.line})` : ""}`);
    if (node && node.dataset.field === problem.field) { node.classList.add("invalid"); node.after(message); }
    else general.append(message);
  }
}

function show(view) {
  const form = el("form", { "data-profile": `${view.folder}/${view.name}` },
    el("h2", {}, `${view.folder}/${view.name}`), el("div", { class: "general-errors" }),
    ...view.fields.map((field) => el("label", {}, el("span", {}, field.path), input(field))));
  const status = el("span", { class: "status" });
  const base = `/api/profiles/${view.folder}/${view.name}`;
  if (me.role === "admin") {
    form.querySelector(".general-errors").before(el("div", { class: "row actions" },
      el("button", { type: "submit" }, "Save"),
      el("button", { type: "button", onclick: async () => {
        const result = await api("POST", `${base}/check`, { values: values(form) });
        showProblems(form, result.problems);
        status.textContent = result.problems.length ? "" : "no problems";
      } }, "Check"),
      view.name === "server.toml" ? null : el("button", { type: "button", onclick: async () => {
        if (!confirm(`Delete ${view.name}?`)) return;
        await api("DELETE", base); editor.replaceChildren(); await loadList();
      } }, "Delete"),
      status));
    if (view.name !== "server.toml") form.append(trialBox(form, base));
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "";
    try {
      await api("PUT", base, { values: values(form) });
      showProblems(form, []);
      status.textContent = "saved";
      await loadList();
    } catch (error) {
      if (error instanceof ApiError && error.status === 422 && error.detail.problems) showProblems(form, error.detail.problems);
      else notice(error.message);
    }
  });
  editor.replaceChildren(form);
}

// Try a line against the form as it stands, unsaved: a brain answers through the hub and records nothing.
function trialBox(form, base) {
  const line = el("input", { placeholder: "a line to say to this NPC", maxlength: "1000", "aria-label": "line to try" });
  const reply = el("p", { class: "trial-reply", role: "status", "aria-live": "polite" });
  const button = el("button", { type: "button", onclick: async () => {
    if (!line.value.trim()) return;
    button.disabled = true;
    reply.className = "trial-reply";
    reply.textContent = "asking the NPC (the edit is not saved)...";
    try {
      const answer = await api("POST", `${base}/try`, { values: values(form), line: line.value });
      showProblems(form, []);
      const dropped = answer.dropped.length ? ` [guard dropped: ${answer.dropped.join("; ")}]` : "";
      reply.textContent = `${answer.npc}: ${answer.reply}${dropped}${answer.error ? ` (model error: ${answer.error})` : ""}`;
    } catch (error) {
      reply.className = "trial-reply trial-error";
      if (error instanceof ApiError && error.status === 422 && error.detail.problems) {
        showProblems(form, error.detail.problems);
        reply.textContent = "fix the problems above to try a line";
      } else reply.textContent = error.message;
    } finally { button.disabled = false; }
  } }, "Try line");
  return el("fieldset", { class: "trial" }, el("legend", {}, "Try a line before saving"),
    el("div", { class: "row" }, line, button), reply);
}

async function loadUsers() {
  const box = document.getElementById("users");
  const users = await api("GET", "/api/users");
  const name = el("input", { placeholder: "name", "aria-label": "new user name" });
  const password = el("input", { type: "password", placeholder: "password (8+)", "aria-label": "new user password", autocomplete: "new-password" });
  const role = el("select", { "aria-label": "new user role" }, ...["viewer", "operator", "admin"].map((r) => el("option", { value: r }, r)));
  box.replaceChildren(el("h3", {}, "Users"),
    el("ul", {}, ...users.map((u) => el("li", {}, `${u.name} (${u.role})`))),
    el("div", { class: "row" }, name, password, role, el("button", { type: "button", onclick: async () => {
      try { await api("POST", "/api/users", { name: name.value, password: password.value, role: role.value }); notice(""); await loadUsers(); }
      catch (error) { notice(error.message); }
    } }, "Add user")));
  box.hidden = false;
}

export function startProfiles(signedIn) {
  me = signedIn;
  if (me.role === "admin") document.addEventListener("tab", (event) => { if (event.detail === "profiles") loadUsers().catch((e) => notice(e.message)); });
  document.addEventListener("tab", (event) => { if (event.detail === "profiles") loadList().catch((e) => notice(e.message)); });
}
