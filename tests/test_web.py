"""Flask test-client tests for the page, every API route, every refusal and the health check."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import time
from typing import NamedTuple

import numpy as np
import pytest
import redis
import soundfile as sf

from model import audio
from webapp import create_app
from webapp.api import JOB_ID
from webapp.config import load_config
from worker.jobqueue import queued_jobs
from worker.jobstore import FILE_NAMES, mark_ready
from worker.local import RedisServer

from .waits import HANG_S


@pytest.fixture
def database_name():
    """API tests that need no worker queue on a database no worker listens on."""
    return "web"


@pytest.fixture(scope="module")
def speech(speech_wav):
    """One second of the speech fixture: (mono float32 samples, rate)."""
    x, rate = audio.load(speech_wav)
    return audio.to_mono(x)[: rate * 1], rate


def wav_bytes(x: np.ndarray, rate: int) -> bytes:
    return audio.to_wav_bytes(x, rate)


def stored(client) -> int:
    """Jobs stored and queued (the rate limiter's own counters do not count)."""
    return sum(1 for _ in client.scan_iter(match="superres:job:*")) + queued_jobs(client)


@pytest.fixture
def make_app(database):
    """Build an app on the web database; keyword overrides go to the worker settings."""

    def build(config: dict | None = None, **settings):
        return create_app(
            {
                "TESTING": True,
                "REDIS_URL": database.url,
                "WORKER_SETTINGS": dataclasses.replace(database.settings, **settings),
                # The many submissions of these tests are not what the rate limit is for.
                "SUBMIT_RATE_LIMIT": "10000 per minute",
                **(config or {}),
            }
        )

    return build


@pytest.fixture
def client(make_app):
    return make_app().test_client()


def post_job(client, data: bytes | None, **fields):
    form = {"mode": "simulate", "scale": "4", "model": "spline", **fields}
    form = {k: v for k, v in form.items() if v is not None}
    if data is not None:
        form["audio"] = (io.BytesIO(data), "speech.wav")
    return client.post("/api/jobs", data=form, content_type="multipart/form-data")


# ---------------------------------------------------------------- the page


def test_page_has_the_controls_people_use(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for name in ('id="record"', 'id="stop"', 'id="predict"', 'id="download"', 'id="upload"'):
        assert name in html
    for label in (">Record", ">Stop<", ">Predict<", ">Download<"):
        assert label in html
    assert 'alt="Before and after spectrograms' in html
    assert '<option value="48000">48 kHz (full band)</option>' in html
    config = re.search(r'<script id="page-config" type="application/json">(.*?)</script>', html)
    page_config = json.loads(config.group(1))
    assert page_config["jobs_url"] == "/api/jobs"
    assert 4 in page_config["scales"] and page_config["max_record_s"] > 0
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "name", ["app.js", "recorder.js", "pcm-worklet.js", "wav.js", "style.css", "favicon.svg"]
)
def test_static_files_are_served(client, name):
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.data
    response.close()


def test_html_routes_keep_html_errors(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


# ---------------------------------------------------------------- /api/models


def test_models_lists_rates_and_scales_without_paths(client):
    body = client.get("/api/models").get_json()
    assert {2, 3, 4} <= set(body["scales"])
    assert body["modes"] == ["simulate", "enhance"]
    assert body["output_rates"] == ["model", "input", "48000"]
    spline4 = next(m for m in body["models"] if m["name"] == "spline" and m["scale"] == 4)
    assert (spline4["input_rate"], spline4["output_rate"]) == (4000, 16000)
    full_band = [m for m in body["models"] if m["scale"] == 3]
    assert full_band and all(
        (m["input_rate"], m["output_rate"]) == (16000, 48000) for m in full_band
    )
    assert all("path" not in m for m in body["models"])
    assert body["max_bytes"] > 0 and body["max_seconds"] > 0


# ---------------------------------------------------------------- POST /api/jobs and status


def test_submit_answers_202_and_the_job_can_be_polled(client, speech):
    x, rate = speech
    data = wav_bytes(x, rate)
    response = post_job(client, data)
    assert response.status_code == 202
    body = response.get_json()
    assert JOB_ID.fullmatch(body["id"])
    assert body["status_url"] == f"/api/jobs/{body['id']}"
    assert response.headers["Location"] == body["status_url"]

    status = client.get(body["status_url"])
    assert status.status_code == 200
    assert status.headers["Cache-Control"] == "no-store"
    status = status.get_json()
    assert status["state"] == "queued"
    assert status["params"] == {
        "mode": "simulate",
        "scale": 4,
        "model": "spline",
        "auto": False,
        "output_rate": "model",
    }
    assert status["files"] == {"input": f"/api/jobs/{body['id']}/files/input"}

    original = client.get(status["files"]["input"])
    assert original.status_code == 200
    assert original.mimetype == "audio/wav"
    assert original.data == data


def test_job_ids_are_unguessable(client, speech):
    ids = {post_job(client, wav_bytes(*speech)).get_json()["id"] for _ in range(3)}
    assert len(ids) == 3
    assert all(len(i) >= 22 for i in ids)


SPEECH = b"<the speech clip>"


def tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.tile(x, (channels, 1))


TONE_1S = wav_bytes(tone(1.0, 16000), 16000)


def encoded(x: np.ndarray, rate: int, **format) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, **format)
    return buf.getvalue()


NAN_WAV = encoded(
    np.where(np.arange(16000) == 9, np.nan, 0.1), 16000, format="WAV", subtype="FLOAT"
)
FLAC_1S = encoded(tone(1.0, 16000)[0], 16000, format="FLAC")


class Refusal(NamedTuple):
    code: int
    words: str  # in the error message
    data: bytes | None = SPEECH  # None: no audio field at all
    fields: dict = {}
    config: dict = {}  # Flask config
    settings: dict = {}  # worker settings


REFUSALS = {
    "no audio field": Refusal(400, "audio", data=None),
    "empty file": Refusal(400, "empty", data=b""),
    "not audio": Refusal(415, "audio", data=b"hello, this is not a wav file\n" * 50),
    "truncated wav": Refusal(415, "audio", data=b"RIFF\x24\x00\x00\x00WAVEfmt "),
    "truncated flac": Refusal(415, "truncated", data=FLAC_1S[: len(FLAC_1S) // 2]),
    "NaN samples": Refusal(422, "NaN", data=NAN_WAV),
    "unknown mode": Refusal(400, "mode", fields={"mode": "shout"}),
    "scale not a number": Refusal(400, "scale", fields={"scale": "four"}),
    "scale not ascii digits": Refusal(400, "scale", fields={"scale": "\u00b2"}),
    "scale not shipped": Refusal(422, "scale", fields={"scale": "5"}),
    "unknown output rate": Refusal(400, "output_rate", fields={"output_rate": "96000"}),
    "unknown model": Refusal(422, "no-such-model", fields={"model": "no-such-model"}),
    "body over MAX_CONTENT_LENGTH": Refusal(
        413, "too large", data=TONE_1S, config={"MAX_CONTENT_LENGTH": 10_000}
    ),
    "file over the worker's limit": Refusal(413, "limit", TONE_1S, settings={"max_bytes": 20_000}),
    "too long": Refusal(413, "limit", TONE_1S, settings={"max_seconds": 0.5}),
    "too short": Refusal(422, "at least", wav_bytes(tone(0.1, 16000), 16000)),
    "too many channels": Refusal(422, "channels", wav_bytes(tone(1.0, 16000, 3), 16000)),
    "rate too low to simulate": Refusal(422, "enhance", wav_bytes(tone(1.0, 8000), 8000)),
    "16 kHz reference for 48 kHz output": Refusal(422, "enhance", TONE_1S, fields={"scale": "3"}),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_refusals_are_json_and_queue_nothing(make_app, database, speech, case):
    data = wav_bytes(*speech) if case.data is SPEECH else case.data
    client = make_app(case.config, **case.settings).test_client()
    before = stored(database.client)

    response = post_job(client, data, **case.fields)

    assert response.status_code == case.code
    assert response.is_json, response.data[:200]
    assert case.words in response.get_json()["error"]
    assert stored(database.client) == before


def test_stereo_and_other_rates_are_accepted(client):
    response = post_job(client, wav_bytes(tone(1.0, 44100, 2), 44100))
    assert response.status_code == 202


def test_enhance_takes_low_rate_audio(client):
    response = post_job(client, wav_bytes(tone(1.0, 4000), 4000), mode="enhance")
    assert response.status_code == 202


# ---------------------------------------------------------------- who may submit


@pytest.mark.parametrize(
    ("origin", "allowed", "code"),
    [
        (None, [], 202),  # curl and scripts send no Origin
        ("http://localhost", [], 202),  # the page itself (the test client's host)
        ("https://evil.example", [], 403),
        ("https://studio.example", ["https://studio.example"], 202),
    ],
)
def test_only_this_sites_page_and_allowed_origins_may_submit(
    make_app, database, speech, origin, allowed, code
):
    client = make_app({"ALLOWED_ORIGINS": allowed}).test_client()
    before = stored(database.client)
    headers = {"Origin": origin} if origin else {}
    form = {"mode": "simulate", "scale": "4", "model": "spline"}
    form["audio"] = (io.BytesIO(wav_bytes(*speech)), "speech.wav")
    response = client.post("/api/jobs", data=form, headers=headers)
    assert response.status_code == code and response.is_json
    if code == 403:
        assert "another site" in response.get_json()["error"]
        assert stored(database.client) == before


# ---------------------------------------------------------------- admission


def test_a_client_over_its_submission_rate_gets_429_with_retry_after(make_app, speech):
    client = make_app({"SUBMIT_RATE_LIMIT": "2 per minute"}).test_client()
    data = wav_bytes(*speech)
    assert [post_job(client, data).status_code for _ in range(2)] == [202, 202]
    response = post_job(client, data)
    assert response.status_code == 429 and response.is_json
    assert int(response.headers["Retry-After"]) > 0


def test_a_client_with_too_much_audio_waiting_gets_429(make_app, database, speech):
    client = make_app(max_client_audio_s=1.5).test_client()
    data = wav_bytes(*speech)  # 1 s
    assert post_job(client, data).status_code == 202
    before = stored(database.client)
    response = post_job(client, data)
    assert response.status_code == 429 and "waiting or running" in response.get_json()["error"]
    assert response.headers["Retry-After"] and stored(database.client) == before
    # Another address is not held to this one's audio.
    other = client.post(
        "/api/jobs",
        data={
            "mode": "simulate",
            "scale": "4",
            "model": "spline",
            "audio": (io.BytesIO(data), "a.wav"),
        },
        environ_base={"REMOTE_ADDR": "10.0.0.7"},
    )
    assert other.status_code == 202


def test_a_full_queue_is_503(make_app, speech):
    client = make_app(max_queued_jobs=1).test_client()
    data = wav_bytes(*speech)
    assert post_job(client, data).status_code == 202
    response = post_job(client, data)
    assert response.status_code == 503 and "queue is full" in response.get_json()["error"]
    assert response.headers["Retry-After"]


def test_an_upload_redis_has_no_memory_for_is_503_before_it_is_stored(tmp_path, speech):
    with RedisServer(tmp_path / "redis") as server:
        control = redis.Redis.from_url(server.url)
        used = control.info("memory")["used_memory"]
        control.config_set("maxmemory", used + 2_000_000)  # room for small uploads only
        app = create_app({"TESTING": True, "REDIS_URL": server.url})
        small = post_job(app.test_client(), wav_bytes(speech[0][:8000], 16000))
        big = post_job(app.test_client(), wav_bytes(np.tile(speech[0], 30), 16000))  # 960 kB
        assert small.status_code == 202
        assert big.status_code == 503 and "no room" in big.get_json()["error"]
        assert sum(1 for _ in control.scan_iter(match="superres:job:*")) == 1
        control.close()


# ---------------------------------------------------------------- scale auto


@pytest.fixture(scope="module")
def narrowband(speech_wav):
    """The speech clip as real narrowband uploads: (an 8 kHz phone call, a 44.1 kHz stereo file
    whose content stops at 4 kHz, the 16 kHz wideband original), as WAV bytes."""
    x, rate = audio.load(speech_wav)
    x = audio.to_mono(x)
    phone = wav_bytes(audio.lowres(x, 2, "telephone"), 8000)
    band_limited = audio.resample(audio.lowres(x, 2, "sinc"), 8000, 44100)
    stereo = wav_bytes(np.stack([band_limited, 0.7 * band_limited]), 44100)
    return phone, stereo, wav_bytes(x, rate)


def submit_auto(client, data: bytes, **fields) -> tuple[int, dict]:
    """Enhance with no scale (auto is enhance's default) and no model; the answer and status."""
    response = post_job(client, data, mode="enhance", scale=None, model=None, **fields)
    body = response.get_json()
    if response.status_code != 202:
        return response.status_code, body
    return 202, client.get(body["status_url"]).get_json()


def test_auto_sends_a_phone_call_to_the_x2_model_and_says_what_it_found(client, narrowband):
    code, status = submit_auto(client, narrowband[0])
    assert code == 202
    assert status["params"]["scale"] == 2 and status["params"]["auto"] is True
    assert status["input"]["rate"] == 8000 and status["input"]["channels"] == 1
    assert 3000 <= status["input"]["bandwidth_hz"] <= 3800


def test_auto_keeps_a_44k_stereo_file_of_4khz_content_whole(client, narrowband):
    code, status = submit_auto(client, narrowband[1], output_rate="input")
    assert code == 202
    assert status["params"]["scale"] == 2 and status["params"]["output_rate"] == "input"
    assert status["input"]["rate"] == 44100 and status["input"]["channels"] == 2
    assert 3600 <= status["input"]["bandwidth_hz"] <= 4400


def test_auto_sends_a_16k_file_to_the_full_band_model(client, narrowband):
    code, status = submit_auto(client, narrowband[2])
    assert code == 202
    assert status["params"]["scale"] == 3 and status["params"]["auto"] is True
    assert 6800 <= status["input"]["bandwidth_hz"] <= 8000


def noise(seconds: float, rate: int) -> bytes:
    """Noise to the Nyquist: audio whose band is as wide as its file's rate allows."""
    x = 0.1 * np.random.default_rng(0).standard_normal(int(seconds * rate))
    return wav_bytes(x.astype(np.float32), rate)


@pytest.mark.parametrize(
    ("rate", "words"),
    [(48000, "no band to add"), (32000, "above the widest model input band (8 kHz)")],
)
def test_auto_refuses_audio_no_model_adds_to_with_a_422_that_says_why(
    client, database, rate, words
):
    before = stored(database.client)
    code, body = submit_auto(client, noise(1.0, rate))
    assert code == 422 and words in body["error"]
    assert stored(database.client) == before


def test_auto_in_simulate_mode_is_the_papers_x4(client, speech):
    response = post_job(client, wav_bytes(*speech), scale="auto")
    status = client.get(response.get_json()["status_url"]).get_json()
    assert status["params"]["scale"] == 4 and status["params"]["auto"] is False


# ---------------------------------------------------------------- ids and file names


@pytest.mark.parametrize(
    "path",
    [
        "/api/jobs/short",
        "/api/jobs/" + "a" * 65,
        "/api/jobs/..%2F..%2Fetc%2Fpasswd",
        "/api/jobs/abc*def*ghi*jkl*mno",
        "/api/jobs/superres:job:aaaaaaaaaaaaaaaa",
        "/api/jobs/aaaaaaaaaaaaaaaaaaaaaa",
        "/api/jobs/aaaaaaaaaaaaaaaaaaaaaa/files/superres.wav",
        "/api/jobs/short/files/superres.wav",
        "/api/nothing-here",
    ],
)
def test_unknown_jobs_and_routes_are_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["error"]


@pytest.mark.parametrize("name", ["passwd", "..%2Finput", "superres.WAV", "input.wav", "meta"])
def test_file_names_come_from_a_fixed_set(client, speech, name):
    job_id = post_job(client, wav_bytes(*speech)).get_json()["id"]
    response = client.get(f"/api/jobs/{job_id}/files/{name}")
    assert response.status_code == 404
    assert response.is_json


def test_outputs_of_an_unfinished_job_are_404(client, speech):
    job_id = post_job(client, wav_bytes(*speech)).get_json()["id"]
    for name in FILE_NAMES[1:]:
        response = client.get(f"/api/jobs/{job_id}/files/{name}")
        assert response.status_code == 404
        assert "not finished" in response.get_json()["error"]


def test_wrong_method_is_json_405_with_allow(client):
    response = client.delete("/api/jobs")
    assert response.status_code == 405
    assert response.is_json
    assert "POST" in response.headers["Allow"]


def test_unexpected_errors_are_json_500_without_traceback(client, monkeypatch):
    class BrokenStore:
        def status(self, job_id):
            raise RuntimeError("secret internals")

    monkeypatch.setattr("webapp.api.job_store", BrokenStore)
    response = client.get("/api/jobs/aaaaaaaaaaaaaaaaaaaaaa")
    assert response.status_code == 500
    assert response.is_json
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


# ---------------------------------------------------------------- config and health


def test_secret_key_is_required_outside_tests(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app()
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    assert create_app().config["SECRET_KEY"] == "x" * 32


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "1000000")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/3")
    app = create_app()
    assert app.config["MAX_CONTENT_LENGTH"] > 1_000_000
    assert app.config["REDIS_URL"] == "redis://127.0.0.1:1/3"
    assert app.extensions["celery"].conf.broker_url == "redis://127.0.0.1:1/3"
    monkeypatch.setenv("MAX_CONTENT_LENGTH", "5000")
    assert create_app().config["MAX_CONTENT_LENGTH"] == 5000


def test_load_config_reads_only_the_environment_it_is_given(monkeypatch):
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "1000000")
    config = load_config({"REDIS_URL": "redis://example:6379/2", "MAX_UPLOAD_BYTES": "2000"})
    assert config["REDIS_URL"] == "redis://example:6379/2"
    assert config["WORKER_SETTINGS"].max_bytes == 2000


def test_each_app_enqueues_on_its_own_redis_with_its_own_settings(make_app, database):
    first = make_app(max_seconds=30.0)
    second = create_app({"TESTING": True, "REDIS_URL": "redis://127.0.0.1:1/2"})

    celery = first.extensions["celery"]
    assert celery.conf.broker_url == database.url
    assert celery.settings == first.config["WORKER_SETTINGS"]
    assert celery.settings.max_seconds == 30.0
    assert second.extensions["celery"].conf.broker_url == "redis://127.0.0.1:1/2"


def test_healthz_reports_redis_and_no_worker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["redis"]["ok"] is True
    assert body["workers"] == {"ok": False, "count": 0, "names": []}
    assert body["status"] == "starting"


def test_healthz_is_ok_only_while_a_worker_says_it_is_ready(client, database):
    mark_ready(database.client, "host:1", {"models": ["spline"]}, ttl_s=1)
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["workers"]["names"] == ["host:1"]
    # A worker that stops refreshing its key (it died) stops counting when the key lapses.
    deadline = time.monotonic() + HANG_S
    while client.get("/healthz").get_json()["status"] == "ok":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert client.get("/healthz").get_json()["status"] == "starting"


def test_healthz_is_503_when_redis_is_down():
    app = create_app({"TESTING": True, "REDIS_URL": "redis://127.0.0.1:1/0"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["redis"]["ok"] is False


def test_submit_is_503_when_redis_is_down(speech):
    app = create_app({"TESTING": True, "REDIS_URL": "redis://127.0.0.1:1/0"})
    response = post_job(app.test_client(), wav_bytes(*speech))
    assert response.status_code == 503
    assert response.is_json


def test_polling_while_redis_is_down_is_503_not_500():
    app = create_app({"TESTING": True, "REDIS_URL": "redis://127.0.0.1:1/0"})
    client = app.test_client()
    for path in (
        "/api/jobs/aaaaaaaaaaaaaaaaaaaaaa",
        "/api/jobs/aaaaaaaaaaaaaaaaaaaaaa/files/input",
    ):
        response = client.get(path)
        assert response.status_code == 503
        assert "try again" in response.get_json()["error"]
        assert response.headers["Retry-After"]


# ---------------------------------------------------------------- with a real worker


def wait_done(client, status_url: str) -> dict:
    """Poll a job's status until it is done or failed."""
    deadline = time.monotonic() + HANG_S
    while (status := client.get(status_url).get_json())["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    return status


@pytest.mark.integration
def test_a_job_runs_to_done_and_its_files_download(redis_url, celery_worker, speech):
    app = create_app({"TESTING": True, "REDIS_URL": redis_url})
    client = app.test_client()
    deadline = time.monotonic() + HANG_S
    while client.get("/healthz").get_json()["status"] != "ok":
        assert time.monotonic() < deadline, "the worker never said it was ready"

    job_id = post_job(client, wav_bytes(*speech)).get_json()["id"]
    status = wait_done(client, f"/api/jobs/{job_id}")

    assert status["state"] == "done", status["error"]
    outputs = {"superres.wav", "lowres.wav", "reference.wav", "spectrogram.png", "result.json"}
    assert outputs <= set(status["files"])
    assert status["timings"]["audio_s"] == pytest.approx(1.0, abs=0.01)
    assert status["timings"]["processing_s"] > 0
    assert status["metrics"]["spline"]["snr"] is not None

    download = client.get(status["files"]["superres.wav"] + "?download=1")
    assert download.status_code == 200
    assert download.mimetype == "audio/wav"
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert "private" in download.headers["Cache-Control"]
    y, rate = sf.read(io.BytesIO(download.data))
    assert rate == 16000 and len(y) == 16000

    part = client.get(status["files"]["superres.wav"], headers={"Range": "bytes=0-43"})
    assert part.status_code == 206 and part.data.startswith(b"RIFF")

    png = client.get(status["files"]["spectrogram.png"])
    assert png.mimetype == "image/png" and png.data.startswith(b"\x89PNG")


@pytest.mark.integration
def test_a_16k_upload_in_enhance_mode_comes_back_at_48k(redis_url, celery_worker, speech):
    """Once refused as having no band to add: now scale auto takes it from 16 to 48 kHz."""
    client = create_app({"TESTING": True, "REDIS_URL": redis_url}).test_client()
    x, rate = speech
    response = post_job(client, wav_bytes(x, rate), mode="enhance", scale=None)
    assert response.status_code == 202, response.get_json()
    status = wait_done(client, response.get_json()["status_url"])

    assert status["state"] == "done", status["error"]
    assert status["params"]["scale"] == 3 and status["chain"] == ["spline"]
    y, out_rate = sf.read(io.BytesIO(client.get(status["files"]["superres.wav"]).data))
    assert out_rate == 48000 and len(y) == 3 * len(x)
