"""Training: prepare a folder corpus, train a tiny net, resume, average, fine-tune; batches and losses."""

import csv

import numpy as np
import pytest
import torch

from model import audio, checkpoint, metrics
from model.__main__ import main as model_main
from model.batches import (
    CONTEXT,
    DEGRADATIONS,
    crop,
    degradations,
    make_batch,
    row_band_ends,
    speed_perturb,
)
from model.data import prepare
from model.losses import band_limited, snr_loss
from model.train import average, epoch_merit, train


def _voice(rate: int, seconds: float, f0: float, seed: int) -> np.ndarray:
    """A harmonic 'voice' with vibrato and syllable envelope: broadband, like voiced speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    phase = 2 * np.pi * f0 * (t + 0.002 * np.sin(2 * np.pi * 5 * t))
    x = sum(np.sin(k * phase) / k for k in range(1, 30) if k * f0 < rate / 2)
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t + rng.uniform(0, 6))
    return (0.2 * x * env + 0.002 * rng.standard_normal(len(t))).astype(np.float32)


TINY = dict(model="tiny", scale=4, batch_size=8)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Four 'speakers' of two short clips each at 22.05 kHz."""
    root = tmp_path_factory.mktemp("corpus")
    for speaker, f0 in (("spk1", 110), ("spk2", 140), ("spk3", 190), ("spk4", 230)):
        (root / speaker).mkdir()
        for i in range(2):
            audio.save(root / speaker / f"{i}.wav", _voice(22050, 1.5, f0 + 7 * i, i), 22050)
    return root


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    return data, prepare(str(corpus), data, patch=2048, stride=1024, val_fraction=0.25)


@pytest.fixture(scope="module")
def data(prepared):
    return prepared[0]


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A tiny net trained for one epoch of 40 steps: (run folder, train's result)."""
    run = tmp_path_factory.mktemp("runs") / "run"
    return run, train(data, run, epochs=1, lr=3e-3, steps_per_epoch=40, **TINY)


@pytest.fixture(scope="module")
def resumed(data, trained):
    """The same run asked for a second epoch of 5 steps: it resumes, then holds two epochs."""
    run, _ = trained
    return run, train(data, run, epochs=2, lr=3e-3, steps_per_epoch=5, **TINY)


def test_prepare_splits_by_voice(prepared):
    data, manifest = prepared
    train_groups = set(manifest["splits"]["train"]["groups"])
    val_groups = set(manifest["splits"]["val"]["groups"])
    assert val_groups and train_groups and not (train_groups & val_groups)
    assert (data / "val_wavs").is_dir()
    for split in ("train", "val"):
        # Which rows of {split}_hr.npy are whose: voice after voice, every row accounted for.
        counts = manifest["splits"][split]["group_patches"]
        assert set(counts) <= set(manifest["splits"][split]["groups"])
        rows = np.load(data / f"{split}_hr.npy", mmap_mode="r").shape[0]
        assert sum(counts.values()) == rows == manifest["splits"][split]["patches"]
    # Voices and hours per package (a group's name up to its first '-'; here each spkN).
    voices = train_groups | val_groups
    packages = manifest["packages"]
    assert set(packages) == {g.split("-")[0] for g in voices}
    assert sum(row["voices"] for rows in packages.values() for row in rows.values()) == len(voices)


def test_training_lowers_the_loss_and_keeps_a_checkpoint_log_and_curves(trained):
    run, result = trained
    losses = result["step_losses"]
    assert len(losses) == 40
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8])
    _, meta = checkpoint.load(run / "best.safetensors")
    assert meta["scale"] == 4 and meta["input_rate"] == 4000
    assert (run / "curves.png").stat().st_size > 0
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert float(rows[0]["val_lsd"]) > 0


def test_a_second_call_resumes_instead_of_starting_over(resumed):
    run, again = resumed
    assert len(again["step_losses"]) == 5
    assert len(list(csv.DictReader(open(run / "log.csv")))) == 2
    kept = sorted(p.name for p in (run / "epochs").iterdir())
    assert kept == ["001.safetensors", "002.safetensors"]


