// memderain web page: upload -> POST /api/derain -> show before/after, offer the PNG.
"use strict";

const $ = (id) => document.getElementById(id);
let limits = { max_bytes: Infinity, max_pixels: Infinity };
let urls = [];

function showMessage(text) {
  const box = $("message");
  box.textContent = text;
  box.hidden = !text;
}

function mib(n) { return (n / (1024 * 1024)).toFixed(1) + " MiB"; }

async function loadInfo() {
  try {
    const r = await fetch("/api/info");
    const info = await r.json();
    limits = info;
    $("limits").textContent = "Limits: " + mib(info.max_bytes) + ", " +
      (info.max_pixels / 1e6).toFixed(1) + " megapixels.";
    $("footer").textContent = "memderain " + info.version +
      (info.weights ? " \u00b7 weights: " + info.weights : "");
  } catch (e) { /* the page still works without the limits line */ }
}

async function upload(file) {
  showMessage("");
  $("result").hidden = true;
  urls.forEach((u) => URL.revokeObjectURL(u));
  urls = [];
  if (file.size > limits.max_bytes) {
    showMessage("Error: " + file.name + " is " + mib(file.size) + "; the limit is " +
      mib(limits.max_bytes) + ".");
    return;
  }
  $("status").textContent = "De-raining " + file.name + "\u2026";
  const form = new FormData();
  form.append("file", file, file.name);
  let response;
  try {
    response = await fetch("/api/derain", { method: "POST", body: form });
  } catch (e) {
    $("status").textContent = "";
    showMessage("Error: the server did not answer (" + e + ").");
    return;
  }
  if (!response.ok) {
    let detail = response.status + " " + response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    $("status").textContent = "";
    showMessage("Error: " + detail);
    return;
  }
  const blob = await response.blob();
  const before = URL.createObjectURL(file);
  const after = URL.createObjectURL(blob);
  urls = [before, after];
  $("before").src = before;
  $("compare-before").src = before;
  $("after").src = after;
  $("compare-after").src = after;
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = disposition.match(/filename="([^"]+)"/);
  $("download").href = after;
  $("download").download = match ? match[1] : "derained.png";
  const seconds = response.headers.get("X-Memderain-Seconds");
  $("status").textContent = "Done" + (seconds ? " in " + Number(seconds).toFixed(2) + " s" : "") + ".";
  $("result").hidden = false;
}

function setView(view) {
  $("side").hidden = view !== "side";
  $("slider").hidden = view !== "slider";
}

function setPosition(percent) {
  $("compare-after").style.clipPath = "inset(0 0 0 " + percent + "%)";
}

$("file").addEventListener("change", (e) => {
  if (e.target.files.length) upload(e.target.files[0]);
});
const drop = $("upload-form");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
});
drop.addEventListener("submit", (e) => e.preventDefault());
document.querySelectorAll('input[name="view"]').forEach((r) =>
  r.addEventListener("change", (e) => setView(e.target.value)));
$("position").addEventListener("input", (e) => setPosition(e.target.value));
setPosition(50);
loadInfo();
