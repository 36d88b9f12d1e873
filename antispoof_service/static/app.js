"use strict";
// The page of `antispoof serve`: uploads a file to POST /v1/score, or streams the microphone to WS /v1/stream,
// and draws the result. Everything here is served by the service itself.

const $ = (id) => document.getElementById(id);
const state = { segments: [], threshold: null, duration: 0, recorder: null, thresholds: {} };

function authHeaders() {
  const key = $("api-key").value.trim();
  return key ? { Authorization: "Bearer " + key } : {};
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function loadScorers() {
  try {
    const response = await fetch("/v1/scorers", { headers: authHeaders() });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    body.forEach((s) => { state.thresholds[s.name] = s.threshold; });
    $("scorer").replaceChildren(...body.map((s) => {
      const option = new Option(s.name + (s.threshold === null ? "" : " (threshold " + s.threshold + ")"), s.name);
      option.selected = s.default;
      return option;
    }));
  } catch (error) {
    showError("Could not list the scorers: " + error.message);
  }
}

function resetResult(name) {
  state.segments = [];
  state.threshold = null;
  state.duration = 0;
  $("result").hidden = false;
  $("file-name").textContent = name ? "for " + name : "";
  $("verdict").textContent = "…";
  $("verdict").className = "none";
  $("score").textContent = $("threshold").textContent = $("mode").textContent = $("durations").textContent = "";
  $("warnings").replaceChildren();
  $("segments").tBodies[0].replaceChildren();
  drawTimeline();
}

function showResult(result) {
  $("verdict").textContent = result.verdict === null ? "no threshold" : result.verdict;
  $("verdict").className = (result.verdict || "none").replace(" ", "-");
  $("score").textContent = result.score.toFixed(4);
  $("threshold").textContent = result.threshold === null ? "none" : String(result.threshold);
  $("mode").textContent = "(" + result.mode + ")";
  $("durations").textContent = result.duration_s.toFixed(2) + " s" +
    (result.speech_s === null ? "" : ", " + result.speech_s.toFixed(2) + " s of speech");
  $("warnings").replaceChildren(...result.warnings.map((w) => Object.assign(document.createElement("li"),
                                                                             { textContent: w })));
  state.threshold = result.threshold;
  state.duration = result.duration_s;
  state.segments = [];
  $("segments").tBodies[0].replaceChildren();
  result.segments.forEach(addSegment);
  drawTimeline();
}

function addSegment(segment) {
  state.segments.push(segment);
  state.duration = Math.max(state.duration, segment.end_s);
  const row = $("segments").tBodies[0].insertRow();
  row.className = "segment";
  for (const value of [segment.start_s.toFixed(2), segment.end_s.toFixed(2), segment.score.toFixed(4)]) {
    row.insertCell().textContent = value;
  }
  drawTimeline();
}

function drawTimeline() {
  const canvas = $("timeline");
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 24;
  g.clearRect(0, 0, w, h);
  const scores = state.segments.map((s) => s.score);
  if (state.threshold !== null) scores.push(state.threshold);
  if (!scores.length) return;
  let lo = Math.min(...scores), hi = Math.max(...scores);
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const span = Math.max(state.duration, 1e-9);
  const x = (t) => pad + (w - 2 * pad) * t / span;
  const y = (v) => h - pad - (h - 2 * pad) * (v - lo) / (hi - lo);
  g.font = "11px sans-serif";
  g.fillStyle = "#555";
  g.fillText(hi.toFixed(2), 2, pad - 4);
  g.fillText(lo.toFixed(2), 2, h - 4);
  g.fillText(span.toFixed(1) + " s", w - pad - 30, h - 4);
  if (state.threshold !== null) {
    g.strokeStyle = "#c33";
    g.setLineDash([5, 4]);
    g.beginPath(); g.moveTo(pad, y(state.threshold)); g.lineTo(w - pad, y(state.threshold)); g.stroke();
    g.setLineDash([]);
  }
  for (const s of state.segments) {
    const below = state.threshold !== null && s.score < state.threshold;
    g.strokeStyle = below ? "#b22" : "#2a6";
    g.lineWidth = 3;
    g.beginPath(); g.moveTo(x(s.start_s), y(s.score)); g.lineTo(x(s.end_s), y(s.score)); g.stroke();
  }
  g.lineWidth = 1;
}

async function upload(file) {
  showError("");
  resetResult(file.name);
  const form = new FormData();
  form.append("file", file, file.name);
  const url = "/v1/score?scorer=" + encodeURIComponent($("scorer").value);
  try {
    const response = await fetch(url, { method: "POST", body: form, headers: authHeaders() });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    showResult(body);
  } catch (error) {
    $("result").hidden = true;
    showError(error.message);
  }
}

async function startRecording() {
  showError("");
  resetResult("the microphone");
  state.threshold = state.thresholds[$("scorer").value] ?? null;  // drawn while the segments arrive
  const media = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: false,
                                                                     noiseSuppression: false, autoGainControl: false } });
  const context = new AudioContext({ sampleRate: 16000 });
  await context.audioWorklet.addModule("/static/pcm-worklet.js");
  const source = context.createMediaStreamSource(media);
  const tap = new AudioWorkletNode(context, "pcm-tap");
  const protocol = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(protocol + location.host + "/v1/stream?scorer=" + encodeURIComponent($("scorer").value));
  socket.binaryType = "arraybuffer";
  const recorder = { media, context, socket, source, tap, open: false };
  state.recorder = recorder;
  socket.onopen = () => {
    const key = $("api-key").value.trim();
    socket.send(JSON.stringify({ encoding: "float32", sample_rate: 16000, ...(key ? { token: key } : {}) }));
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "ready") {
      recorder.open = true;
      $("live-status").textContent = message.live_segments
        ? "recording… a segment result every " + message.hop_s.toFixed(2) + " s"
        : "recording… (this scorer gives its result when you stop)";
    } else if (message.type === "segment") {
      addSegment(message);
      $("live-status").textContent = "recording… last result " + (1000 * message.latency_s).toFixed(0) +
        " ms after its window ended";
    } else if (message.type === "result") {
      showResult(message.result);
      $("live-status").textContent = "done";
    } else if (message.type === "error") {
      showError(message.error.message);
    }
  };
  socket.onclose = () => { stopAudio(recorder); $("record").disabled = false; $("stop").disabled = true; };
  tap.port.onmessage = (event) => { if (recorder.open) socket.send(event.data.buffer); };
  source.connect(tap);
  $("record").disabled = true;
  $("stop").disabled = false;
}

function stopAudio(recorder) {
  recorder.media.getTracks().forEach((track) => track.stop());
  if (recorder.context.state !== "closed") recorder.context.close();
}

function stopRecording() {
  const recorder = state.recorder;
  if (!recorder) return;
  stopAudio(recorder);
  recorder.open = false;
  $("stop").disabled = true;
  $("live-status").textContent = "scoring the whole recording…";
  if (recorder.socket.readyState === WebSocket.OPEN) recorder.socket.send(JSON.stringify({ type: "end" }));
}

$("file").addEventListener("change", (event) => { if (event.target.files.length) upload(event.target.files[0]); });
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  if (event.dataTransfer.files.length) upload(event.dataTransfer.files[0]);
});
$("record").addEventListener("click", () => startRecording().catch((error) => showError(
  "Could not record: " + error.message)));
$("stop").addEventListener("click", stopRecording);
$("api-key").addEventListener("change", loadScorers);
loadScorers();