def test_average_is_the_mean_of_the_kept_epochs(data, resumed, tmp_path):
    run, _ = resumed
    averaged = average(run, tmp_path / "avg", data=data, first=1)
    assert averaged["epochs"] == [1, 2] and averaged["val"]["model"]["snr"] > -100
    mean_net, mean_meta = checkpoint.load(tmp_path / "avg" / "best.safetensors")
    assert mean_meta["training"]["averaged_epochs"] == [1, 2]
    assert mean_meta["training"]["epoch"] == 2  # the record is the last averaged epoch's
    one, _ = checkpoint.load(run / "epochs" / "001.safetensors")
    two, _ = checkpoint.load(run / "epochs" / "002.safetensors")
    for name, weight in mean_net.state_dict().items():
        expected = (one.state_dict()[name] + two.state_dict()[name]) / 2
        assert torch.allclose(weight, expected, atol=2e-3, rtol=2e-3), name  # fp16 storage
    # The two epochs differ, so the mean is neither of them.
    assert any(not torch.equal(v, two.state_dict()[k]) for k, v in one.state_dict().items())


def test_average_refuses_runs_without_those_epochs(data, resumed, tmp_path):
    run, _ = resumed
    with pytest.raises(ValueError, match="no epoch files"):
        average(run, tmp_path / "none", data=data, first=5)
    with pytest.raises(ValueError, match="no epoch files"):
        average(tmp_path / "not-a-run", tmp_path / "none", data=data, first=1)


def test_average_on_the_command_line_with_errors_as_exit_2(data, resumed, tmp_path):
    run, _ = resumed
    args = ["average", str(run), "--data", str(data), "--out"]
    assert model_main([*args, str(tmp_path / "avg2"), "--first", "2"]) == 0
    assert (tmp_path / "avg2" / "best.safetensors").exists()
    assert model_main([*args, str(tmp_path / "avg3"), "--first", "9"]) == 2


def test_fine_tuning_starts_from_the_checkpoint_and_records_it(data, trained, tmp_path):
    # With the per-patch SNR loss at learning rate 0 the kept weights are exactly the start's.
    run, _ = trained
    tuned = train(
        data,
        tmp_path / "tuned",
        **TINY,
        epochs=1,
        lr=0.0,
        steps_per_epoch=3,
        loss="snr",
        stft_weight=0.0,
        init=str(run / "best.safetensors"),
        select="snr",
        speed=0.5,
    )
    assert all(loss < 0 for loss in tuned["step_losses"])  # negative SNR in dB
    tuned_net, tuned_meta = checkpoint.load(tmp_path / "tuned" / "best.safetensors")
    assert tuned_meta["training"]["init"] == str(run / "best.safetensors")
    assert tuned_meta["training"]["speed_perturbed"] == 0.5
    source, _ = checkpoint.load(run / "best.safetensors")
    for name, weight in source.state_dict().items():
        assert torch.equal(weight, tuned_net.state_dict()[name]), name


def test_fine_tuning_from_another_preset_is_refused(data, trained, tmp_path):
    run, _ = trained
    with pytest.raises(ValueError, match="not preset"):
        train(data, tmp_path / "wrong", model="audiounet", init=str(run / "best.safetensors"))


@pytest.mark.parametrize(
    ("option", "value"), [("model", "wavenet"), ("loss", "l1"), ("select", "best")]
)
def test_unknown_choices_are_refused_before_any_work(data, tmp_path, option, value):
    with pytest.raises(ValueError, match=f"unknown {option}"):
        train(data, tmp_path / "never", **{**TINY, option: value})
    assert not (tmp_path / "never").exists()


