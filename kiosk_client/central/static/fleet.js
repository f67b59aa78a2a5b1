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
let timer = null;

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

function render(view) {
  const s = view.summary;
  const bornes = (n) => `${n} borne${n > 1 ? "s" : ""}`;
  document.getElementById("summary").textContent =
    `${bornes(s.kiosks)}, ${s.online} en ligne, ${s.with_problems} avec un problème, ` +
    `${s.at_risk} avec des rendez-vous menacés (${s.appointments_at_risk} rendez-vous).`;
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
    cell(row, k.software_version || "—");
    cell(row, k.problems.length ? k.problems.map(problemText).join(", ") : "aucun", k.problems.length ? "bad" : "ok");
    const reset = k.last_reset_check;
    cell(row, reset ? `${reset.passed ? "réussi" : "ÉCHEC"} le ${time(reset.at)}` : "—", reset && !reset.passed ? "bad" : "");
    cell(row, k.appointments_left_today.map((a) => `${time(a.start)} ${a.service}`).join(", ") || "aucun");
    body.appendChild(row);
  }
  document.getElementById("fleet").hidden = false;
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
    render(await response.json());
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
