// The clerk console: today's appointments, join one, see and hear the citizen, hang up.
// Plain JavaScript, no build step. It speaks the clerk side of the Central API v1.
"use strict";

const API = "/api/v1";
const token = (() => {
  const match = /token=([^&]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem("clerkToken", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname);  // keep the token out of the address bar
  }
  return sessionStorage.getItem("clerkToken");
})();

const $ = (id) => document.getElementById(id);
const state = {
  appointment: null, pc: null, callId: null, version: 0, local: null, muted: false, phase: "idle", joinedAt: null,
  connectedAt: null, released: [],  // released: the local tracks of the last call, stopped (for the tests)
  control: null, controlState: "none", seq: 0, received: [], screen: null, incident: null,
  documentsChannel: null, incoming: {}, documents: {},  // documents: kept across a dropped call
  agenda: [], walkIn: null,  // walkIn: the code shown for a walk-in session, see below
};
window.clerkConsole = state;  // inspected by the browser tests

async function api(method, path, body) {
  const response = await fetch(API + path, {
    method,
    headers: { "Authorization": `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error((data.error && data.error.message) || response.statusText);
    error.code = data.error && data.error.code;
    throw error;
  }
  return data;
}

function time(iso) {
  return new Date(iso).toLocaleTimeString("fr-FR", { hour: "2-digit", minute: "2-digit" });
}

async function refreshAgenda() {
  if (!token) { $("agenda-status").textContent = "Lien de connexion incomplet (jeton manquant)."; return; }
  try {
    const data = await api("GET", "/clerk/appointments");
    $("who").textContent = data.clerk.display_name;
    state.agenda = data.appointments;
    noticeWalkIn(data.appointments);
    $("agenda-status").textContent = data.appointments.length ? "" : "Aucun rendez-vous.";
    const list = $("appointments");
    list.replaceChildren(...data.appointments.map((a) => {
      const item = document.createElement("li");
      // A hung-up appointment is finished for good: the central refuses to join it, so no button.
      const finished = a.finished || a.call.ended;
      const ready = a.call.has_offer && !finished;
      item.className = finished ? "finished" : ready ? "ready" : "";
      item.dataset.appointment = a.id;
      const when = document.createElement("span");
      when.className = "when";
      const who = a.walk_in ? walkInText("listed") : a.citizen_name;
      when.textContent = `${time(a.start)} – ${a.service}${who ? ` · ${who}` : ""}`;
      const where = document.createElement("span");
      where.className = "state";
      where.textContent = `${a.site_name} · ${finished ? "terminé" : ready ? "l'usager est en ligne" : "borne pas encore connectée"}`;
      item.append(when, where);
      if (!finished) {
        const join = document.createElement("button");
        join.type = "button";
        join.textContent = "Rejoindre";
        join.disabled = state.appointment !== null;
        join.addEventListener("click", () => joinAppointment(a));
        item.append(join);
      }
      return item;
    }));
  } catch (error) {
    $("agenda-status").textContent = `Impossible de charger les rendez-vous : ${error.message}`;
  }
}

function setStatus(text) { $("call-status").textContent = text; }

async function localMedia() {
  if (state.local && state.local.getTracks().every((t) => t.readyState === "live")) return state.local;
  try {
    state.local = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch (error) {
    setStatus(`Caméra ou micro indisponible (${error.message}) : l'usager ne vous verra pas.`);
    state.local = new MediaStream();
  }
  $("local").srcObject = state.local;
  return state.local;
}

function iceGatheringComplete(pc) {
  // The kiosk (aiortc) does not trickle ICE: the answer must carry every candidate.
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", check); resolve(); } };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(resolve, 3000);
  });
}

async function iceServers() {
  try {
    const config = await api("GET", "/clerk/config");
    return config.ice_servers.map((s) => ({ urls: s.urls, username: s.username || undefined, credential: s.credential || undefined }));
  } catch (error) {
    return [];  // loopback and LAN still work without STUN/TURN
  }
}

// The camera and microphone are the clerk's: once the call is over (or its connection lost) every
// track is stopped, so the camera light goes out; a reconnect asks for them again.
function releaseLocalMedia() {
  if (state.local) {
    for (const track of state.local.getTracks()) { track.stop(); state.released.push(track); }
  }
  state.local = null;
  $("local").srcObject = null;
}

// On a long round trip (a satellite kiosk: 600 ms) a lost packet's retransmission arrives one round
// trip later, and Chromium's jitter buffer (65-140 ms here) had already frozen the picture: 12-30
// freezes a minute. Holding the kiosk's camera and voice for a round trip and a little more lets the
// retransmissions arrive in time (measured on the emulated satellite link: 0 freezes a minute).
// Short round trips keep the browser's own choice. The form view is not held: the clerk acts on it,
// and the delay of their own clicks matters more there.
const HOLD_FROM_RTT_S = 0.15;
function retransmissionHoldMs(rttSeconds) {
  if (!(rttSeconds > HOLD_FROM_RTT_S)) return null;
  return Math.min(2000, Math.round(1100 * rttSeconds + 50));
}
window.retransmissionHoldMs = retransmissionHoldMs;  // for the browser tests

// One slow answer to a consent check (a busy kiosk: 154 ms once on loopback in CI) is not a long
// path: the smaller of the latest round trip and the mean of all of them decides. (Not the smaller
// of two samples two seconds apart: a satellite call then waited seconds for its hold, and froze.)
function pathRoundTrip(pair) {
  const current = pair && pair.currentRoundTripTime;
  const total = pair && pair.totalRoundTripTime;
  const count = pair && pair.responsesReceived;
  if (typeof current !== "number" || typeof total !== "number" || !(count > 0)) return null;
  return Math.min(current, total / count);
}
window.pathRoundTrip = pathRoundTrip;