def test_snr_selection_holds_each_scale_to_its_own_lsd_bar():
    # LSD at 0.75 x spline's: inside the x2 bar (sinc / 1.5), outside the x4 one (sinc / 1.6).
    val = {"model": {"snr": 21.0, "lsd": 1.5}, "spline": {"snr": 20.0, "lsd": 2.0}}
    assert epoch_merit(val, "snr", 2) == pytest.approx(1.0)
    assert epoch_merit(val, "snr", 4) < -90
    assert epoch_merit(val, "snr", 3) < -90  # scales without a bar get the strictest limit
    better_lsd = {**val, "model": {"snr": 21.0, "lsd": 1.4}}
    assert epoch_merit(better_lsd, "snr", 4) == pytest.approx(1.0)


def test_snr_loss_is_the_mean_per_patch_snr():
    rng = np.random.default_rng(0)
    target = rng.standard_normal((4, 1, 512)).astype(np.float32)
    # Patches of very different levels and errors: a pooled loss would be ruled by the loudest.
    target *= np.array([1.0, 0.01, 0.3, 3.0], dtype=np.float32)[:, None, None]
    estimate = target + rng.standard_normal(target.shape).astype(np.float32) * 0.05
    expected = -np.mean([metrics.snr(t[0], e[0]) for t, e in zip(target, estimate, strict=True)])
    got = float(snr_loss(torch.from_numpy(estimate), torch.from_numpy(target)))
    assert abs(got - expected) < 1e-3


@pytest.mark.parametrize("k", [18, 22])
def test_speed_perturb_moves_pitch_by_20_over_k(k):
    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 500 * t).astype(np.float32)
    y = speed_perturb(tone, k, 8192)
    assert len(y) == 8192
    peak = np.fft.rfftfreq(8192, 1 / 16000)[np.argmax(np.abs(np.fft.rfft(y * np.hanning(8192))))]
    assert abs(peak - 500 * k / 20) < 4  # two FFT bins


def test_speed_perturbed_batch_is_cut_from_the_continuous_stream():
    # Patches of one rising chirp every 512 samples: a faster replay must read on into patch i + 1
    # (a wrapped or zero-padded tail would show up as a jump in the waveform).
    t = np.arange(20000) / 16000
    stream = np.sin(2 * np.pi * (200 * t + 300 * t**2)).astype(np.float32)
    patches = np.stack([stream[s : s + 1024] for s in range(0, len(stream) - 1024, 512)])
    rng = np.random.default_rng(1)
    _, hr = make_batch(patches, 4, rng, 64, augment=False, speed=1.0, stride=512)
    hr = hr[:, 0].numpy()
    passed_through = [any(np.array_equal(row, p) for p in patches) for row in hr]
    assert sum(passed_through) < 8  # only the last patch, which has no stream after it, is kept
    # The chirp ends below 1 kHz; replayed 10 % faster it moves less than 0.45 per sample.
    assert np.abs(np.diff(hr[:, 8:-8], axis=1)).max() < 0.45


def test_batch_input_is_the_patch_inside_its_stream_as_in_a_whole_file():
    # A patch filtered and interpolated on its own rings at its edges, and the net would see no
    # context there: the input must equal the whole stream's interpolation over the patch plus
    # CONTEXT samples either side (what whole-file inference sees), and the target the patch.
    rng = np.random.default_rng(3)
    stream = rng.standard_normal(40000).astype(np.float32)
    patches = np.stack([stream[s : s + 8192] for s in range(0, len(stream) - 8192, 4096)])
    whole = audio.spline(audio.lowres(stream, 4, "cheby8"), 4)
    x, hr = make_batch(patches, 4, np.random.default_rng(0), 16, augment=False, stride=4096)
    assert x.shape == (16, 1, 8192 + 2 * CONTEXT) and hr.shape == (16, 1, 8192)
    checked = 0
    for row in range(0, 16, 2):  # even rows carry the paper's filter
        i = next(j for j, p in enumerate(patches) if np.array_equal(p, hr[row, 0].numpy()))
        if 0 < i < len(patches) - 1:
            ref = whole[i * 4096 - CONTEXT : i * 4096 + 8192 + CONTEXT]
            assert np.allclose(x[row, 0].numpy()[256:-256], ref[256:-256], atol=1e-4)
            assert np.allclose(crop(x[row, 0], 8192).numpy(), ref[CONTEXT:-CONTEXT], atol=1e-4)
            checked += 1
    assert checked >= 3


