// One player for A/B/C listening: the original, low-res and super-resolved versions play together
// in step, and a button (or the keys 1, 2, 3) chooses which one is heard, at the same position and
// without a gap, the way people compare audio.

const FADE_S = 0.01; // a 10 ms crossfade: a switch makes no click

export class ABPlayer {
  /** `root` holds buttons with data-source, a play button, a range input and a time label. */
  constructor(root) {
    this.root = root;
    this.buttons = [...root.querySelectorAll("[data-source]")];
    this.playButton = root.querySelector(".ab-play");
    this.seekBar = root.querySelector(".ab-seek");
    this.timeLabel = root.querySelector(".ab-time");
    this.context = null;
    this.buffers = {};
    this.sources = [];
    this.gains = {};
    this.active = "superres";
    this.offset = 0; // seconds into the audio where playback (re)starts
    this.startedAt = null; // context time when it did; null while paused
    this.duration = 0;
    this.generation = 0;
    this.buttons.forEach((b) => b.addEventListener("click", () => this.select(b.dataset.source)));
    this.playButton.addEventListener("click", () => (this.playing ? this.pause() : this.play()));
    this.seekBar.addEventListener("input", () => this.seek(Number(this.seekBar.value)));
    setInterval(() => this.showPosition(), 100);
  }

  get playing() {
    return this.startedAt !== null;
  }

  get position() {
    if (!this.playing) return this.offset;
    return Math.min(this.duration, this.offset + this.context.currentTime - this.startedAt);
  }

  /** Fetch and decode {name: url}; names without a url get no button. */
  async load(urls) {
    this.pause();
    const generation = ++this.generation;
    this.context = this.context || new AudioContext();
    this.root.hidden = true;
    const entries = Object.entries(urls).filter(([, url]) => url);
    const decoded = await Promise.all(
      entries.map(async ([name, url]) => {
        const data = await (await fetch(url)).arrayBuffer();
        return [name, await this.context.decodeAudioData(data)];
      }),
    );
    if (generation !== this.generation) return; // a newer result arrived meanwhile
    this.buffers = Object.fromEntries(decoded);
    this.duration = Math.min(...decoded.map(([, buffer]) => buffer.duration));
    this.seekBar.max = String(this.duration);
    this.offset = 0;
    this.buttons.forEach((b) => (b.hidden = !(b.dataset.source in this.buffers)));
    this.select(this.buffers.superres ? "superres" : decoded[0][0]);
    this.root.hidden = false;
  }

  play() {
    if (!this.context || this.playing) return;
    this.context.resume();
    if (this.offset >= this.duration - 0.01) this.offset = 0;
    const when = this.context.currentTime + 0.02;
    this.sources = Object.entries(this.buffers).map(([name, buffer]) => {
      const gain = this.context.createGain();
      gain.gain.value = name === this.active ? 1 : 0;
      gain.connect(this.context.destination);
      const source = this.context.createBufferSource();
      source.buffer = buffer;
      source.connect(gain);
      source.start(when, this.offset);
      this.gains[name] = gain;
      return source;
    });
    this.sources[0].onended = () => {
      if (this.playing && this.position >= this.duration - 0.05) this.pause(this.duration);
    };
    this.startedAt = when;
    this.playButton.textContent = "Pause";
    this.root.dataset.playing = "true";
  }

  pause(at = this.position) {
    if (this.playing) this.sources.forEach((s) => s.stop());
    this.sources = [];
    this.gains = {};
    this.startedAt = null;
    this.offset = at;
    this.playButton.textContent = "Play";
    this.root.dataset.playing = "false";
    this.showPosition();
  }

  seek(seconds) {
    const wasPlaying = this.playing;
    this.pause(Math.max(0, Math.min(seconds, this.duration)));
    if (wasPlaying) this.play();
  }

  /** Hear `name` from now on: every version keeps playing, only the gains move. */
  select(name) {
    if (!(name in this.buffers)) return;
    this.active = name;
    const now = this.context ? this.context.currentTime : 0;
    for (const [other, gain] of Object.entries(this.gains)) {
      gain.gain.cancelScheduledValues(now);
      gain.gain.setValueAtTime(gain.gain.value, now);
      gain.gain.linearRampToValueAtTime(other === name ? 1 : 0, now + FADE_S);
    }
    this.buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.source === name)));
    this.root.dataset.active = name;
  }

  showPosition() {
    const position = this.position;
    this.root.dataset.position = position.toFixed(3);
    if (document.activeElement !== this.seekBar) this.seekBar.value = String(position);
    this.timeLabel.textContent = `${position.toFixed(1)} / ${this.duration.toFixed(1)} s`;
  }
}

/** Keys 1, 2, 3 choose the version, unless the person is typing or choosing in a form field. */
export function bindKeys(player) {
  const names = { 1: "original", 2: "lowres", 3: "superres" };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || player.root.hidden) return;
    if (event.target.closest("input:not([type=range]), select, textarea")) return;
    if (names[event.key]) {
      player.select(names[event.key]);
      event.preventDefault();
    }
  });
}
