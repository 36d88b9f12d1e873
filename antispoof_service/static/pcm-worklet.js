// Copies the microphone's samples (the AudioContext runs at 16 kHz) to the page in blocks of 4,096.
class PcmTap extends AudioWorkletProcessor {
  constructor() { super(); this.block = new Float32Array(4096); this.n = 0; }
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      for (let i = 0; i < channel.length; i++) {
        this.block[this.n++] = channel[i];
        if (this.n === this.block.length) { this.port.postMessage(this.block.slice()); this.n = 0; }
      }
    }
    return true;
  }
}
registerProcessor("pcm-tap", PcmTap);