SPECTRAL = dict(
    model="tiny-spectral",
    scale=4,
    mix_scale=2,
    batch_size=4,
    loss="spectral",
    stft_weight=1.0,
    adversarial=0.1,
    select="lsd",
)


def test_the_spectral_generator_trains_at_two_scales_against_a_discriminator(data, tmp_path):
    run = tmp_path / "spectral"
    result = train(data, run, **SPECTRAL, epochs=1, steps_per_epoch=4, lr=1e-3, degrade=0.5)
    assert len(result["step_losses"]) == 4 and all(np.isfinite(result["step_losses"]))
    _, meta = checkpoint.load(run / "best.safetensors")
    assert meta["class"] == "SpectralBWE" and meta["args"]["scales"] == [2, 4]
    assert "adversarial" in meta["training"]["loss"]
    # The discriminator's state is kept for a resume.
    assert "adversary" in torch.load(run / "state.pt", weights_only=True)
    again = train(data, run, **SPECTRAL, epochs=2, steps_per_epoch=2)
    assert len(again["step_losses"]) == 2


def test_stop_after_ends_a_longer_schedule_early(data, tmp_path):
    run = tmp_path / "stopped"
    train(data, run, **TINY, epochs=5, stop_after=1, steps_per_epoch=2)
    assert len(list(csv.DictReader(open(run / "log.csv")))) == 1
    train(data, run, **TINY, epochs=5, stop_after=2, steps_per_epoch=2)
    assert len(list(csv.DictReader(open(run / "log.csv")))) == 2


def test_mix_scale_needs_a_multi_rate_net(data, tmp_path):
    with pytest.raises(ValueError, match="multi-rate"):
        train(data, tmp_path / "never", **{**TINY, "mix_scale": 2})


def test_g722_prompts_decode_and_group_by_speaker(tmp_path):
    """Asterisk's prompts: headerless G.722, one group per speaker across languages, never
    validation (their band stops near 7 kHz)."""
    import G722

    from model.data import TRAIN_ONLY_PREFIX, decode_g722, g722_groups, voice_clips

    x = _voice(16000, 1.0, 150, 0)
    pcm = (x * 32767).astype(np.int16)
    sounds = tmp_path / "usr" / "share" / "asterisk" / "sounds"
    for folder in ("en_US_f_Allison", "es_MX_f_Allison", "it_IT_m_Carlo"):
        (sounds / folder / "digits").mkdir(parents=True)
        coded = G722.G722(16000, 64000).encode(pcm)
        (sounds / folder / "digits" / "1.g722").write_bytes(bytes(coded))
    groups = g722_groups(tmp_path)
    assert {g: len(p) for g, p in groups.items()} == {
        f"{TRAIN_ONLY_PREFIX}Allison": 2,
        f"{TRAIN_ONLY_PREFIX}Carlo": 1,
    }
    decoded, rate = decode_g722(groups[f"{TRAIN_ONLY_PREFIX}Carlo"][0])
    assert rate == 16000 and decoded.shape == (1, len(x))
    # The codec delays a little; the best lag within 2 ms matches the voice closely.
    best = max(
        np.corrcoef(x[40:-40], decoded[0, 40 + k : len(x) - 40 + k])[0, 1] for k in range(32)
    )
    assert best > 0.95
    assert len(voice_clips(groups[f"{TRAIN_ONLY_PREFIX}Carlo"], checked=False)[0]) == 1