async function holdForRetransmissions(pc) {
  state.holdMs = null;  // each call measures its own path
  while (state.pc === pc && pc.connectionState !== "closed") {
    let rtt = null;
    try {
      if (state.pc !== pc) break;
      const stats = await pc.getStats();
      stats.forEach((report) => {
        if (report.type !== "transport" || !report.selectedCandidatePairId) return;
        const pair = stats.get(report.selectedCandidatePairId);
        if (pair) rtt = pathRoundTrip(pair);
      });
      let hold = retransmissionHoldMs(rtt);
      // The round trip wobbles by a few ms: the buffer is moved only for a real change.
      if (hold !== null && state.holdMs && Math.abs(hold - state.holdMs) < 50) hold = state.holdMs;
      const videos = pc.getTransceivers().filter((t) => t.receiver.track.kind === "video");
      for (const transceiver of pc.getTransceivers()) {
        if (transceiver.receiver.track.kind === "video" && videos.indexOf(transceiver) !== 0) continue;
        if (transceiver.receiver.jitterBufferTarget !== hold) transceiver.receiver.jitterBufferTarget = hold;
      }
      state.holdMs = hold;
    } catch (error) {
      // An older browser without jitterBufferTarget: it keeps its own buffer.
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

async function answer(call) {
  if (state.pc) state.pc.close();
  // A new connection brings new tracks: a <video> keeps playing the first track of its stream, so a
  // stream still holding the old, ended one would stay black.
  $("remote").srcObject = null;
  $("form-view").srcObject = null;
  const pc = new RTCPeerConnection({ iceServers: await iceServers() });
  state.pc = pc;
  state.callId = call.call_id;
  const media = await localMedia();
  for (const track of media.getTracks()) pc.addTrack(track, media);
  pc.addEventListener("track", (event) => {
    // The kiosk's offer carries: audio, its camera, then the live form view (second video track).
    const videos = pc.getTransceivers().filter((t) => t.receiver.track.kind === "video");
    const isForm = event.track.kind === "video" && videos.indexOf(event.transceiver) === 1;
    const target = $(isForm ? "form-view" : "remote");
    // A fresh stream with every track so far: the element loads it anew, rather than relying on a
    // stream that was empty (or held an ended track) when it was attached.
    const before = target.srcObject ? target.srcObject.getTracks().filter((t) => t.readyState === "live") : [];
    target.srcObject = new MediaStream([...before, event.track]);
  });
  pc.addEventListener("datachannel", (event) => {
    if (event.channel.label === "documents") { attachDocuments(event.channel); return; }
    if (event.channel.label !== "control") return;
    state.control = event.channel;
    event.channel.addEventListener("message", (message) => onControlMessage(JSON.parse(message.data)));
  });
  pc.addEventListener("connectionstatechange", () => {
    if (state.pc !== pc) return;
    if (pc.connectionState === "connected") {
      state.phase = "in_call";
      if (state.connectedAt === null) state.connectedAt = Date.now();  // a reconnect keeps counting
      setStatus("En communication depuis");
      showTimer();
      showKioskState();
    }
    if (pc.connectionState === "failed") {
      state.phase = "reconnecting";
      setStatus("Connexion perdue : la borne va rappeler.");
      releaseLocalMedia();
      showKioskState();
    }
  });
  await pc.setRemoteDescription(call.offer);
  await pc.setLocalDescription(await pc.createAnswer());
  await iceGatheringComplete(pc);
  const result = await api("PUT", `/appointments/${state.appointment.id}/answer`,
    { type: "answer", sdp: pc.localDescription.sdp, call_id: call.call_id });
  state.version = result.version;
  state.joinedAt = Date.now();
  setStatus("Connexion à la borne…");
  holdForRetransmissions(pc);
}

async function followCall() {
  const appointment = state.appointment;
  const answered = new Set();  // the calls this console answered
  while (state.appointment === appointment) {
    let call;
    try {
      call = await api("GET", `/appointments/${appointment.id}/call?after=${state.version}&wait=25`);
    } catch (error) {
      setStatus(`Serveur injoignable, nouvel essai… (${error.message})`);
      await new Promise((r) => setTimeout(r, 2000));
      continue;
    }
    if (call === null || state.appointment !== appointment) continue;
    state.version = call.version;
    if (call.ended) {
      // Ended is final: the appointment is finished, whoever hung up.
      const ours = answered.has(call.call_id);
      endCall(!ours ? "Ce rendez-vous est terminé : il ne peut plus être rejoint."
        : call.ended_by === "kiosk" ? "L'usager a terminé l'entretien." : "Entretien terminé.");
      return;
    }
    if (call.has_offer && !call.has_answer) {
      // First join, or the kiosk reconnecting after a dropped connection: answer its new offer.
      try {
        await answer(call);
        answered.add(call.call_id);
      } catch (error) {
        if (error.code === "appointment_finished" || error.code === "call_ended") {
          endCall("Ce rendez-vous est terminé : il ne peut plus être rejoint.");
          return;
        }
        setStatus(`Échec de la connexion : ${error.message}`);
      }
    }
  }
}

// The documents box lives in the call; after it, it moves to the agenda while it holds documents of
// the call that ended (to download them), and it starts empty for the next citizen.
function placeDocuments(inCall) {
  const box = document.querySelector(".documents-box");
  const held = Object.keys(state.documents).length + Object.keys(state.incoming).length > 0;
  if (inCall || !held) document.querySelector(".citizen-side").append(box);
  else $("agenda").append(box);
  $("documents-title").textContent = inCall ? "Documents de l'usager" : "Documents du dernier entretien";
}

function forgetDocuments() {
  for (const doc of Object.values(state.documents)) URL.revokeObjectURL(doc.url);
  state.documents = {};
  state.incoming = {};
  state.prints = {};  // what was sent to print: for this call only
  for (const id of ["documents-status", "documents-error", "control-error", "print-error"]) $(id).textContent = "";
  renderDocuments();
  renderPrints();
}

async function joinAppointment(appointment) {
  $("last-call").textContent = "";
  closeRating();  // another citizen: the last one's rating is sent or skipped by now, or never
  // In a call, no walk-in: the availability ends now (the central would end it with the answer).
  if (state.availability && state.availability.available) {
    state.availability = { ...state.availability, available: false, ended: "in_call" };
    showAvailability();
    api("PUT", "/clerk/walk-in-availability", { available: false }).then((answer) => {
      state.availability = { ...answer, ended: "in_call" };
      showAvailability();
    }).catch(() => {});
  }
  forgetDocuments();  // another citizen: nothing of the last one's papers in this call
  placeDocuments(true);
  state.appointment = appointment;
  state.version = 0;
  state.phase = "joining";
  state.connectedAt = null;
  state.screen = null;
  state.incident = null;  // another citizen's page
  showIncident();
  $("call").hidden = false;
  document.body.classList.add("in-call");
  $("call-title").textContent = `${time(appointment.start)} – ${appointment.service} · ${appointment.site_name}`;
  $("citizen").textContent = appointment.citizen_name ? `Usager : ${appointment.citizen_name}` : "Usager : nom non communiqué";
  setStatus("En attente de la borne…");
  showTimer();
  showKioskState();
  showZoom();
  refreshAgenda();
  followCall();
}

function endCall(message) {
  // A call this console was in (connected at least once) is rated from the agenda, once it is over.
  if (state.appointment && state.connectedAt !== null) askRating(state.appointment);
  showControl("none");
  state.control = null;
  state.documentsChannel = null;
  showDocumentControls();
  $("form-view").srcObject = null;
  if (state.pc) state.pc.close();
  state.pc = null;
  releaseLocalMedia();
  state.appointment = null;
  state.callId = null;
  state.phase = "ended";
  state.screen = null;
  state.incident = null;
  showIncident();
  $("remote").srcObject = null;
  // Back to the agenda, where the message stays until the next call.
  $("call").hidden = true;
  document.body.classList.remove("in-call");
  placeDocuments(false);
  $("last-call").textContent = message;
  setStatus(message);
  showTimer();
  showZoom();
  refreshAgenda();
}

// ---------------------------------------------------------------- the call's time and the kiosk's screen
function showTimer() {
  const timer = $("call-timer");
  if (state.connectedAt === null || !state.appointment) { timer.textContent = ""; return; }
  const seconds = Math.max(0, Math.floor((Date.now() - state.connectedAt) / 1000));
  timer.textContent = `${String(Math.floor(seconds / 60)).padStart(2, "0")}:${String(seconds % 60).padStart(2, "0")}`;
}
setInterval(showTimer, 1000);

const LANGUAGES = { fr: "en français", en: "en anglais", de: "en allemand", es: "en espagnol", it: "en italien", ar: "en arabe" };
const DOCUMENTS_SHOWN = {
  closed: "Panneau des documents fermé.",
  open: "Panneau des documents ouvert (il remplace le formulaire sur l’écran de l’usager ; quand vous avez la main, un clic sur le formulaire le referme).",
  scanning: "Numérisation en cours…",
  sending: "Envoi d'un document en cours…",
};

// What the citizen sees, in words: from this console's own view of the call, then from the kiosk's
// kiosk.screen messages (never citizen data: states, a count, a language code).
function showKioskState() {
  const lines = [];
  const add = (text, warn) => {
    const item = document.createElement("li");
    item.textContent = text;
    if (warn) item.className = "warn";
    lines.push(item);
  };
  if (state.phase === "joining") add("La borne attend l'entretien : connexion en cours…");
  else if (state.phase === "reconnecting") add("Connexion perdue : la borne va rappeler.", true);
  else if (state.phase === "in_call") add("L'usager voit l'entretien.");
  const screen = state.screen;
  if (screen && state.phase === "in_call") {
    add(DOCUMENTS_SHOWN[screen.documents] || "Panneau des documents : état inconnu.");
    if (screen.pages > 0) add(`${screen.pages} page${screen.pages > 1 ? "s" : ""} numérisée${screen.pages > 1 ? "s" : ""}, pas encore envoyée${screen.pages > 1 ? "s" : ""}.`);
    add(`Borne ${LANGUAGES[screen.language] || `en langue « ${screen.language} »`}.`);
    add(`Page affichée à ${Math.round(screen.zoom * 100)} %.`);
    if (!screen.microphone) add("L'usager a coupé son micro.", true);
    if (!screen.camera) add("L'usager a coupé sa caméra.", true);
  }
  $("kiosk-state").replaceChildren(...lines);
}

function validScreen(message) {
  return ["closed", "open", "scanning", "sending"].includes(message.documents)
    && Number.isInteger(message.pages) && message.pages >= 0 && message.pages <= 99
    && typeof message.language === "string" && /^[a-z]{2}$/.test(message.language)
    && ZOOM_LEVELS.includes(message.zoom)
    && typeof message.microphone === "boolean" && typeof message.camera === "boolean";
}

// ---------------------------------------------------------------- the clerk's zoom of the form view
// The kiosk's own levels (the citizen's "Agrandir la page"); only with control, and only with a kiosk
// that announced it understands zoom by sending kiosk.screen.
const ZOOM_LEVELS = [1, 1.25, 1.5, 1.75, 2];

function showZoom() {
  const screen = state.screen;
  const usable = Boolean(screen) && state.controlState === "granted";
  const index = screen ? ZOOM_LEVELS.indexOf(screen.zoom) : 0;
  $("zoom-out").disabled = !usable || index <= 0;
  $("zoom-in").disabled = !usable || index >= ZOOM_LEVELS.length - 1;
  $("zoom-level").textContent = screen ? `${Math.round(screen.zoom * 100)} %` : "";
}

function zoomBy(step) {
  if (!state.screen) return;
  const index = ZOOM_LEVELS.indexOf(state.screen.zoom) + step;
  if (index < 0 || index >= ZOOM_LEVELS.length) return;
  sendControl({ type: "zoom", level: ZOOM_LEVELS[index] });
}
$("zoom-in").addEventListener("click", () => zoomBy(1));
$("zoom-out").addEventListener("click", () => zoomBy(-1));

$("hangup").addEventListener("click", async () => {
  const appointment = state.appointment;
  if (!appointment || !state.callId) { endCall("Entretien terminé."); return; }
  const callId = state.callId;
  // Signal first, then close: the kiosk must learn it is a hang-up, not a dropped connection.
  let confirmed = true;
  try { await api("POST", `/appointments/${appointment.id}/hangup`, { call_id: callId, reason: "clerk_hung_up" }); }
  catch (error) { confirmed = false; }
  endCall(confirmed ? "Entretien terminé." : "Entretien terminé (le serveur n'a pas confirmé).");
});

$("mute").addEventListener("click", () => {
  state.muted = !state.muted;
  if (state.local) for (const track of state.local.getAudioTracks()) track.enabled = !state.muted;
  $("mute").textContent = state.muted ? "Rallumer mon micro" : "Couper mon micro";
});

// ---------------------------------------------------------------- remote control of the form view
const ERRORS = {
  not_granted: "L'usager ne vous a pas donné la main.",
  out_of_range: "Cette valeur n'est pas acceptée par la borne.",
  not_allowed: "Ce site n'est pas autorisé pour ce rendez-vous.",
  citizen_only_field: "Seul l'usager peut remplir ce champ.",
  no_form: "Le formulaire n'est pas disponible sur la borne pour le moment.",
};

// ---------------------------------------------------------------- the form page reloaded on the kiosk
// form.incident: the kiosk's page died (its renderer crashed or was killed) or stayed blank, and the
// kiosk reloaded it, or gave up. What the page held is lost: the clerk must know before typing on.
const INCIDENT_CAUSES = {
  crashed: "la page a planté",
  killed: "le processus de la page a été arrêté",
  abnormal: "la page s'est arrêtée anormalement",
  blank: "la page était restée blanche",
};

function validIncident(message) {
  return message.v === 1 && Object.hasOwn(INCIDENT_CAUSES, message.cause)
    && (message.outcome === "reloaded" || message.outcome === "failed")
    && Number.isInteger(message.attempts) && message.attempts >= 0 && message.attempts <= 9
    && Object.keys(message).length === 5;
}

function showIncident() {
  const incident = state.incident;
  const box = $("form-incident");
  box.hidden = !incident;
  if (!incident) return;
  box.classList.toggle("failed", incident.outcome === "failed");
  const cause = INCIDENT_CAUSES[incident.cause];
  $("form-incident-text").textContent = incident.outcome === "reloaded"
    ? `La page du formulaire s'est rechargée après un incident sur la borne : ce qui n'était pas envoyé est à ressaisir. (${cause})`
    : `La page du formulaire n'a pas pu être rechargée sur la borne (${cause}, ${incident.attempts} essai${incident.attempts > 1 ? "s" : ""}) : ce qui n'était pas envoyé est perdu. L'usager voit un message d'attente ; « Aller » vers une adresse, ou « Réessayer » sur la borne, relance la page.`;
}
$("form-incident-ok").addEventListener("click", () => { state.incident = null; showIncident(); });

function sendControl(message) {
  if (!state.control || state.control.readyState !== "open") return null;
  state.seq += 1;
  state.control.send(JSON.stringify({ v: 1, seq: state.seq, ...message }));
  return state.seq;
}

function showControl(control) {
  state.controlState = control;
  const granted = control === "granted";
  $("control-state").textContent = {
    none: "L'usager a la main.",
    requested: "Demande envoyée : l'usager répond sur la borne…",
    granted: "Vous avez la main sur le formulaire.",
  }[control] || control;
  $("ask-control").hidden = control !== "none";
  $("release-control").hidden = !granted;
  for (const el of document.querySelectorAll("#address input, #address button, #type input, #type button")) el.disabled = !granted;
  showZoom();
}

function onControlMessage(message) {
  state.received.push(message);
  if (message.type === "state") {
    showControl(message.control);
    if (message.url && document.activeElement !== $("address-input")) $("address-input").value = message.url;
  } else if (message.type === "kiosk.screen") {
    if (validScreen(message)) {
      state.screen = message;
      showKioskState();
      showZoom();
    }
  } else if (message.type === "form.incident") {
    if (validIncident(message)) {
      state.incident = message;
      showIncident();
    }
  } else if (message.type === "error") {
    $("control-error").textContent = ERRORS[message.code] || message.message;
  } else if (message.type === "ack") {
    $("control-error").textContent = "";
  }
}

$("ask-control").addEventListener("click", () => sendControl({ type: "control.request" }));
$("release-control").addEventListener("click", () => sendControl({ type: "control.release" }));
$("address").addEventListener("submit", (event) => {
  event.preventDefault();
  sendControl({ type: "navigate", url: $("address-input").value.trim() });
});
$("type").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("type-input").value;
  if (text) sendControl({ type: "text", text });
  $("type-input").value = "";
});
for (const button of document.querySelectorAll("#type [data-key]")) {
  button.addEventListener("click", () => sendControl({ type: "key", key: button.dataset.key }));
}

// Pointer: normalised to the picture inside the <video> (object-fit: contain leaves bars).
function normalised(event) {
  const video = $("form-view");
  const box = video.getBoundingClientRect();
  const vw = video.videoWidth, vh = video.videoHeight;
  if (!vw || !vh) return null;
  const scale = Math.min(box.width / vw, box.height / vh);
  const left = box.left + (box.width - vw * scale) / 2, top = box.top + (box.height - vh * scale) / 2;
  const x = (event.clientX - left) / (vw * scale), y = (event.clientY - top) / (vh * scale);
  return x < 0 || x > 1 || y < 0 || y > 1 ? null : { x, y };
}
let lastMove = 0;
const view = $("form-view");
view.addEventListener("mousemove", (event) => {
  const p = normalised(event);
  if (p && state.controlState === "granted" && performance.now() - lastMove > 30) {
    lastMove = performance.now();
    sendControl({ type: "pointer", action: "move", ...p });
  }
});
view.addEventListener("click", (event) => {
  view.focus();
  const p = normalised(event);
  if (p) sendControl({ type: "pointer", action: "click", ...p });
});
view.addEventListener("dblclick", (event) => {
  const p = normalised(event);
  if (p) sendControl({ type: "pointer", action: "double_click", ...p });
});
view.addEventListener("wheel", (event) => {
  const p = normalised(event);
  if (p) { event.preventDefault(); sendControl({ type: "pointer", action: "wheel", ...p, dx: event.deltaX, dy: event.deltaY }); }
}, { passive: false });
// Keyboard capture on the form view: characters travel as text (whatever the clerk's layout), a few
// editing keys as keys; shortcuts (Ctrl, Alt, Meta) are never sent.
const KEYS = { Tab: "Tab", Enter: "Enter", Escape: "Escape", Backspace: "Backspace", Delete: "Delete", ArrowLeft: "ArrowLeft",
  ArrowRight: "ArrowRight", ArrowUp: "ArrowUp", ArrowDown: "ArrowDown", Home: "Home", End: "End", PageUp: "PageUp", PageDown: "PageDown" };
view.addEventListener("keydown", (event) => {
  if (state.controlState !== "granted" || event.ctrlKey || event.altKey || event.metaKey) return;
  if (KEYS[event.key]) {
    event.preventDefault();
    sendControl({ type: "key", key: KEYS[event.key], ...(event.shiftKey && event.key === "Tab" ? { modifiers: ["shift"] } : {}) });
  } else if (event.key === " ") {
    event.preventDefault();
    sendControl({ type: "key", key: "Space" });
  } else if (event.key.length === 1 || [...event.key].length === 1) {
    event.preventDefault();
    sendControl({ type: "text", text: event.key });
  }
});

// For the browser tests and for support: what this console has received.
window.clerkStats = async () => {
  const result = { framesDecoded: 0, formFramesDecoded: 0, audioPackets: 0, phase: state.phase, control: state.controlState, holdMs: state.holdMs ?? null };
  if (!state.pc) return result;
  (await state.pc.getStats()).forEach((report) => {
    if (report.type === "inbound-rtp" && report.kind === "video") {
      if (report.mid === "2") result.formFramesDecoded += report.framesDecoded || 0;
      else result.framesDecoded += report.framesDecoded || 0;
    }
    if (report.type === "inbound-rtp" && report.kind === "audio") result.audioPackets += report.packetsReceived || 0;
  });
  return result;
};

refreshAgenda();
setInterval(() => { if (!state.appointment) refreshAgenda(); }, 5000);

// ---------------------------------------------------------------- walk-in sessions
// The visitor centre's staff phone the clerk, who asks the central for a code and reads it out; the
// staff type it on the kiosk, which gets an appointment with this clerk starting now: it then shows
// in the agenda like any other and the clerk joins it as usual. The code lives a few minutes and
// opens one session.

// French by default, English when the page's language is (these texts only, so far).
const WALK_IN_TEXTS = {
  fr: {
    start: "Session sans rendez-vous",
    help: "Lisez ce code à l'animateur de la borne : il le saisit dans le panneau du personnel, puis la borne vous appelle.",
    again: "Nouveau code",
    close: "Fermer",
    listed: "sans rendez-vous",
    asking: "Demande d'un code…",
    label: (spoken) => `Code : ${spoken}`,
    left: (clock) => `Valable encore ${clock}`,
    expired: "Code expiré : demandez-en un nouveau si la borne ne l'a pas encore saisi.",
    used: (a) => `Code utilisé : la borne « ${a.kiosk_name} » (${a.site_name}) vous appelle. Rejoignez l'entretien dans la liste.`,
    failed: (message) => `Impossible d'obtenir un code : ${message}`,
  },
  en: {
    start: "Walk-in session",
    help: "Read this code out to the kiosk's staff: they type it in the staff panel, then the kiosk calls you.",
    again: "New code",
    close: "Close",
    listed: "walk-in",
    asking: "Asking for a code…",
    label: (spoken) => `Code: ${spoken}`,
    left: (clock) => `Valid for ${clock}`,
    expired: "Code expired: make a new one if the kiosk has not used it yet.",
    used: (a) => `Code used: kiosk "${a.kiosk_name}" (${a.site_name}) is calling you. Join the session in the list.`,
    failed: (message) => `Could not get a code: ${message}`,
  },
};

function walkInText(key, ...args) {
  const language = document.documentElement.lang.startsWith("en") ? "en" : "fr";
  const text = WALK_IN_TEXTS[language][key];
  return typeof text === "function" ? text(...args) : text;
}

function walkInStatus(text, kind) {
  const status = $("walk-in-status");
  // Only on a change: a live region rewritten every second would be read out every second.
  if (status.textContent !== text) status.textContent = text;
  status.className = kind || "";
}

function showWalkIn() {
  const walkIn = state.walkIn;
  $("walk-in-start").textContent = walkInText("start");
  $("walk-in-title").textContent = walkInText("start");
  $("walk-in-help").textContent = walkInText("help");
  $("walk-in-new").textContent = walkInText("again");
  $("walk-in-close").textContent = walkInText("close");
  $("walk-in-start").hidden = walkIn !== null;
  $("walk-in-box").hidden = walkIn === null;
  const code = $("walk-in-code");
  if (!walkIn || !walkIn.code) {
    code.textContent = "";
    code.removeAttribute("aria-label");
    $("walk-in-timer").textContent = "";
    return;
  }
  // Two groups of three, as one reads a phone number; a screen reader spells it digit by digit.
  code.textContent = `${walkIn.code.slice(0, 3)} ${walkIn.code.slice(3)}`;
  code.setAttribute("aria-label", walkInText("label", walkIn.code.split("").join(" ")));
  const seconds = Math.max(0, Math.ceil((walkIn.expiresAt - performance.now()) / 1000));
  const expired = seconds === 0 && !walkIn.used;
  code.className = `walk-in-code${walkIn.used ? " used" : expired ? " expired" : ""}`;
  if (walkIn.used) {
    $("walk-in-timer").textContent = "";
    walkInStatus(walkInText("used", walkIn.used), "done");
  } else if (expired) {
    $("walk-in-timer").textContent = "";
    walkInStatus(walkInText("expired"), "warn");
  } else {
    $("walk-in-timer").textContent = walkInText("left", `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`);
  }
}

async function newWalkInCode() {
  for (const button of [$("walk-in-start"), $("walk-in-new")]) button.disabled = true;
  state.walkIn = state.walkIn || { code: null };
  showWalkIn();
  walkInStatus(walkInText("asking"));
  try {
    await refreshAgenda();  // the walk-in sessions already listed are not this code's
    const known = new Set(state.agenda.filter((a) => a.walk_in).map((a) => a.id));
    const answer = await api("POST", "/clerk/walk-in-codes", {});
    // Counted down from the central's own count, not from expires_at: this computer's clock may be off.
    state.walkIn = { code: answer.code, expiresAt: performance.now() + answer.expires_in_seconds * 1000, known, used: null };
    walkInStatus("");
    showWalkIn();
    $("walk-in-code").focus();
  } catch (error) {
    walkInStatus(walkInText("failed", error.message), "warn");
  } finally {
    for (const button of [$("walk-in-start"), $("walk-in-new")]) button.disabled = false;
  }
}

// The code is used when a walk-in session this console did not know appears in the agenda. (The
// agenda does not say which code opened a session: with several codes out, the first one to show
// counts as this one.)
function noticeWalkIn(appointments) {
  const walkIn = state.walkIn;
  if (!walkIn || !walkIn.code || walkIn.used) return;
  const fresh = appointments.find((a) => a.walk_in && !walkIn.known.has(a.id));
  if (fresh) {
    walkIn.used = fresh;
    showWalkIn();
  }
}

$("walk-in-start").addEventListener("click", newWalkInCode);
$("walk-in-new").addEventListener("click", newWalkInCode);
$("walk-in-close").addEventListener("click", () => {
  state.walkIn = null;
  walkInStatus("");
  showWalkIn();
  $("walk-in-start").focus();
});
setInterval(() => { if (state.walkIn && state.walkIn.code) showWalkIn(); }, 1000);
// While a code waits for the kiosk, the agenda is looked at more often, so the clerk sees the call
// coming soon after the staff typed it.
setInterval(() => {
  const walkIn = state.walkIn;
  if (walkIn && walkIn.code && !walkIn.used && !state.appointment && performance.now() < walkIn.expiresAt) refreshAgenda();
}, 2000);
window.walkInTexts = WALK_IN_TEXTS;  // for the browser tests

// ---------------------------------------------------------------- available for walk-ins
// « Disponible pour l'accueil sans rendez-vous »: while on, kiosks list this clerk's service and a
// kiosk's staff may start a session with it, the central choosing the clerk who waited longest. It
// lives only while this page does: the console says it is still there every keep_alive_seconds, and
// the central ends it a minute after the last time. It ends by itself when a kiosk takes the clerk
// (the session then shows in the agenda, to join as any other) and when the clerk is in a call.

const AVAILABILITY_TEXTS = {
  fr: {
    label: "Disponible pour l'accueil sans rendez-vous",
    on: (service) => `Vous êtes disponible (${service}) : une borne peut vous appeler à tout moment.`,
    off: "",
    asking: "Un instant…",
    walk_in: (a) => a
      ? `La borne « ${a.kiosk_name} » (${a.site_name}) vous appelle : rejoignez l'entretien dans la liste. Réactivez l'interrupteur pour en recevoir d'autres.`
      : "Une borne vous appelle : rejoignez l'entretien dans la liste. Réactivez l'interrupteur pour en recevoir d'autres.",
    in_call: "Disponibilité suspendue pendant l'entretien : réactivez-la quand vous êtes libre.",
    expired: "Disponibilité interrompue (connexion au serveur perdue) : réactivez-la.",
    turned_off: "",
    clerk_in_call: "Vous êtes en entretien : réactivez la disponibilité quand il est terminé.",
    failed: (message) => `Impossible de changer la disponibilité : ${message}`,
  },
  en: {
    label: "Available for walk-in sessions",
    on: (service) => `You are available (${service}): a kiosk may call you at any moment.`,
    off: "",
    asking: "One moment…",
    walk_in: (a) => a
      ? `Kiosk "${a.kiosk_name}" (${a.site_name}) is calling you: join the session in the list. Turn the switch on again to take more.`
      : "A kiosk is calling you: join the session in the list. Turn the switch on again to take more.",
    in_call: "Availability paused during the session: turn it on again when you are free.",
    expired: "Availability stopped (connection to the server lost): turn it on again.",
    turned_off: "",
    clerk_in_call: "You are in a session: turn availability on again once it is over.",
    failed: (message) => `Could not change availability: ${message}`,
  },
};
window.availabilityTexts = AVAILABILITY_TEXTS;  // for the browser tests

function availabilityText(key, ...args) {
  const language = document.documentElement.lang.startsWith("en") ? "en" : "fr";
  const text = AVAILABILITY_TEXTS[language][key];
  return typeof text === "function" ? text(...args) : text;
}

state.availability = null;  // the central's last word: {available, service, ended, appointment_id, keep_alive_seconds}
let keepAliveTimer = null;

function showAvailability(message, kind) {
  const a = state.availability;
  const on = Boolean(a && a.available);
  const box = $("walk-in-available");
  box.checked = on;
  $("walk-in-available-label").textContent = availabilityText("label");
  $("availability").classList.toggle("on", on);
  const status = $("walk-in-available-status");
  let text = message;
  if (text === undefined) {
    if (on) { text = availabilityText("on", a.service); kind = "on"; }
    else if (a && a.ended === "walk_in") {
      text = availabilityText("walk_in", state.agenda.find((item) => item.id === a.appointment_id));
      kind = "done";
    } else if (a && a.ended && availabilityText(a.ended)) { text = availabilityText(a.ended); kind = "warn"; }
    else text = "";
  }
  if (status.textContent !== text) status.textContent = text;
  status.className = kind || "";
  clearTimeout(keepAliveTimer);
  // More often than the central needs (keep_alive_seconds): a kiosk taking the clerk shows within 3 s.
  keepAliveTimer = on ? setTimeout(keepAvailable, Math.min(3, Math.max(1, a.keep_alive_seconds)) * 1000) : null;
}

async function learnAvailability(answer) {
  const before = state.availability;
  state.availability = answer;
  if (answer.ended === "walk_in" && !(before && before.ended === "walk_in" && before.appointment_id === answer.appointment_id)) {
    await refreshAgenda();  // the session a kiosk just opened: in the agenda, to join
  }
  showAvailability();
}

async function setAvailable(available) {
  const box = $("walk-in-available");
  box.disabled = true;
  showAvailability(availabilityText("asking"));
  try {
    await learnAvailability(await api("PUT", "/clerk/walk-in-availability", { available }));
  } catch (error) {
    showAvailability(error.code === "clerk_in_call" ? availabilityText("clerk_in_call") : availabilityText("failed", error.message), "warn");
  } finally {
    box.disabled = false;
  }
}

async function keepAvailable() {
  try {
    await learnAvailability(await api("POST", "/clerk/walk-in-availability/keep-alive", {}));
  } catch (error) {
    // The server out of reach for a moment: try again soon; past a minute the central ends it anyway.
    clearTimeout(keepAliveTimer);
    keepAliveTimer = setTimeout(keepAvailable, 5000);
  }
}

$("walk-in-available").addEventListener("change", (event) => setAvailable(event.target.checked));
// Closing the page ends it at once (the central would end it within a minute anyway).
window.addEventListener("pagehide", () => {
  if (!state.availability || !state.availability.available || !token) return;
  fetch(`${API}/clerk/walk-in-availability`, {
    method: "PUT", keepalive: true,
    headers: { "Authorization": `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ available: false }),
  }).catch(() => {});
});
if (token) api("GET", "/clerk/walk-in-availability").then(learnAvailability).catch(() => {});
showAvailability();

// ---------------------------------------------------------------- documents from the kiosk's scanner
// The "documents" data channel (DTLS, peer to peer: the central never sees a byte). Each document is
// announced by a manifest, arrives in chunks (32 hex id + 8-byte offset + bytes), and is confirmed
// only once its SHA-256 matches the manifest. A partial document is kept if the call drops: the
// kiosk resumes from what is here.

const MAX_DOCUMENT = 50 * 1024 * 1024;
const PROGRESS_EVERY = 256 * 1024;

function sendDocuments(message) {
  const channel = state.documentsChannel;
  if (channel && channel.readyState === "open") channel.send(JSON.stringify({ v: 1, ...message }));
}

function attachDocuments(channel) {
  channel.binaryType = "arraybuffer";
  state.documentsChannel = channel;
  channel.addEventListener("open", showDocumentControls);
  channel.addEventListener("close", showDocumentControls);
  channel.addEventListener("message", (event) => {
    if (typeof event.data === "string") onDocumentMessage(event.data);
    else onChunk(new Uint8Array(event.data));
  });
  showDocumentControls();
}

function validManifest(doc) {
  return doc && typeof doc === "object"
    && /^[0-9a-f]{32}$/.test(doc.id) && /^[0-9a-f]{64}$/.test(doc.sha256)
    && doc.mime === "application/pdf" && Number.isInteger(doc.size) && doc.size > 0 && doc.size <= MAX_DOCUMENT
    && Number.isInteger(doc.pages) && doc.pages > 0 && doc.pages <= 200
    && typeof doc.name === "string" && doc.name.length > 0 && doc.name.length <= 120 && !/[\/\\]/.test(doc.name);
}

function onDocumentMessage(raw) {
  let message;
  try { message = JSON.parse(raw); } catch (error) { return; }
  if (!message || message.v !== 1) return;
  if (message.type === "print.status" || message.type === "print.error") { onPrintStatus(message); return; }
  if (message.type === "doc.offer") {
    const doc = message.doc;
    if (!validManifest(doc)) { $("documents-error").textContent = "Document refusé : description invalide."; return; }
    if (state.documents[doc.id]) {  // already checked: our receipt was lost with the call
      sendDocuments({ type: "doc.accept", id: doc.id, offset: doc.size });
      return;
    }
    let incoming = state.incoming[doc.id];
    if (!incoming || incoming.manifest.sha256 !== doc.sha256 || incoming.manifest.size !== doc.size) {
      incoming = state.incoming[doc.id] = { manifest: doc, parts: [], received: 0, refused: false };
    }
    renderDocuments();
    sendDocuments({ type: "doc.accept", id: doc.id, offset: incoming.received });
  } else if (message.type === "doc.end" && typeof message.id === "string") {
    finishDocument(message.id);
  } else if (message.type === "doc.error") {
    $("documents-error").textContent = `La borne a refusé un message (${message.code}).`;
  }
}

function onChunk(bytes) {
  if (bytes.length <= 40) return;
  const id = new TextDecoder().decode(bytes.subarray(0, 32));
  const offset = Number(new DataView(bytes.buffer, bytes.byteOffset + 32, 8).getBigUint64(0));
  const incoming = state.incoming[id];
  if (!incoming || incoming.refused || offset !== incoming.received) return;  // never stitched out of order
  const payload = bytes.slice(40);
  if (incoming.received + payload.length > incoming.manifest.size) {
    delete state.incoming[id];
    sendDocuments({ type: "doc.reject", id, reason: "too_large" });
    renderDocuments();
    return;
  }
  const before = incoming.received;
  incoming.parts.push(payload);
  incoming.received += payload.length;
  if (Math.floor(before / PROGRESS_EVERY) !== Math.floor(incoming.received / PROGRESS_EVERY)) {
    sendDocuments({ type: "doc.progress", id, offset: incoming.received });
    renderDocuments();
  }
}

async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function finishDocument(id) {
  const done = state.documents[id];
  if (done) { sendDocuments({ type: "doc.receipt", id, sha256: done.sha256 }); return; }
  const incoming = state.incoming[id];
  if (!incoming) return;
  const blob = new Blob(incoming.parts, { type: "application/pdf" });
  const sha256 = await sha256Hex(await blob.arrayBuffer());
  delete state.incoming[id];
  if (blob.size !== incoming.manifest.size || sha256 !== incoming.manifest.sha256) {
    $("documents-error").textContent = `« ${incoming.manifest.name} » est arrivé abîmé : la borne le renvoie.`;
    sendDocuments({ type: "doc.reject", id, reason: "hash_mismatch" });
    renderDocuments();
    return;
  }
  state.documents[id] = { manifest: incoming.manifest, sha256, url: URL.createObjectURL(blob), at: Date.now() };
  sendDocuments({ type: "doc.receipt", id, sha256 });
  renderDocuments();
}

function refuseDocument(id) {
  const incoming = state.incoming[id];
  if (!incoming) return;
  incoming.refused = true;
  sendDocuments({ type: "doc.reject", id, reason: "refused" });
  renderDocuments();
}

function sizeText(bytes) {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} Mo` : `${Math.ceil(bytes / 1024)} Ko`;
}

function renderDocuments() {
  const list = $("documents");
  list.replaceChildren();
  for (const [id, incoming] of Object.entries(state.incoming)) {
    const item = document.createElement("li");
    item.dataset.document = id;
    const percent = Math.floor((100 * incoming.received) / incoming.manifest.size);
    item.textContent = incoming.refused
      ? `${incoming.manifest.name} — refusé`
      : `${incoming.manifest.name} — ${incoming.manifest.pages} p., réception ${percent} %`;
    if (!incoming.refused) {
      const refuse = document.createElement("button");
      refuse.type = "button";
      refuse.textContent = "Refuser";
      refuse.addEventListener("click", () => refuseDocument(id));
      item.append(" ", refuse);
    }
    list.append(item);
  }
  for (const [id, doc] of Object.entries(state.documents)) {
    const item = document.createElement("li");
    item.dataset.document = id;
    item.className = "received";
    const title = document.createElement("span");
    title.textContent = `${doc.manifest.name} — ${doc.manifest.pages} p., ${sizeText(doc.manifest.size)}, vérifié ✓`;
    const hash = document.createElement("code");
    hash.textContent = `SHA-256 ${doc.sha256}`;
    const preview = document.createElement("a");
    preview.href = doc.url;
    preview.target = "_blank";
    preview.rel = "noopener";
    preview.textContent = "Aperçu";
    const download = document.createElement("a");
    download.href = doc.url;
    download.download = doc.manifest.name;
    download.textContent = "Télécharger";
    item.append(title, document.createElement("br"), hash, document.createElement("br"), preview, " ", download);
    list.append(item);
  }
}

function showDocumentControls() {
  const open = Boolean(state.documentsChannel && state.documentsChannel.readyState === "open");
  for (const element of document.querySelectorAll(
    "#ask-document input, #ask-document button, #print-document input, #print-document button",
  )) element.disabled = !open;
}

$("ask-document").addEventListener("submit", (event) => {
  event.preventDefault();
  const label = $("document-label").value.trim();
  if (!label) return;
  sendDocuments({ type: "doc.request", label: label.slice(0, 120) });
  $("documents-status").textContent = `Demandé à l'usager : ${label}`;
});

// ---------------------------------------------------------------- the clerk's rating of a session
// After the hang-up, on the agenda: five choices (very bad … very good) or « Passer », and an optional
// remark of at most 500 characters, sent once (POST /clerk/appointments/{id}/rating). Nothing about
// the citizen: the remark says how the session went, the box says so.
const RATING_MAX = 500;
const RATING_ERRORS = {
  call_not_ended: "le serveur n'a pas encore enregistré la fin de l'entretien. Réessayez dans un instant.",
  invalid_field: "la remarque contient des caractères refusés.",
};
state.rating = null;  // {appointment, face} while the box is open

function askRating(appointment) {
  state.rating = { appointment, face: null };
  $("rating-for").textContent = `${time(appointment.start)} – ${appointment.service} · ${appointment.site_name}`;
  $("rating-remark").value = "";
  $("rating-status").textContent = "";
  $("rating-status").className = "";
  showRating();
  $("rating").hidden = false;
}

function closeRating() {
  state.rating = null;
  $("rating").hidden = true;
}

function showRating() {
  const face = state.rating ? state.rating.face : null;
  for (const button of document.querySelectorAll("#rating [data-face]")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.face) === face));
  }
  $("rating-send").disabled = face === null;
  const left = RATING_MAX - $("rating-remark").value.length;
  $("rating-left").textContent = `${left} caractère${left > 1 ? "s" : ""} restant${left > 1 ? "s" : ""}`;
}

async function sendRating(face) {
  const rating = state.rating;
  if (!rating) return;
  const remark = $("rating-remark").value.trim().slice(0, RATING_MAX);
  const body = remark ? { face, remark } : { face };
  for (const button of document.querySelectorAll("#rating button")) button.disabled = true;
  try {
    await api("POST", `/clerk/appointments/${rating.appointment.id}/rating`, body);
    closeRating();
    $("last-call").textContent = face === null ? "Évaluation passée." : "Merci\u00a0: votre évaluation est enregistrée.";
  } catch (error) {
    if (error.code === "already_rated") {
      closeRating();
      $("last-call").textContent = "Cet entretien était déjà évalué.";
      return;
    }
    const why = RATING_ERRORS[error.code] || error.message;
    $("rating-status").textContent = `Évaluation non envoyée\u00a0: ${why}`;
    $("rating-status").className = "warn";
  } finally {
    for (const button of document.querySelectorAll("#rating button")) button.disabled = false;
    if (state.rating) showRating();
  }
}

for (const button of document.querySelectorAll("#rating [data-face]")) {
  button.addEventListener("click", () => {
    if (!state.rating) return;
    state.rating.face = Number(button.dataset.face);
    showRating();
  });
}
$("rating-remark").addEventListener("input", showRating);
$("rating").addEventListener("submit", (event) => {
  event.preventDefault();
  if (state.rating && state.rating.face !== null) sendRating(state.rating.face);
});
$("rating-skip").addEventListener("click", () => sendRating(null));

// ---------------------------------------------------------------- documents to print on the kiosk
// The other direction of the same channel: the clerk offers a PDF (print.offer: id, name, size,
// SHA-256), the kiosk accepts it, the chunks follow (same layout: 32 hex id + 8-byte offset + bytes),
// then print.end. The kiosk checks it (a real PDF, at most 20 MB and 20 pages), shows it to the citizen,
// who prints it with one touch; every step comes back as print.status.

const MAX_PRINT = 20 * 1024 * 1024;
const PRINT_CHUNK = 16 * 1024;
const PRINT_HIGH_WATER = 1024 * 1024;
const PRINT_STATES = {
  offered: "proposé à la borne…",
  accepted: "envoi en cours",
  received: "reçu par la borne, vérification…",
  shown: "affiché à l'usager",
  printing: "impression en cours…",
  printed: "imprimé ✓",
  print_failed: "impression impossible",
  refused: "refusé par la borne",
  closed: "fermé sur la borne",
};
const PRINT_REASONS = {
  too_large: "fichier trop lourd (20 Mo au plus)", busy: "un autre document est en cours sur la borne",
  malformed: "envoi abîmé", hash_mismatch: "arrivé abîmé : renvoyez-le", not_pdf: "ce n'est pas un PDF",
  too_many_pages: "trop de pages (20 au plus)", encrypted: "PDF protégé (mot de passe ou impression interdite)",
  unreadable: "PDF illisible", no_printing: "la borne n'imprime pas", no_printer: "pas d'imprimante trouvée",
  printer_offline: "l'imprimante ne répond pas", out_of_paper: "plus de papier", paper_jam: "papier coincé",
  out_of_ink: "plus d'encre", cover_open: "capot ouvert", printer_stopped: "imprimante arrêtée",
  format_unsupported: "l'imprimante ne prend pas ce format", job_failed: "l'impression a échoué",
  print_timeout: "l'imprimante n'a pas fini à temps",
};
state.prints = {};  // id → { name, size, data, state, reason, pages, sent }

function randomId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

$("print-document").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("print-error").textContent = "";
  const file = $("print-file").files[0];
  if (!file) { $("print-error").textContent = "Choisissez d'abord un fichier PDF."; return; }
  if (file.size === 0 || file.size > MAX_PRINT) {
    $("print-error").textContent = `« ${file.name} » : 20 Mo au plus.`;
    return;
  }
  const data = new Uint8Array(await file.arrayBuffer());
  if (new TextDecoder().decode(data.subarray(0, 5)) !== "%PDF-") {
    $("print-error").textContent = `« ${file.name} » n'est pas un PDF.`;
    return;
  }
  const id = randomId();
  const name = (file.name.replace(/[\\/\u0000-\u001f\u007f-\u009f\u2028\u2029\u202e]/g, "_").trim() || "document.pdf").slice(0, 120);
  state.prints[id] = { name, size: data.length, data, state: "offered", reason: "", pages: 0, sent: 0 };
  renderPrints();
  sendDocuments({ type: "print.offer", doc: { id, name, size: data.length, sha256: await sha256Hex(data) } });
  $("print-file").value = "";
});

