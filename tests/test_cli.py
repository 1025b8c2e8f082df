"""`python -m model` as a user runs it: upsample a real wav, evaluate against baselines."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from model import audio, metrics, registry


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "model", *args], capture_output=True, text=True)


@pytest.fixture
def lowres_wav(tmp_path, speech_wav):
    x, rate = audio.load(speech_wav)
    path = tmp_path / "speech_4k.wav"
    audio.save(path, audio.lowres(x[0], 4), rate // 4)
    return path


def test_upsample_spline_round_trip(tmp_path, lowres_wav):
    out = tmp_path / "out.wav"
    result = run_cli(
        "upsample", str(lowres_wav), str(out), "--scale", "4", "--checkpoint", "spline"
    )
    assert result.returncode == 0, result.stderr
    frames, rate, channels = audio.info(out)
    in_frames, in_rate, _ = audio.info(lowres_wav)
    assert rate == in_rate * 4 and frames == in_frames * 4 and channels == 1
    assert json.loads(result.stdout)["output_rate"] == 16000


def test_upsample_default_model(tmp_path, lowres_wav):
    out = tmp_path / "out.wav"
    result = run_cli("upsample", str(lowres_wav), str(out), "--scale", "4")
    shipped = [m for m in registry.available_models() if m["path"] and m["scale"] == 4]
    if not shipped:
        assert result.returncode == 2 and "spline" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    assert audio.info(out)[1] == 16000


def test_upsample_unknown_rate_is_explained(tmp_path, lowres_wav):
    x, _ = audio.load(lowres_wav)
    odd = tmp_path / "odd.wav"
    audio.save(odd, x, 5000)
    result = run_cli("upsample", str(odd), str(tmp_path / "o.wav"), "--scale", "4")
    assert result.returncode == 2
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_upsample_without_scale_lets_the_bandwidth_choose(tmp_path, speech_wav):
    """A 44.1 kHz stereo file of 4 kHz-rate content: x4 model, stereo kept, written at 44.1 kHz."""
    import numpy as np

    x, rate = audio.load(speech_wav)
    narrow = audio.resample(audio.lowres(x[0], 4), rate // 4, 44100)
    stereo = tmp_path / "narrow_44k.wav"
    audio.save(stereo, np.stack([narrow, 0.5 * narrow]), 44100)
    out = tmp_path / "out.wav"
    args = ("upsample", str(stereo), str(out), "--checkpoint", "spline", "--output-rate", "input")
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["scale"] == 4 and 1440 <= report["bandwidth_hz"] <= 2200
    frames, out_rate, channels = audio.info(out)
    assert (out_rate, channels) == (44100, 2) and abs(frames - narrow.size) <= 44100 // 1000


@pytest.mark.parametrize(
    ("rate", "reason"),
    [(48000, "no band to add"), (32000, "above the widest model input band (8 kHz)")],
)
def test_upsample_refuses_audio_no_model_adds_to(tmp_path, rate, reason):
    """Noise to the Nyquist: a 48 kHz file is full band already; a 32 kHz one reaches 16 kHz,
    more than the 16 -> 48 kHz model takes in."""
    import numpy as np

    noise = 0.1 * np.random.default_rng(0).standard_normal(2 * rate).astype(np.float32)
    wide = tmp_path / "wide.wav"
    audio.save(wide, noise, rate)
    result = run_cli("upsample", str(wide), str(tmp_path / "o.wav"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert reason in result.stderr


@pytest.fixture
def wideband_wav(tmp_path, speech_wav):
    """Three seconds of the 16 kHz speech clip, whose band reaches about 7.3 kHz."""
    x, rate = audio.load(speech_wav)
    path = tmp_path / "speech_16k_3s.wav"
    audio.save(path, x[:, : 3 * rate], rate)
    return path


@pytest.mark.parametrize("options", [(), ("--scale", "3"), ("--output-rate", "48000")])
def test_a_16k_file_comes_out_at_48k_with_its_own_band_kept(tmp_path, wideband_wav, options):
    """Without --scale the bandwidth picks the 16 -> 48 kHz model; --scale 3 names it; asking
    for 48 kHz output of a model that writes 48 kHz changes nothing."""
    out = tmp_path / "out.wav"
    result = run_cli("upsample", str(wideband_wav), str(out), *options)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    full_band = registry.find(None, 16000, 3)["name"]
    assert (report["model"], report["scale"], report["output_rate"]) == (full_band, 3, 48000)
    assert report["chain"] == [full_band]
    x, rate = audio.load(wideband_wav)
    y, out_rate = audio.load(out)
    assert out_rate == 48000 and y.shape == (1, 3 * x.shape[1])
    # Below the input's 8 kHz Nyquist the output is the input: as close to it as the spline
    # baseline's interpolation (the model may undo the file's own anti-alias droop near 8 kHz).
    reference = audio.resample(x[0], rate, out_rate)
    kept = metrics.lowband_snr(reference, y[0], input_rate=rate, rate=out_rate)
    spline = metrics.lowband_snr(reference, audio.spline(x[0], 3), input_rate=rate, rate=out_rate)
    assert kept > 20 and kept >= spline - 0.5


@pytest.mark.parametrize(
    ("checkpoint", "chain"),
    [
        ((), [registry.find(None, 8000, 2)["name"], registry.find(None, 16000, 3)["name"]]),
        (("--checkpoint", "spline"), ["spline", "spline"]),
    ],
)
def test_output_rate_48000_chains_the_full_band_model_after_x2(
    tmp_path, speech_wav, checkpoint, chain
):
    """8 kHz in: x2 (8 -> 16 kHz), then x3 (16 -> 48 kHz); a spline job stays spline."""
    x, rate = audio.load(speech_wav)
    call = tmp_path / "call_8k.wav"
    audio.save(call, audio.lowres(x[0, : 2 * rate], 2), rate // 2)
    out = tmp_path / "out.wav"
    result = run_cli("upsample", str(call), str(out), "--output-rate", "48000", *checkpoint)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["chain"] == chain and report["scale"] == 2 and report["output_rate"] == 48000
    frames, out_rate, _ = audio.info(out)
    assert out_rate == 48000 and frames == 6 * audio.info(call)[0]


def test_upsample_bad_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio" * 100)
    result = run_cli("upsample", str(bad), str(tmp_path / "o.wav"), "--checkpoint", "spline")
    assert result.returncode == 2 and "decode" in result.stderr


def test_evaluate_out_keeps_items_of_different_voices_with_the_same_clip_name(tmp_path, speech_wav):
    for voice in ("kde-pt_BR", "kde-tn"):
        (tmp_path / "voices" / voice).mkdir(parents=True)
        (tmp_path / "voices" / voice / "a.wav").write_bytes(speech_wav.read_bytes())
    out = tmp_path / "eval"
    result = run_cli(
        "evaluate", "--checkpoint", "spline", "--files", str(tmp_path / "voices"),
        "--scale", "4", "--no-perceptual", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.glob("*.hr.wav")) == ["a.hr.wav", "kde-tn-a.hr.wav"]


def test_evaluate_voice_items_weighs_voices_alike(tmp_path, speech_wav):
    """A voice of six files and one of two: at most two items of each, the first voice's spread."""
    for voice, count in (("many", 6), ("few", 2)):
        (tmp_path / "voices" / voice).mkdir(parents=True)
        for k in range(count):
            (tmp_path / "voices" / voice / f"{k}.wav").write_bytes(speech_wav.read_bytes())
    out = tmp_path / "eval"
    result = run_cli(
        "evaluate", "--checkpoint", "spline", "--files", str(tmp_path / "voices"),
        "--scale", "4", "--no-perceptual", "--voice-items", "2", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    scored = [line.split(",")[0] for line in (out / "scores.csv").read_text().splitlines()[1:]]
    assert sorted({Path(f).relative_to(tmp_path / "voices").as_posix() for f in scored}) == [
        "few/0.wav",
        "few/1.wav",
        "many/0.wav",
        "many/5.wav",
    ]


def test_evaluate_spline_table(tmp_path, speech_wav):
    out = tmp_path / "eval"
    result = run_cli(
        "evaluate",
        "--checkpoint",
        "spline",
        "--files",
        str(speech_wav),
        "--scale",
        "4",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    table = report["table"]
    assert set(table) == {"spline", "sinc", "original"}
    # Spline and sinc have nothing above 2 kHz: large LSD-HF, and the same audio scored twice.
    assert table["sinc"]["lsd_hf"] > 2 and table["spline"]["lsd"] > 1
    assert report["snr_gain_vs_spline_db"] == 0
    # What listeners hear: a 4 kHz version sounds worse than the original to every measure.
    for score in ("visqol", "pesq", "lowband_snr", "dnsmos_p808", "distillmos"):
        assert score in table["sinc"]
    assert 1 < table["sinc"]["visqol"] < 4 and 1 < table["sinc"]["pesq"] < 4
    assert table["original"]["dnsmos_p808"] > table["sinc"]["dnsmos_p808"]
    assert table["original"]["distillmos"] > table["sinc"]["distillmos"]
    dnsmos = {"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"}
    assert set(table["original"]) == dnsmos | {"distillmos"}
    share = (table["spline"]["distillmos"] - table["sinc"]["distillmos"]) / (
        table["original"]["distillmos"] - table["sinc"]["distillmos"]
    )
    assert report["distillmos_gap_closed"] == pytest.approx(share)
    printed = result.stdout.splitlines()
    header, rows = printed[1], printed[2:5]
    assert header.split()[-1] == "DistillMOS" and all(len(row) == len(header) for row in rows)
    assert [row.split()[0] for row in rows] == ["spline", "sinc", "original"]
    p808 = report["dnsmos_p808_gap_closed"]
    closed = f"DNSMOS P.808 {100 * p808:.0f} %; DistillMOS {100 * share:.0f} %"
    assert any(line.endswith(closed) for line in printed)
    for suffix in ("hr", "lr", "sr"):
        assert (out / f"speech_16k.{suffix}.wav").exists()
    assert audio.info(out / "speech_16k.lr.wav")[1] == 4000
    assert json.loads((out / "results.json").read_text()) == report
    lines = (out / "scores.csv").read_text().splitlines()
    assert lines[0].startswith("file,method,") and len(lines) == 1 + 3  # spline, sinc, original
