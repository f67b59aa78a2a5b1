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
const state = { appointment: null, pc: null, callId: null, version: 0, local: null, muted: false, phase: "idle", joinedAt: null };
window.clerkConsole = state;  // inspected by the browser tests

async function api(method, path, body) {
  const response = await fetch(API + path, {
    method,
    headers: { "Authorization": `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((data.error && data.error.message) || response.statusText);
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
    $("agenda-status").textContent = data.appointments.length ? "" : "Aucun rendez-vous.";
    const list = $("appointments");
    list.replaceChildren(...data.appointments.map((a) => {
      const item = document.createElement("li");
      const ready = a.call.has_offer && !a.call.ended;
      item.className = ready ? "ready" : "";
      item.dataset.appointment = a.id;
      const when = document.createElement("span");
      when.className = "when";
      when.textContent = `${time(a.start)} – ${a.service}`;
      const where = document.createElement("span");
      where.className = "state";
      where.textContent = `${a.site_name} · ${ready ? "l'usager est en ligne" : a.call.ended ? "terminé" : "borne pas encore connectée"}`;
      const join = document.createElement("button");
      join.type = "button";
      join.textContent = "Rejoindre";
      join.disabled = state.appointment !== null;
      join.addEventListener("click", () => joinAppointment(a));
      item.append(when, where, join);
      return item;
    }));
  } catch (error) {
    $("agenda-status").textContent = `Impossible de charger les rendez-vous : ${error.message}`;
  }
}

function setStatus(text) { $("call-status").textContent = text; }

async function localMedia() {
  if (state.local) return state.local;
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

async function answer(call) {
  if (state.pc) state.pc.close();
  const pc = new RTCPeerConnection({ iceServers: await iceServers() });
  state.pc = pc;
  state.callId = call.call_id;
  const media = await localMedia();
  for (const track of media.getTracks()) pc.addTrack(track, media);
  pc.addEventListener("track", (event) => {
    const remote = $("remote");
    if (!remote.srcObject) remote.srcObject = new MediaStream();
    remote.srcObject.addTrack(event.track);
  });
  pc.addEventListener("connectionstatechange", () => {
    if (pc.connectionState === "connected") { state.phase = "in_call"; setStatus("En communication."); }
    if (pc.connectionState === "failed") setStatus("Connexion perdue : la borne va rappeler.");
  });
  await pc.setRemoteDescription(call.offer);
  await pc.setLocalDescription(await pc.createAnswer());
  await iceGatheringComplete(pc);
  const result = await api("PUT", `/appointments/${state.appointment.id}/answer`,
    { type: "answer", sdp: pc.localDescription.sdp, call_id: call.call_id });
  state.version = result.version;
  state.joinedAt = Date.now();
  setStatus("Connexion à la borne…");
}

async function followCall() {
  const appointment = state.appointment;
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
      if (call.call_id === state.callId || !call.has_answer) {
        endCall(call.ended_by === "kiosk" ? "L'usager a terminé l'entretien." : "Entretien terminé.");
        return;
      }
      continue;
    }
    if (call.has_offer && !call.has_answer) {
      // First join, or the kiosk reconnecting after a dropped connection: answer its new offer.
      try { await answer(call); } catch (error) { setStatus(`Échec de la connexion : ${error.message}`); }
    }
  }
}

async function joinAppointment(appointment) {
  state.appointment = appointment;
  state.version = 0;
  state.phase = "joining";
  $("call").hidden = false;
  $("call-title").textContent = `${time(appointment.start)} – ${appointment.service} · ${appointment.site_name}`;
  setStatus("En attente de la borne…");
  refreshAgenda();
  followCall();
}

function endCall(message) {
  if (state.pc) state.pc.close();
  state.pc = null;
  state.appointment = null;
  state.callId = null;
  state.phase = "ended";
  $("remote").srcObject = null;
  setStatus(message);
  refreshAgenda();
}

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

// For the browser tests and for support: what this console has received.
window.clerkStats = async () => {
  const result = { framesDecoded: 0, audioPackets: 0, phase: state.phase };
  if (!state.pc) return result;
  (await state.pc.getStats()).forEach((report) => {
    if (report.type === "inbound-rtp" && report.kind === "video") result.framesDecoded += report.framesDecoded || 0;
    if (report.type === "inbound-rtp" && report.kind === "audio") result.audioPackets += report.packetsReceived || 0;
  });
  return result;
};

refreshAgenda();
setInterval(() => { if (!state.appointment) refreshAgenda(); }, 5000);
