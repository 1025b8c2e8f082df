// The page: take speech (recording or file), submit a job, poll it, and show the result.
import { Recorder, RecorderError } from "./recorder.js";
import { encodeWav } from "./wav.js";
import { ABPlayer, bindKeys } from "./abplayer.js";

const config = JSON.parse(document.getElementById("page-config").textContent);
const $ = (id) => document.getElementById(id);

const ui = {
  record: $("record"),
  stop: $("stop"),
  timer: $("rec-timer"),
  level: $("rec-level"),
  countdown: $("rec-countdown"),
  upload: $("upload"),
  inputMessage: $("input-message"),
  preview: $("input-preview"),
  summary: $("input-summary"),
  inputPlayer: $("input-player"),
  scale: $("scale"),
  model: $("model"),
  outputRate: $("output-rate"),
  serviceStatus: $("service-status"),
  choice: $("choice"),
  warnings: $("warnings"),
  predict: $("predict"),
  predictHint: $("predict-hint"),
  progress: $("progress"),
  progressBar: $("progress-bar"),
  progressText: $("progress-text"),
  jobMessage: $("job-message"),
  result: $("result"),
  download: $("download"),
  downloadHint: $("download-hint"),
  spectrogram: $("spectrogram"),
  spectrogramLink: $("spectrogram-link"),
  spectrogramCaption: $("spectrogram-caption"),
  timings: $("timings"),
  metricsBox: $("metrics-box"),
  metricsBody: document.querySelector("#metrics tbody"),
  resultTitle: $("result-title"),
  announcer: $("announcer"),
};

const abPlayer = new ABPlayer($("ab-player"));
bindKeys(abPlayer);

const state = { input: null, recorder: null, busy: false, job: 0, inputUrl: null, lastState: null, ready: true };

// ---------------------------------------------------------------- messages and small helpers

