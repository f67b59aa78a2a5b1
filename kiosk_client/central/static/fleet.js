"use strict";
// The fleet view for IT staff: GET /api/v1/admin/fleet with the admin token, every 30 s.
const PROBLEMS = {
  not_enrolled: "non enrôlée",
  never_seen: "jamais connectée",
  offline: "hors ligne",
  out_of_service: "hors service",
  preflight_at_risk: "pré-vérification en échec",
  reset_check_failed: "remise à zéro en échec",
};
const STATES = {
  idle: "en attente",
  upcoming: "rendez-vous proche",
  waiting_for_clerk: "attend le conseiller",
  in_call: "en appel",
  ended: "fin de session",
  out_of_service: "hors service",
};
const DEVICES = { camera: "caméra", microphone: "micro", speaker: "haut-parleur", scanner: "scanner", printer: "imprimante" };
const DEVICE_STATES = { missing: "introuvable", busy: "occupé", error: "en erreur", failed: "en panne" };
const REFRESH_MS = 30000;
const COMMAND_REFRESH_MS = 2000; // while a command waits for its kiosk
// IT staff's commands to a kiosk (POST /api/v1/admin/kiosks/{id}/commands): each waits for the kiosk's
// next heartbeat (30 s at most), never after it expires; a kiosk refuses them during a citizen's session.
const COMMANDS = { screenshot: "Capture d'écran", reload: "Recharger", restart: "Redémarrer" };
const COMMAND_STATES = {
  pending: "en attente de la borne",
  delivered: "reçue par la borne",
  done: "faite",
  refused: "refusée",
  failed: "en échec",
  expired: "expirée",
};
const REASONS = {
  in_session: "un usager est en session",
  resetting: "remise à zéro en cours",
  staff_panel: "espace accueil ouvert",
  expired: "arrivée trop tard",
  unsupported: "impossible sur cette borne",
};
let timer = null;
let commandTimer = null;
let lastView = null;
let commandsByKiosk = {};
const screenshots = new Map(); // command id → object URL of its PNG (fetched once)

function problemText(code) {
  if (PROBLEMS[code]) return PROBLEMS[code];
  const device = /^device_([a-z_]+?)_([a-z_]+)$/.exec(code);
  return device ? `${DEVICES[device[1]] || device[1]} : ${DEVICE_STATES[device[2]] || device[2]}` : code;
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function time(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString("fr-FR", { timeZone: "Europe/Paris", dateStyle: "short", timeStyle: "short" });
}

// What the kiosk said of its staged update (its heartbeat), in words IT staff read at a glance.
const UPDATE_STATES = {
  downloading: "téléchargement",
  download_failed: "téléchargement échoué",
  waiting_idle: "attend que la borne soit libre",
  requested: "installation demandée",
  installing: "installation en cours",
  installed: "installée",
  failed: "ÉCHEC, version précédente rétablie",
  refused: "refusée, la centrale désigne une autre version",
  unconfirmed: "non confirmée auprès de la centrale",
};

function updateText(k) {
  if (k.software_target_missing) return `cible ${k.software_target} non téléversée`;
  const u = k.update;
  if (!u) return "—";
  const words = `${u.version} : ${UPDATE_STATES[u.state] || u.state}`;
  return u.error ? `${words} (${u.error})` : words;
}

function render(view) {
  const s = view.summary;
  const bornes = (n) => `${n} borne${n > 1 ? "s" : ""}`;
  document.getElementById("summary").textContent =
    `${bornes(s.kiosks)}, ${s.online} en ligne, ${s.with_problems} avec un problème, ` +
    `${s.at_risk} avec des rendez-vous menacés (${s.appointments_at_risk} rendez-vous)` +
    (s.off_target ? `, ${bornes(s.off_target)} hors de la version cible` : "") +
    (s.update_failed ? `, ${bornes(s.update_failed)} en échec de mise à jour.` : ".");
  const body = document.querySelector("#fleet tbody");
  body.replaceChildren();
  for (const k of view.kiosks) {
    const row = document.createElement("tr");
    row.dataset.kiosk = k.id;
    if (k.at_risk) row.className = "at-risk";
    else if (k.problems.length) row.className = "problem";
    cell(row, k.name, "name");
    cell(row, k.site_name);
    const state = STATES[k.state] || k.state || "?";
    const offline = k.last_seen ? `hors ligne depuis ${time(k.last_seen)}` : "jamais connectée";
    cell(row, k.online ? `en ligne (${state})` : offline, k.online ? "ok" : "bad");
    // Staged updates: the version it runs, and the one it should when they differ.
    const SOURCES = { pin: "épinglée", canary: "groupe pilote", fleet: "parc" };
    const target = k.software_target ? ` → cible ${k.software_target} (${SOURCES[k.software_target_source] || k.software_target_source})` : "";
    cell(row, (k.software_version || "—") + (k.off_target ? target : ""), k.off_target ? "bad version" : "version");
    cell(row, updateText(k), k.update && k.update.state === "failed" ? "bad update" : "update");
    cell(row, k.problems.length ? k.problems.map(problemText).join(", ") : "aucun", k.problems.length ? "bad" : "ok");
    const reset = k.last_reset_check;
    cell(row, reset ? `${reset.passed ? "réussi" : "ÉCHEC"} le ${time(reset.at)}` : "—", reset && !reset.passed ? "bad" : "");
    cell(row, k.appointments_left_today.map((a) => `${time(a.start)} ${a.service}`).join(", ") || "aucun");
    row.appendChild(commandsCell(k.id));
    body.appendChild(row);
  }
  document.getElementById("fleet").hidden = false;
}

function authHeaders() {
  return { Authorization: `Bearer ${sessionStorage.getItem("fleet-token")}` };
}

function commandsCell(kioskId) {
  const td = document.createElement("td");
  td.className = "commands";
  for (const [kind, words] of Object.entries(COMMANDS)) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = words;
    b.dataset.command = kind;
    b.addEventListener("click", () => sendCommand(kioskId, kind));
    td.appendChild(b);
  }
  const list = document.createElement("ul");
  const mine = commandsByKiosk[kioskId] || [];
  for (const c of mine.slice(0, 3)) {
    const li = document.createElement("li");
    li.dataset.commandId = c.id;
    li.dataset.state = c.state;
    const reason = c.reason ? ` (${REASONS[c.reason] || c.reason})` : "";
    li.textContent = `${COMMANDS[c.kind] || c.kind} : ${COMMAND_STATES[c.state] || c.state}${reason}, ${time(c.created_at)}`;
    list.appendChild(li);
  }
  td.appendChild(list);
  const shot = mine.find((c) => c.screenshot);
  if (shot) {
    const img = document.createElement("img");
    img.alt = `Écran de la borne (${shot.screenshot.width}×${shot.screenshot.height}), ${time(shot.finished_at)}`;
    img.dataset.commandId = shot.id;
    td.appendChild(img);
    showScreenshot(img, shot);
  }
  return td;
}

