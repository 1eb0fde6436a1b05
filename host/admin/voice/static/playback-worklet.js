// The player's stereo mix: 20 ms frames of interleaved 16-bit L R at 48 kHz, played through a small jitter buffer.
// Playback starts once TARGET frames are queued (60 ms); when the queue runs dry it plays silence and waits for TARGET
// frames again; more than MAX queued frames (a stall that caught up) drops the oldest, so the delay stays under
// MAX * 20 ms. A context at another rate than 48 kHz (some browsers insist on the device's) is fed by linear
// interpolation.
const TARGET = 3;
const MAX = 10;
const RATE = 48000;

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = [];
    this.current = null;
    this.position = 0; // in stereo sample pairs of `current`, fractional when resampling
    this.playing = false;
    this.step = RATE / sampleRate;
    this.port.onmessage = (event) => {
      this.queue.push(new Int16Array(event.data));
      while (this.queue.length > MAX) this.queue.shift();
    };
  }

  // The sample pair at `index` of the current frame, reaching into the next queued frame at the edge.
  pair(index) {
    const pairs = this.current.length / 2;
    if (index < pairs) return [this.current[2 * index], this.current[2 * index + 1]];
    const next = this.queue[0];
    return next ? [next[0], next[1]] : [this.current[this.current.length - 2], this.current[this.current.length - 1]];
  }

  process(_inputs, outputs) {
    const [left, right] = outputs[0];
    if (!this.playing && this.queue.length >= TARGET) this.playing = true;
    for (let i = 0; i < left.length; i++) {
      while (!this.current || this.position >= this.current.length / 2) {
        if (this.current) this.position -= this.current.length / 2;
        this.current = this.playing ? this.queue.shift() || null : null;
        if (!this.current) {
          this.playing = false; // ran dry: wait for TARGET frames again
          this.position = 0;
          left.fill(0, i);
          if (right) right.fill(0, i);
          return true;
        }
      }
      const index = Math.floor(this.position);
      const fraction = this.position - index;
      const [l0, r0] = this.pair(index);
      const [l1, r1] = fraction ? this.pair(index + 1) : [l0, r0];
      left[i] = (l0 + (l1 - l0) * fraction) / 0x8000;
      if (right) right[i] = (r0 + (r1 - r0) * fraction) / 0x8000;
      this.position += this.step;
    }
    return true;
  }
}

registerProcessor("playback-processor", PlaybackProcessor);
