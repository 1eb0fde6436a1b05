// The players' voice page: bridge protocol v1, browser profile (docs/bridge-protocol.md, section 10).
"use strict";

const MAGIC = 0xb1;
const KIND_MICROPHONE = 1;
const KIND_MIXED = 3;
const HEADER = 8;
const MONO_BYTES = 1920;
const STEREO_BYTES = 3840;
const PING_EVERY_MS = 20000;

const $ = (id) => document.getElementById(id);

// What the page has heard, for the level meter and for tests (`window.voiceStats`).
const stats = { framesReceived: 0, peak: 0, framesSent: 0 };
window.voiceStats = stats;

let invite = null;
let socket = null;
let context = null;
let mixNode = null;
let transmitting = true; // open mic; push-to-talk clears it until the button is held
let sequence = 0;
let npcNames = {};
const named = (npc) => npcNames[npc] || npc;

function setState(state, text) {
  $("state").dataset.state = state;
  $("state").textContent = text;
}

function readInvite() {
  // The invite is in the fragment, which browsers never send to a server; it is removed from the address bar at once
  // so it is not left in the history (it works once anyway).
  const match = /(?:^|[#&])invite=([A-Za-z0-9_.-]+)/.exec(location.hash);
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  return match ? match[1] : null;
}

async function socketUrl() {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
  const config = await response.json();
  if (config.ws_url) return config.ws_url;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.hostname}:${config.bridge_port}/voice/ws`;
}

async function start() {
  $("start").disabled = true;
  setState("connecting", "Connecting...");
  try {
    context = new AudioContext({ sampleRate: 48000, latencyHint: "interactive" });
    await context.audioWorklet.addModule("static/capture-worklet.js");
    await context.audioWorklet.addModule("static/playback-worklet.js");
    await context.resume();
    const url = await socketUrl();
    connect(url);
  } catch (error) {
    setState("closed", `Could not start: ${error.message}`);
  }
}

function connect(url) {
  socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => {
    socket.send(JSON.stringify({ type: "browser_hello", protocol_versions: [1], invite }));
    invite = null; // used: nothing secret stays in the page
  };
  socket.onmessage = (event) => {
    if (typeof event.data === "string") onControl(JSON.parse(event.data));
    else onAudio(event.data);
  };
  socket.onclose = (event) => {
    const why = event.reason || (event.code === 1006 ? "the connection was lost" : `closed (${event.code})`);
    const refused = event.code === 4001;
    setState(refused ? "refused" : "closed", `${refused ? "Refused" : "Disconnected"}: ${why}. Type !voice in the game for a new link.`);
    $("talk").disabled = true;
  };
  setInterval(() => {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
  }, PING_EVERY_MS);
}

function onControl(message) {
  switch (message.type) {
    case "browser_welcome":
      npcNames = message.npc_names || {};
      $("who").textContent = `You are ${message.player} on ${message.server}.`;
      setState("live", "Connected.");
      $("start-section").hidden = true;
      $("controls").hidden = false;
      $("transcript-section").hidden = false;
      startAudio().catch((error) => setState("closed", `Microphone unavailable: ${error.message}`));
      break;
    case "earshot":
      $("earshot").textContent = !message.position_known
        ? "The game has not told us where you are yet."
        : message.npcs.length
          ? `In earshot: ${message.npcs.map(named).join(", ")}`
          : "No character is close enough to hear you.";
      $("earshot").dataset.npcs = message.npcs.join(",");
      break;
    case "npc_stream_start":
      $("speaking").textContent = `${named(message.npc)} is speaking.`;
      break;
    case "npc_stream_end":
      $("speaking").textContent = message.reason === "stopped" ? `${named(message.npc)} stopped.` : "";
      break;
    case "line":
      addLine(message);
      break;
    case "error":
      setState("live", `Connected. The host said: ${message.message}`);
      break;
    default:
      break; // pong, and host message types this page does not know (the protocol allows new ones)
  }
}

function addLine(line) {
  const item = document.createElement("li");
  item.dataset.source = line.source;
  item.dataset.speaker = line.speaker;
  item.textContent = `${line.speaker}: ${line.text}`;
  $("transcript").append(item);
  while ($("transcript").children.length > 200) $("transcript").firstElementChild.remove();
}

async function startAudio(granted) {
  const volume = new GainNode(context, { gain: Number($("volume").value) });
  $("volume").oninput = () => volume.gain.setTargetAtTime(Number($("volume").value), context.currentTime, 0.02);
  mixNode = new AudioWorkletNode(context, "playback-processor", { numberOfInputs: 0, outputChannelCount: [2] });
  mixNode.connect(volume).connect(context.destination);

  const stream = granted || (await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  }));
  let source;
  try {
    source = context.createMediaStreamSource(stream);
  } catch {
    // Some browsers take a microphone only into a context at the device's own rate: rebuild the audio graph there
    // (both worklets resample to and from 48 kHz).
    await context.close();
    context = new AudioContext({ latencyHint: "interactive" });
    await context.audioWorklet.addModule("static/capture-worklet.js");
    await context.audioWorklet.addModule("static/playback-worklet.js");
    await context.resume();
    return startAudio(stream);
  }
  const capture = new AudioWorkletNode(context, "capture-processor");
  // Connected to the output through a muted gain, so every browser keeps pulling the capture node.
  source.connect(capture).connect(new GainNode(context, { gain: 0 })).connect(context.destination);
  capture.port.onmessage = (event) => onMicFrame(event.data);
  setMode(document.querySelector("input[name=mode]:checked").value);
}

function onMicFrame(pcm) {
  const samples = new Int16Array(pcm);
  let peak = 0;
  for (let i = 0; i < samples.length; i++) peak = Math.max(peak, Math.abs(samples[i]));
  $("mic-level").value = transmitting ? peak / 0x8000 : 0;
  if (!transmitting || socket.readyState !== WebSocket.OPEN) return;
  const frame = new Uint8Array(HEADER + MONO_BYTES);
  const view = new DataView(frame.buffer);
  view.setUint8(0, MAGIC);
  view.setUint8(1, KIND_MICROPHONE);
  view.setUint16(2, 0, true);
  view.setUint32(4, sequence, true);
  sequence = (sequence + 1) >>> 0;
  frame.set(new Uint8Array(pcm), HEADER);
  socket.send(frame.buffer);
  stats.framesSent += 1;
}

function onAudio(data) {
  const view = new DataView(data);
  let peak = 0;
  for (let offset = 0; offset + HEADER <= data.byteLength; ) {
    if (view.getUint8(offset) !== MAGIC) return;
    const kind = view.getUint8(offset + 1);
    const size = kind === KIND_MIXED ? STEREO_BYTES : MONO_BYTES;
    if (offset + HEADER + size > data.byteLength) return;
    if (kind === KIND_MIXED) {
      const pcm = data.slice(offset + HEADER, offset + HEADER + size);
      const samples = new Int16Array(pcm);
      for (let i = 0; i < samples.length; i++) peak = Math.max(peak, Math.abs(samples[i]));
      mixNode?.port.postMessage(pcm, [pcm]);
      stats.framesReceived += 1;
    }
    offset += HEADER + size;
  }
  stats.peak = Math.max(stats.peak, peak);
  $("out-level").value = peak / 0x8000;
}

function setMode(mode) {
  const ptt = mode === "ptt";
  $("talk").disabled = !ptt || !mixNode; // usable once connected
  transmitting = !ptt;
}

function holdTalk(on) {
  if ($("talk").disabled) return;
  transmitting = on;
  $("talk").dataset.active = String(on);
}

document.addEventListener("DOMContentLoaded", () => {
  invite = readInvite();
  if (!invite) {
    setState("refused", "This link has no invite. Type !voice in the game for your personal link.");
    $("start").disabled = true;
  }
  $("start").addEventListener("click", start);
  for (const radio of document.querySelectorAll("input[name=mode]")) {
    radio.addEventListener("change", () => setMode(radio.value));
  }
  $("talk").addEventListener("pointerdown", () => holdTalk(true));
  for (const end of ["pointerup", "pointerleave", "pointercancel"]) $("talk").addEventListener(end, () => holdTalk(false));
  document.addEventListener("keydown", (event) => {
    if (event.code === "Space" && event.target.tagName !== "INPUT" && !event.repeat) {
      event.preventDefault();
      holdTalk(true);
    }
  });
  document.addEventListener("keyup", (event) => {
    if (event.code === "Space" && event.target.tagName !== "INPUT") holdTalk(false);
  });
  $("chat").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("chat-text").value.trim();
    if (text && socket?.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "chat", text }));
      $("chat-text").value = "";
    }
  });
});
