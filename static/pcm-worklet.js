// Audio-thread side of the recorder: mixes the microphone to mono and posts Float32 PCM to the
// page in batches, because one message per 128-frame render quantum would flood the main thread.
const BATCH_FRAMES = 2048;

class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.batch = new Float32Array(BATCH_FRAMES);
    this.filled = 0;
    this.port.onmessage = (event) => {
      if (event.data === "flush") {
        this.post();
        this.port.postMessage({ done: true });
      }
    };
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length > 0) {
      const frames = channels[0].length;
      for (let i = 0; i < frames; i++) {
        let sum = 0;
        for (const channel of channels) sum += channel[i];
        this.batch[this.filled++] = sum / channels.length;
        if (this.filled === BATCH_FRAMES) this.post();
      }
    }
    return true;
  }

  post() {
    if (this.filled === 0) return;
    const pcm = this.batch.slice(0, this.filled);
    this.port.postMessage({ pcm }, [pcm.buffer]);
    this.filled = 0;
  }
}

registerProcessor("pcm-capture", PcmCapture);
