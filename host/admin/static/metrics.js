// Reading Prometheus' text format: {name: [{labels, value}]}. Only what the charts need (no exemplars, no escapes
// beyond \" and \\ in label values).
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text) {
  const samples = {};
  for (const raw of text.split("\n")) {
    if (!raw || raw.startsWith("#")) continue;
    const match = SAMPLE.exec(raw);
    if (!match) continue;
    const labels = {};
    for (const [, key, value] of (match[2] || "").matchAll(LABEL)) labels[key] = value.replace(/\\(.)/g, "$1");
    (samples[match[1]] ||= []).push({ labels, value: Number(match[3]) });
  }
  return samples;
}

// Sum of a metric's samples grouped by one label (or all together when `by` is null).
export function sumBy(samples, name, by, keep = () => true) {
  const out = {};
  for (const sample of samples[name] || []) {
    if (!keep(sample.labels)) continue;
    const key = by ? sample.labels[by] || "" : "all";
    out[key] = (out[key] || 0) + sample.value;
  }
  return out;
}
