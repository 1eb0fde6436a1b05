// Charts of this process's /metrics (uPlot, vendored in /static/vendor): each panel turns two successive scrapes
// into one point per series (a rate, an average over the interval, or a current value).
import { el, notice } from "./api.js";
import { parseMetrics, sumBy } from "./metrics.js";

const INTERVAL_MS = 5000;
const KEEP_POINTS = 120; // ten minutes

function rate(name, by) {
  return (now, then, seconds) => {
    const a = sumBy(now, name, by), b = sumBy(then, name, by);
    return Object.fromEntries(Object.entries(a).map(([k, v]) => [k, ((v - (b[k] || 0)) / seconds) * 60]));
  };
}

function averageMs(name, by) {
  return (now, then) => {
    const sums = sumBy(now, `${name}_sum`, by), counts = sumBy(now, `${name}_count`, by);
    const sums0 = sumBy(then, `${name}_sum`, by), counts0 = sumBy(then, `${name}_count`, by);
    const out = {};
    for (const key of Object.keys(counts)) {
      const n = counts[key] - (counts0[key] || 0);
      if (n > 0) out[key] = ((sums[key] - (sums0[key] || 0)) / n) * 1000;
    }
    return out;
  };
}

function current(name, by) { return (now) => sumBy(now, name, by); }

const PANELS = [
  { id: "latency-stage", title: "Turn latency by stage (average, ms)", point: averageMs("npc_host_turn_stage_seconds", "stage") },
  { id: "voice-stage", title: "Voice: end of speech to each stage (average, ms)", point: averageMs("npc_host_voice_stage_seconds", "stage") },
  { id: "latency-npc", title: "Turn total latency by NPC (average, ms)", point: averageMs("npc_host_npc_turn_seconds", "npc") },
  { id: "turns", title: "Turns per minute by outcome (completed, interrupted)", point: rate("npc_host_turns_total", "outcome") },
  { id: "queues", title: "Queue depth (pending entries per stream)", point: current("npc_host_queue_depth", "stream") },
  { id: "errors", title: "Errors per minute by code", point: rate("npc_host_errors_total", "code") },
  { id: "model-load", title: "Model load time (seconds, latest)", point: current("npc_host_model_load_seconds", "model") },
  { id: "rcon", title: "RCON round trip (average, ms)", point: averageMs("npc_host_rcon_seconds", "address") },
  { id: "reconnects", title: "RCON reconnects per minute", point: rate("npc_host_rcon_reconnects_total", "address") },
  { id: "advisor", title: "Advisor passes per minute", point: rate("npc_host_advisor_passes_total", "outcome") },
  { id: "utterances", title: "Utterances per minute by how they ended (finished line, silence, cut)", point: rate("npc_host_utterances_ended_total", "end") },
];

const COLORS = ["#2f6f4f", "#a2261b", "#2a5a9a", "#c7861b", "#7a3d8c", "#4a8a8a", "#888"];

class Panel {
  constructor(spec, box) {
    this.spec = spec;
    this.times = [];
    this.series = new Map(); // name -> values aligned with times
    this.holder = el("div", { class: "chart", "data-chart": spec.id }, el("h3", {}, spec.title));
    this.empty = el("p", { class: "last" }, "no data yet");
    this.holder.append(this.empty);
    box.append(this.holder);
    this.plot = null;
  }

  add(time, values) {
    this.times.push(time);
    for (const name of Object.keys(values)) if (!this.series.has(name)) this.series.set(name, this.times.slice(0, -1).map(() => null));
    for (const [name, list] of this.series) list.push(values[name] ?? null);
    if (this.times.length > KEEP_POINTS) { this.times.shift(); for (const list of this.series.values()) list.shift(); }
    this.draw();
  }

  draw() {
    if (!this.series.size) return;
    const names = [...this.series.keys()];
    if (!this.plot || this.plot.series.length !== names.length + 1) {
      if (this.plot) this.plot.destroy();
      this.empty.remove();
      const width = Math.max(300, this.holder.clientWidth - 16);
      this.plot = new window.uPlot({
        width, height: 220,
        series: [{}, ...names.map((name, i) => ({ label: name || "-", stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true }))],
        axes: [{}, { size: 60 }],
      }, [this.times, ...names.map((n) => this.series.get(n))], this.holder);
    } else {
      this.plot.setData([this.times, ...names.map((n) => this.series.get(n))]);
    }
  }
}

export function startCharts() {
  const box = document.getElementById("charts");
  const panels = PANELS.map((spec) => new Panel(spec, box));
  let previous = null;
  let previousAt = 0;
  async function scrape() {
    try {
      const response = await fetch("/metrics", { credentials: "same-origin" });
      const samples = parseMetrics(await response.text());
      const now = Date.now();
      if (previous) {
        const seconds = (now - previousAt) / 1000;
        for (const panel of panels) panel.add(now / 1000, panel.spec.point(samples, previous, seconds));
      }
      previous = samples; previousAt = now;
    } catch (error) {
      notice(`metrics not read: ${error.message}`);
    }
  }
  scrape();
  setInterval(scrape, INTERVAL_MS);
}
