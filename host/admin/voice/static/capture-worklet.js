// Microphone -> 20 ms frames of 48 kHz signed 16-bit mono (960 samples), posted to the page as ArrayBuffers.
// The context normally runs at 48 kHz already; otherwise the input is resampled linearly.
const FRAME = 960;
const RATE = 48000;

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frame = new Int16Array(FRAME);
    this.filled = 0;
    this.step = sampleRate / RATE; // input samples per output sample
    this.position = 0; // fractional read position into the current block
    this.last = 0;
  }

  push(value) {
    const clipped = Math.max(-1, Math.min(1, value));
    this.frame[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
    if (this.filled === FRAME) {
      this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
      this.frame = new Int16Array(FRAME);
      this.filled = 0;
    }
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    if (this.step === 1) {
      for (let i = 0; i < channel.length; i++) this.push(channel[i]);
      return true;
    }
    while (this.position < channel.length) {
      const i = Math.floor(this.position);
      const before = i === 0 ? this.last : channel[i - 1];
      const fraction = this.position - i;
      this.push(before + (channel[i] - before) * fraction);
      this.position += this.step;
    }
    this.position -= channel.length;
    this.last = channel[channel.length - 1];
    return true;
  }
}

registerProcessor("capture-processor", CaptureProcessor);