async function showScreenshot(img, command) {
  // Fetched with the admin token (an <img src> could not send it), shown as a blob: image.
  if (!screenshots.has(command.id)) {
    const response = await fetch(command.screenshot.url, { headers: authHeaders() });
    if (!response.ok) return;
    screenshots.set(command.id, URL.createObjectURL(await response.blob()));
  }
  img.src = screenshots.get(command.id);
}

async function sendCommand(kioskId, kind) {
  const status = document.getElementById("status");
  if (kind === "restart" && !window.confirm("Redémarrer la borne ? (refusé si un usager est en session)")) return;
  const response = await fetch(`/api/v1/admin/kiosks/${encodeURIComponent(kioskId)}/commands`, {
    method: "POST",
    headers: { ...authHeaders(), "Content-Type": "application/json" },
    body: JSON.stringify({ kind }),
  });
  if (!response.ok) {
    const error = await response.json().catch(() => ({ error: { message: `HTTP ${response.status}` } }));
    status.textContent = `Commande refusée par le serveur central : ${error.error.message}`;
    return;
  }
  status.textContent = `Commande « ${COMMANDS[kind]} » envoyée : la borne la reçoit à son prochain signal de vie (30 s au plus).`;
  await refreshCommands();
}

async function refreshCommands() {
  const response = await fetch("/api/v1/admin/commands", { headers: authHeaders() });
  if (!response.ok) return;
  const listing = await response.json();
  commandsByKiosk = {};
  for (const c of listing.commands) (commandsByKiosk[c.kiosk_id] ||= []).push(c);
  if (lastView) render(lastView);
  // Follow a command until the kiosk answered (or it expired), every 2 s.
  clearTimeout(commandTimer);
  if (listing.commands.some((c) => c.state === "pending" || c.state === "delivered")) {
    commandTimer = setTimeout(refreshCommands, COMMAND_REFRESH_MS);
  }
}

async function refresh() {
  const token = sessionStorage.getItem("fleet-token");
  if (!token) return;
  const status = document.getElementById("status");
  try {
    const response = await fetch("/api/v1/admin/fleet", { headers: { Authorization: `Bearer ${token}` } });
    if (response.status === 401 || response.status === 403) {
      status.textContent = "Jeton refusé.";
      sessionStorage.removeItem("fleet-token");
      return;
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    lastView = await response.json();
    render(lastView);
    await refreshCommands();
    status.textContent = `Mis à jour à ${new Date().toLocaleTimeString("fr-FR")}.`;
  } catch (error) {
    status.textContent = `Le serveur central ne répond pas (${error.message}) : nouvel essai dans 30 s.`;
  }
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("fleet-token", document.getElementById("token").value);
  document.getElementById("token").value = "";
  refresh();
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
});
if (sessionStorage.getItem("fleet-token")) {
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
}
