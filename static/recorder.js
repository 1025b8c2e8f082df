// Microphone capture: getUserMedia with the browser's voice processing off, PCM from an AudioWorklet.

const WORKLET_URL = new URL("./pcm-worklet.js", import.meta.url);

/** An error whose message can be shown to the person as it is. */
export class RecorderError extends Error {}

/** Words for the ways getUserMedia fails, so the page never shows a bare DOMException. */
function explain(error) {
  switch (error && error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Microphone access was refused. Allow the microphone for this page in your browser's site settings, or upload a file instead.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Plug one in and try again, or upload a file instead.";
    case "NotReadableError":
      return "The microphone is busy or unavailable (another app may be using it). Close that app and try again, or upload a file instead.";
    default:
      return `The microphone could not be started (${(error && error.message) || error}). You can upload a file instead.`;
  }
}

export class Recorder {
  /**
   * @param {object} options
   * @param {number} options.maxSeconds recording stops by itself after this long
   * @param {(seconds: number, level: number) => void} options.onProgress after each PCM batch;
   *   level is the batch peak on a 0..1 scale (-60 dBFS .. 0 dBFS)
   * @param {() => void} options.onLimit called when maxSeconds is reached (then call stop())
   */
  constructor({ maxSeconds, onProgress, onLimit }) {
    this.maxSeconds = maxSeconds;
    this.onProgress = onProgress;
    this.onLimit = onLimit;
    this.chunks = [];
    this.frames = 0;
  }

  async start() {
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new RecorderError(
        "This browser does not allow recording here: microphones need a secure page (https, or localhost). You can upload a file instead.",
      );
    }
    if (typeof AudioWorkletNode === "undefined") {
      throw new RecorderError("This browser cannot record audio here (no AudioWorklet). You can upload a file instead.");
    }
    try {
      // The voice-call processing would colour the very spectrum the model is judged on.
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
      });
    } catch (error) {
      throw new RecorderError(explain(error));
    }
    try {
      this.context = new AudioContext();
      await this.context.audioWorklet.addModule(WORKLET_URL.href);
      await this.context.resume();
      const source = this.context.createMediaStreamSource(this.stream);
      this.node = new AudioWorkletNode(this.context, "pcm-capture", { outputChannelCount: [1] });
      this.node.port.onmessage = (event) => this.receive(event.data);
      source.connect(this.node);
      // The node's output is silence; connecting it keeps the graph pulling it in every browser.
      this.node.connect(this.context.destination);
      this.liveAt = performance.now();
    } catch (error) {
      this.release();
      throw new RecorderError(`Recording could not start: ${error.message || error}`);
    }
  }

  get rate() {
    return this.context ? this.context.sampleRate : 0;
  }

  receive(message) {
    if (message.done) {
      if (this.flushed) this.flushed();
      return;
    }
    if (this.stopping) return;
    const room = Math.round(this.maxSeconds * this.rate) - this.frames;
    const pcm = message.pcm.length > room ? message.pcm.subarray(0, room) : message.pcm;
    if (this.heardAt === undefined) this.heardAt = performance.now() - (1000 * pcm.length) / this.rate;
    this.chunks.push(pcm);
    this.frames += pcm.length;
    let peak = 0;
    for (let i = 0; i < pcm.length; i++) peak = Math.max(peak, Math.abs(pcm[i]));
    const level = peak > 0 ? Math.max(0, 1 + (20 * Math.log10(peak)) / 60) : 0;
    this.onProgress(this.frames / this.rate, level);
    if (this.frames >= this.maxSeconds * this.rate && !this.limitReached) {
      this.limitReached = true;
      this.onLimit();
    }
  }

  /**
   * Stop capturing and return {samples, rate, clock}: samples a Float32Array; clock the page's own
   * seconds from the first audio to the stop request (`heard`) and from the live graph to the end of
   * capture (`live`), which the recording's length lies between.
   */
  async stop() {
    const asked = performance.now();
    if (this.node && !this.limitReached) {
      // Collect the worklet's partial batch before the graph goes away.
      const flushed = new Promise((resolve) => {
        this.flushed = resolve;
        setTimeout(resolve, 500);
      });
      this.node.port.postMessage("flush");
      await flushed;
    }
    this.stopping = true;
    // Audio heard before the stop was asked for is all here; none after the flush can be.
    const clock = {
      live: (performance.now() - this.liveAt) / 1000,
      heard: (asked - (this.heardAt ?? asked)) / 1000,
    };
    const rate = this.rate;
    this.release();
    const samples = new Float32Array(this.frames);
    let offset = 0;
    for (const chunk of this.chunks) {
      samples.set(chunk, offset);
      offset += chunk.length;
    }
    return { samples, rate, clock };
  }

  release() {
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    if (this.node) this.node.disconnect();
    if (this.context && this.context.state !== "closed") this.context.close();
    this.stream = this.node = null;
  }
}