function onPrintStatus(message) {
  if (message.type === "print.error") {
    $("print-error").textContent = `La borne a refusé un message (${message.code}).`;
    return;
  }
  const sent = state.prints[message.id];
  if (!sent || typeof message.state !== "string") return;
  sent.state = message.state;
  sent.reason = typeof message.reason === "string" ? message.reason : "";
  if (Number.isInteger(message.pages)) sent.pages = message.pages;
  if (message.state === "accepted") sendPrintChunks(message.id);
  if (!["accepted", "received", "shown", "printing", "printed", "print_failed"].includes(message.state)) {
    sent.data = null;  // refused or closed: nothing of it stays in the console either
  }
  renderPrints();
}

async function sendPrintChunks(id) {
  const sent = state.prints[id];
  const channel = state.documentsChannel;
  if (!sent || !sent.data || !channel) return;
  channel.bufferedAmountLowThreshold = PRINT_HIGH_WATER / 4;
  for (let offset = 0; offset < sent.data.length; offset += PRINT_CHUNK) {
    if (channel.readyState !== "open" || sent.state !== "accepted") return;
    if (channel.bufferedAmount > PRINT_HIGH_WATER) {
      await new Promise((resolve) => channel.addEventListener("bufferedamountlow", resolve, { once: true }));
    }
    const piece = sent.data.subarray(offset, offset + PRINT_CHUNK);
    const frame = new Uint8Array(40 + piece.length);
    frame.set(new TextEncoder().encode(id), 0);
    new DataView(frame.buffer).setBigUint64(32, BigInt(offset));
    frame.set(piece, 40);
    channel.send(frame);
    sent.sent = offset + piece.length;
    if (sent.sent % (16 * PRINT_CHUNK) === 0) renderPrints();
  }
  sendDocuments({ type: "print.end", id });
  renderPrints();
}

function renderPrints() {
  const list = $("prints");
  list.replaceChildren();
  for (const [id, sent] of Object.entries(state.prints)) {
    const item = document.createElement("li");
    item.dataset.print = id;
    item.dataset.state = sent.state;
    if (sent.state === "printed") item.className = "printed";
    if (["refused", "print_failed"].includes(sent.state)) item.className = "problem";
    let words = PRINT_STATES[sent.state] || sent.state;
    if (sent.state === "accepted") words += ` (${Math.floor((100 * sent.sent) / sent.size)} %)`;
    if (sent.state === "shown" && sent.pages) words += ` (${sent.pages} p.)`;
    if (sent.reason) words += ` : ${PRINT_REASONS[sent.reason] || sent.reason}`;
    item.textContent = `${sent.name} — ${words}`;
    if (["shown", "printed", "print_failed"].includes(sent.state)) {
      const withdraw = document.createElement("button");
      withdraw.type = "button";
      withdraw.textContent = "Retirer de la borne";
      withdraw.addEventListener("click", () => sendDocuments({ type: "print.cancel", id }));
      item.append(" ", withdraw);
    }
    list.append(item);
  }
}