def test_full_band_data_trains_a_x3_net_for_16_khz_input(tmp_path):
    """48 kHz data (`prepare --rate 48000`) trains a net whose checkpoint says 16 kHz in, x3, with
    the codecs wideband input goes through (G.722, MP3) as degradations."""
    root, rng = tmp_path / "corpus", np.random.default_rng(0)
    for speaker, f0 in (("a", 120), ("b", 180), ("c", 220)):
        (root / speaker).mkdir(parents=True)
        # Noise up to 24 kHz, as a fricative's: the full-band check keeps only voices above 14 kHz.
        hiss = 0.02 * rng.standard_normal(72000).astype(np.float32)
        audio.save(root / speaker / "0.wav", _voice(48000, 1.5, f0, 0) + hiss, 48000)
    data = tmp_path / "data"
    manifest = prepare(str(root), data, patch=4096, stride=2048, val_fraction=0.34, rate=48000)
    assert manifest["rate"] == 48000 and (data / "val_lr_x3.npy").exists()
    run = tmp_path / "run"
    options = dict(model="tiny-spectral", scale=3, loss="spectral", mel_weight=0.1, degrade=1.0)
    train(data, run, epochs=1, steps_per_epoch=3, batch_size=4, **options)
    _, meta = checkpoint.load(run / "best.safetensors")
    assert (meta["input_rate"], meta["scale"]) == (16000, 3)
    # Each training row knows its voice's band end, and a run can be scored only up to it.
    ends = row_band_ends(data)
    assert len(ends) == manifest["splits"]["train"]["patches"] and (ends > 14000).all()
    masked = tmp_path / "masked"
    train(data, masked, epochs=1, steps_per_epoch=2, batch_size=4, band_mask=True, **options)
    assert checkpoint.read_metadata(masked / "best.safetensors")["training"]["band_masked"]
    with pytest.raises(ValueError, match="speed"):
        train(data, tmp_path / "no", epochs=1, band_mask=True, speed=0.5, **options)


def test_band_limited_scores_nothing_above_each_rows_cutoff():
    """The band mask is an exact projection: the tone below the cutoff passes untouched, the one
    above is gone, and no gradient reaches what the net writes above the cutoff."""
    t = np.arange(4800) / 48000
    low, high = np.sin(2 * np.pi * 5000 * t), np.sin(2 * np.pi * 20000 * t)
    x = torch.tensor(np.stack([low + high, low + high])[:, None], requires_grad=True)
    y = band_limited(x, torch.tensor([15000.0, 22000.0]), 48000)
    assert torch.allclose(y[0, 0], torch.from_numpy(low), atol=1e-9)
    assert torch.allclose(y[1, 0], torch.from_numpy(low + high), atol=1e-9)
    (y[0] ** 2).sum().backward()
    spectrum = np.abs(np.fft.rfft(x.grad[0, 0].numpy()))
    freqs = np.fft.rfftfreq(4800, 1 / 48000)
    assert spectrum[freqs > 15000].max() < 1e-9 * spectrum.max()


def test_full_band_batches_skip_the_telephone_band_and_refuse_16_khz_rooms():
    assert "telephone" not in degradations(48000, 3) and "g722" in degradations(48000, 3)
    assert degradations(16000, 4) == DEGRADATIONS
    patches = np.stack([_voice(48000, 0.2, 150, i)[:4096] for i in range(4)])
    x, hr = make_batch(patches, 3, np.random.default_rng(0), 4, True, stride=2048, rate=48000)
    # 4096 is not a whole number of 16 kHz samples: the patch loses one, the input is aligned.
    assert hr.shape[-1] == 4095 and x.shape[-1] == 4095 + 2 * 1023
    x, hr = make_batch(patches, 3, np.random.default_rng(0), 4, False, stride=2048, rate=48000)
    below = [
        metrics.lowband_snr(h, crop(i, 4095), 16000, 48000) for h, i in zip(hr, x, strict=True)
    ]
    assert min(below) > 20  # input and target line up sample for sample below 8 kHz
    with pytest.raises(ValueError, match="16000 Hz"):
        make_batch(patches, 3, np.random.default_rng(0), 4, True, chain=1.0, rate=48000)