function show(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

function announce(text) {
  ui.announcer.textContent = text;
}

function clock(seconds) {
  const whole = Math.floor(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

function kHz(rate) {
  return `${(rate / 1000).toLocaleString("en", { maximumFractionDigits: 2 })} kHz`;
}

function seconds(value) {
  if (value == null) return "–";
  return value < 10 ? `${value.toFixed(2)} s` : `${value.toFixed(1)} s`;
}

function number(value, digits) {
  return value == null || Number.isNaN(value) ? "–" : value.toFixed(digits);
}

function updatePredict() {
  ui.predict.disabled = state.busy || !state.input || Boolean(state.recorder);
  if (state.recorder) ui.predictHint.textContent = "Stop the recording first.";
  else if (!state.input) ui.predictHint.textContent = "Record or upload some speech first.";
  else if (state.busy) ui.predictHint.textContent = "Working…";
  else ui.predictHint.textContent = "";
}

// ---------------------------------------------------------------- input: recording and upload

function setInput(blob, filename, label) {
  if (state.inputUrl) URL.revokeObjectURL(state.inputUrl);
  state.inputUrl = URL.createObjectURL(blob);
  state.input = { blob, filename, label };
  delete ui.inputPlayer.dataset.liveSeconds;
  delete ui.inputPlayer.dataset.heardSeconds;
  ui.inputPlayer.src = state.inputUrl;
  ui.summary.textContent = label;
  ui.preview.hidden = false;
  updatePredict();
}

async function startRecording() {
  show(ui.inputMessage, "");
  const recorder = new Recorder({
    maxSeconds: config.max_record_s,
    onProgress: (elapsed, level) => {
      ui.timer.textContent = clock(elapsed);
      ui.level.style.transform = `scaleX(${(1 - level).toFixed(3)})`;
      const left = Math.max(0, Math.ceil(config.max_record_s - elapsed));
      ui.countdown.textContent = `${left} s left`;
      ui.countdown.classList.toggle("warn", left <= 5);
    },
    onLimit: () => stopRecording(true),
  });
  ui.record.disabled = true;
  try {
    await recorder.start();
  } catch (error) {
    ui.record.disabled = false;
    show(ui.inputMessage, error instanceof RecorderError ? error.message : String(error));
    return;
  }
  state.recorder = recorder;
  ui.timer.textContent = "0:00";
  ui.countdown.textContent = `${Math.round(config.max_record_s)} s left`;
  ui.record.classList.add("recording");
  announce(`Recording. It stops by itself after ${Math.round(config.max_record_s)} seconds.`);
  ui.stop.disabled = false;
  ui.stop.focus();
  updatePredict();
}

async function stopRecording(atLimit = false) {
  const recorder = state.recorder;
  if (!recorder) return;
  state.recorder = null;
  ui.stop.disabled = true;
  const { samples, rate, clock } = await recorder.stop();
  ui.record.disabled = false;
  ui.record.classList.remove("recording");
  ui.level.style.transform = "scaleX(1)";
  ui.countdown.classList.remove("warn");
  ui.countdown.textContent = atLimit
    ? `Stopped at the ${Math.round(config.max_record_s)} s limit`
    : `Up to ${Math.round(config.max_record_s)} s`;
  if (samples.length < rate * 0.25) {
    show(ui.inputMessage, "The recording is too short or empty. Hold Record a little longer.");
    updatePredict();
    return;
  }
  const duration = samples.length / rate;
  ui.upload.value = "";
  announce(`Recorded ${duration.toFixed(1)} seconds; playing it back.`);
  setInput(encodeWav(samples, rate), "recording.wav", `Your recording: ${duration.toFixed(1)} s at ${kHz(rate)}`);
  // The recorder's own clock beside the sample count: a dropped or doubled batch shows as a gap.
  ui.inputPlayer.dataset.liveSeconds = clock.live.toFixed(3);
  ui.inputPlayer.dataset.heardSeconds = clock.heard.toFixed(3);
  // Hearing it back straight away tells the person whether the microphone picked them up.
  ui.inputPlayer.play().catch(() => {});
  ui.predict.focus();
}

function chooseFile() {
  show(ui.inputMessage, "");
  const file = ui.upload.files[0];
  if (!file) return;
  if (file.size > config.max_bytes) {
    const mb = (bytes) => (bytes / 1e6).toFixed(1);
    show(ui.inputMessage, `${file.name} is ${mb(file.size)} MB; the limit is ${mb(config.max_bytes)} MB.`);
    return;
  }
  setInput(file, file.name, `${file.name} (${(file.size / 1e6).toFixed(2)} MB)`);
}

// ---------------------------------------------------------------- settings: scale and model

const AUTO = "auto";

function mode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

function fillSettings() {
  ui.scale.replaceChildren(
    new Option("Auto: from the audio's bandwidth", AUTO),
    ...config.scales.map((scale) => {
      const any = config.models.find((m) => m.scale === scale);
      return new Option(`×${scale}  (${kHz(any.input_rate)} → ${kHz(any.output_rate)})`, scale);
    }),
  );
  fitScaleToMode();
}

/** Enhance mode's input is low-res already: its own bandwidth picks the scale by default. In
 * simulate mode the input is the full-band reference, so the paper's ×4 is the default. */
function fitScaleToMode() {
  const enhance = mode() === "enhance";
  ui.scale.value = enhance ? AUTO : String(config.scales.includes(4) ? 4 : config.scales[0]);
  ui.outputRate.disabled = !enhance;
  fillModels();
}

function fillModels() {
  const modelRate = ui.outputRate.querySelector('option[value="model"]');
  if (ui.scale.value === AUTO) {
    ui.model.replaceChildren(new Option("the default for the detected band", ""));
    modelRate.textContent = "the model's";
    return;
  }
  const scale = Number(ui.scale.value);
  const models = config.models.filter((m) => m.scale === scale);
  ui.model.replaceChildren(
    ...models.map((m) => new Option(m.name === "spline" ? "spline (baseline, no network)" : `${m.name} (${m.arch})`, m.name)),
  );
  const preferred = models.find((m) => m.default) || models.find((m) => m.name !== "spline") || models[0];
  if (preferred) ui.model.value = preferred.name;
  if (models.length) modelRate.textContent = `the model's (${kHz(models[0].output_rate)})`;
}

function modelInfo(name, scale) {
  return config.models.find((m) => m.name === name && m.scale === scale) || config.models.find((m) => m.scale === scale);
}

// ---------------------------------------------------------------- the job: submit, poll, render

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return {};
  }
}

function setProgress(text, percent) {
  ui.progress.hidden = false;
  ui.progressText.textContent = text;
  // No value attribute makes the bar indeterminate: right for "waiting", wrong for "42 %".
  if (percent == null) ui.progressBar.removeAttribute("value");
  else ui.progressBar.value = percent;
}

function finish(errorText) {
  state.busy = false;
  if (errorText) {
    ui.progress.hidden = true;
    show(ui.jobMessage, errorText);
  }
  updatePredict();
}

async function predict() {
  if (!state.input || state.busy) return;
  const job = ++state.job;
  state.busy = true;
  updatePredict();
  show(ui.jobMessage, "");
  abPlayer.pause();
  ui.result.hidden = true;
  setProgress("Uploading…", null);
  state.lastState = null;
  announce("Uploading.");

  const form = new FormData();
  form.append("audio", state.input.blob, state.input.filename);
  form.append("mode", document.querySelector('input[name="mode"]:checked').value);
  form.append("scale", ui.scale.value);
  form.append("model", ui.model.value);
  // Simulate mode writes the model's rate (the control is disabled there, not reset).
  form.append("output_rate", ui.outputRate.disabled ? "model" : ui.outputRate.value);

  let response;
  try {
    response = await fetch(config.jobs_url, { method: "POST", body: form });
  } catch {
    finish("The server could not be reached. Check the connection and press Predict again.");
    return;
  }
  const body = await readJson(response);
  if (!response.ok) {
    finish(`Not accepted: ${body.error || `the server answered ${response.status}`}`);
    return;
  }
  poll(job, body.status_url, performance.now());
}

async function poll(job, url, started) {
  if (job !== state.job) return;
  let status;
  try {
    const response = await fetch(url, { cache: "no-store" });
    status = await readJson(response);
    // Redis or a proxy briefly away (503, 502, 504): the job is still there, so keep polling.
    if ([502, 503, 504].includes(response.status)) throw new Error(`server answered ${response.status}`);
    if (!response.ok) {
      finish(`The job was lost: ${status.error || `the server answered ${response.status}`}`);
      return;
    }
  } catch {
    // A dropped or refused poll is not a failed job: say so, and try again shortly.
    setProgress("Reconnecting… (the server is briefly unreachable; the job is kept)", null);
    setTimeout(() => poll(job, url, started), 2000);
    return;
  }
  if (job !== state.job) return;
  if (status.state === "done") {
    const rate = await rates(status);
    if (job !== state.job) return;
    ui.progress.hidden = true;
    render(status, rate);
    finish();
    announce("Done. The result is below.");
    return;
  }
  if (status.state === "failed") {
    finish(`The job failed: ${status.error || "no reason was given"}`);
    return;
  }
  const progress = status.progress || {};
  if (status.state !== state.lastState) {
    state.lastState = status.state;
    announce(status.state === "queued" ? "Waiting for a worker." : "Processing.");
  }
  if (status.state === "queued") {
    setProgress(state.ready ? "Waiting for a worker…" : "Waiting for the service to start up…", null);
  }
  else {
    const stage = progress.stage || "working";
    const percent = progress.percent || 0;
    setProgress(`${stage[0].toUpperCase()}${stage.slice(1)}… ${Math.round(percent)} %`, percent);
  }
  const waited = performance.now() - started;
  setTimeout(() => poll(job, url, started), waited < 10000 ? 400 : 1000);
}

function setPlayer(id, url, rateText) {
  const figure = $(`player-${id}`);
  figure.hidden = !url;
  if (url) figure.querySelector("audio").src = url;
  $(`rate-${id}`).textContent = rateText;
}

/** {input, low, high} sample rates of a finished job: its result record says; the models guess. */
async function rates(status) {
  const params = status.params || {};
  try {
    const record = await (await fetch(status.files["result.json"])).json();
    return { input: record.input && record.input.rate, low: record.lowres_rate, high: record.output_rate };
  } catch {
    const info = modelInfo(params.model, Number(params.scale));
    return info ? { low: info.input_rate, high: info.output_rate } : {};
  }
}

/** Which model ran and why, in words: the detected band for scale auto, and what a higher
 * output rate means. */
function choiceText(status, rate) {
  const params = status.params || {};
  const input = status.input || {};
  const info = modelInfo(params.model, Number(params.scale));
  const parts = [];
  if (params.auto && input.bandwidth_hz && info) {
    parts.push(
      `Your audio's spectrum ends at ${kHz(input.bandwidth_hz)}, so ${params.model} ` +
        `(×${params.scale}, ${kHz(info.input_rate)} → ${kHz(info.output_rate)}) was picked: ` +
        `its input keeps all of that band (the dotted line in the spectrograms).`,
    );
  }
  const chain = status.chain || [];
  const next = info && chain.length > 1 && config.models.find((m) => m.name === chain[1] && m.input_rate === info.output_rate);
  if (next) {
    parts.push(
      `Then ${next.name} (×${next.scale}, ${kHz(next.input_rate)} → ${kHz(next.output_rate)}) ` +
        `restored the band up to ${kHz(next.output_rate / 2)}.`,
    );
  }
  const top = next ? next.output_rate : info && info.output_rate;
  if (["input", "48000"].includes(params.output_rate) && top && rate.high > top) {
    const why = params.output_rate === "input" ? "to match your file" : "as asked";
    parts.push(`Written at ${kHz(rate.high)} ${why}; nothing above ${kHz(top / 2)} is added.`);
  }
  return parts.join(" ");
}

function render(status, rate) {
  const files = status.files || {};
  const params = status.params || {};
  const simulate = params.mode === "simulate";
  const highRate = rate.high ? kHz(rate.high) : "";
  const lowRate = rate.low ? kHz(rate.low) : "";

  // In simulate mode the reference is the original brought to the output rate: the fair comparison.
  const asUploaded = rate.input ? `${kHz(rate.input)}, as uploaded` : "as uploaded";
  setPlayer("original", files["reference.wav"] || files.input, simulate ? highRate : asUploaded);
  setPlayer("lowres", files["lowres.wav"], lowRate);
  setPlayer("superres", files["superres.wav"], highRate);
  abPlayer
    .load({
      original: files["reference.wav"] || files.input,
      lowres: files["lowres.wav"],
      superres: files["superres.wav"],
    })
    .catch(() => {}); // the three players below still work without Web Audio

  ui.download.href = `${files["superres.wav"]}?download=1`;
  ui.download.setAttribute("download", rate.high ? `superres-${rate.high / 1000}k.wav` : "superres.wav");
  const models = status.chain && status.chain.length ? status.chain.join(" then ") : params.model || "default";
  ui.downloadHint.textContent = `16-bit WAV at ${highRate}, model ${models}`;
  show(ui.choice, choiceText(status, rate));
  show(ui.warnings, (status.warnings || []).map((w) => `Note: ${w}.`).join(" "));
  ui.spectrogramLink.hidden = !files["spectrogram.png"];
  if (files["spectrogram.png"]) {
    ui.spectrogram.src = files["spectrogram.png"];
    ui.spectrogramLink.href = files["spectrogram.png"];
  }
  // The spectrograms run to the output's Nyquist: 8 kHz, or 24 kHz for full-band output.
  const caption = rate.high && rate.low
    ? `Frequency from 0 to ${kHz(rate.high / 2)}; the dashed line is the low-res input's ${kHz(rate.low / 2)} limit.`
    : "";
  show(ui.spectrogramCaption, files["spectrogram.png"] ? caption : "");

  const t = status.timings || {};
  const speed = (factor) => (factor == null ? "–" : `${number(factor, 1)}× real time`);
  // The model's own time apart from the whole job's: decoding, scoring, drawing and storing
  // cost the same whatever the model.
  const rows = [
    ["Audio length", seconds(t.audio_s)],
    ["Model time", seconds(t.model_s)],
    ["Model speed", speed(t.model_realtime_factor)],
    ["Whole job", seconds(t.processing_s)],
    ["Job speed", speed(t.realtime_factor)],
    ["Queue wait", seconds(t.queued_s)],
    ["Device", t.device || "–"],
  ];
  ui.timings.replaceChildren(
    ...rows.flatMap(([name, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    }),
  );

  const metrics = status.metrics;
  ui.metricsBox.hidden = !metrics;
  if (metrics) {
    // With the spline baseline as the model, both rows would be the same numbers.
    const rows = [[params.model || "model", metrics.model], ["spline", metrics.spline]].filter(
      ([, m], i) => m && !(i === 1 && params.model === "spline"),
    );
    ui.metricsBody.replaceChildren(
      ...rows.map(([name, m]) => {
        const tr = document.createElement("tr");
        const dB = (value) => (value == null ? "–" : `${number(value, 1)} dB`);
        const cells = [name, dB(m.snr), number(m.lsd, 2), number(m.lsd_hf, 2), dB(m.lowband_snr)];
        cells.forEach((text, i) => {
          const cell = document.createElement(i === 0 ? "th" : "td");
          if (i === 0) cell.scope = "row";
          cell.textContent = text;
          tr.append(cell);
        });
        return tr;
      }),
    );
  }

  ui.result.hidden = false;
  // Keyboard and screen-reader users land on the result, not back at the Predict button.
  ui.resultTitle.focus({ preventScroll: true });
  ui.result.scrollIntoView({ behavior: "smooth", block: "start" });
}

// ---------------------------------------------------------------- is the service ready?

/** Ask /healthz until a worker has loaded its models; say "starting up" meanwhile, so a job sent
 * now is not left waiting in silence. */
async function checkHealth() {
  let health = {};
  try {
    health = await readJson(await fetch(config.health_url, { cache: "no-store" }));
  } catch {
    health = { status: "unreachable" };
  }
  state.ready = health.status === "ok";
  if (state.ready) {
    show(ui.serviceStatus, "");
    return;
  }
  show(
    ui.serviceStatus,
    health.status === "starting"
      ? "The service is starting up: the model is loading. You can record now; a job sent now waits until it is ready."
      : "The server's job queue cannot be reached right now; retrying.",
  );
  setTimeout(checkHealth, 2000);
}

// ---------------------------------------------------------------- wiring

ui.record.addEventListener("click", startRecording);
ui.stop.addEventListener("click", () => stopRecording(false));
ui.upload.addEventListener("change", chooseFile);
ui.scale.addEventListener("change", fillModels);
document.querySelectorAll('input[name="mode"]').forEach((radio) => radio.addEventListener("change", fitScaleToMode));
ui.predict.addEventListener("click", predict);
fillSettings();
updatePredict();
checkHealth();
