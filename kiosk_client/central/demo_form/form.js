"use strict";
// A fictitious multi-step administrative form (personal details, address, household, a password
// field, a file upload). Logging in stores a cookie and localStorage, which the next citizen's
// session must never see.
function show(id) {
  for (const section of document.querySelectorAll(".step")) section.hidden = section.id !== id;
  const first = document.querySelector(`#${id} input, #${id} select`);
  if (first) first.focus();
  document.title = `${document.querySelector(`#${id} h1`).textContent} — démonstration`;
}

const remembered = localStorage.getItem("demo-session");
if (remembered) document.getElementById("login-status").textContent = `Session précédente : ${remembered}`;

document.getElementById("login-button").addEventListener("click", () => {
  const id = document.getElementById("login-id").value || "anonyme";
  localStorage.setItem("demo-session", id);
  document.cookie = `demo_session=${encodeURIComponent(id)}; path=/; max-age=86400`;
  show("step-1");
});
for (const button of document.querySelectorAll("[data-next]")) {
  button.addEventListener("click", () => show(button.dataset.next));
}
document.getElementById("submit").addEventListener("click", () => show("done"));
show("login");
