// The player's stereo mix: 20 ms frames of interleaved 16-bit L R at 48 kHz, played through a small jitter buffer.
// Playback starts once TARGET frames are queued (60 ms); a missing frame plays as silence; more than MAX queued
// frames (a stall that caught up) drops the oldest, so the delay never grows past MAX * 20 ms.
const TARGET = 3;
const MAX = 10;

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = [];
    this.current = null;
    this.offset = 0;
    this.playing = false;
    this.port.onmessage = (event) => {
      this.queue.push(new Int16Array(event.data));
      while (this.queue.length > MAX) this.queue.shift();
    };
  }

  process(_inputs, outputs) {
    const [left, right] = outputs[0];
    if (!this.playing && this.queue.length >= TARGET) this.playing = true;
    for (let i = 0; i < left.length; i++) {
      if (!this.current || this.offset >= this.current.length) {
        this.current = this.playing ? this.queue.shift() || null : null;
        this.offset = 0;
        if (!this.current) {
          this.playing = false; // ran dry: wait for TARGET frames again
          left.fill(0, i);
          if (right) right.fill(0, i);
          return true;
        }
      }
      left[i] = this.current[this.offset] / 0x8000;
      if (right) right[i] = this.current[this.offset + 1] / 0x8000;
      this.offset += 2;
    }
    return true;
  }
}

registerProcessor("playback-processor", PlaybackProcessor);
