"""The `wide` corpus: which files of each Debian package are speech and whose, and the checks
that drop clipped clips and narrowband voices."""

from __future__ import annotations

import zipfile

import numpy as np
import soundfile as sf
from scipy import signal

from model import audio
from model.data import TRAIN_ONLY, is_clipped, prepare, voice_clips, wide_groups


def _voice(rate: int, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """Syllables of noise falling 6 dB an octave (as voiced speech roughly does), to the Nyquist."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    pink = signal.lfilter([1.0], [1.0, -0.95], rng.standard_normal(n))
    envelope = 0.1 + np.clip(np.sin(2 * np.pi * 3 * np.arange(n) / rate), 0, None) ** 2
    x = pink * envelope
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def _write(path, rate=22050, subtype=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, _voice(rate, 0.5), rate, subtype=subtype)
    return path


def test_wide_groups_take_each_packages_speech_by_voice(tmp_path):
    share = tmp_path / "usr" / "share"
    stamps = share / "tuxpaint" / "stamps"
    _write(stamps / "animals" / "koala_desc_fr.ogg")
    _write(stamps / "food" / "pear_desc_fr.ogg")
    _write(stamps / "food" / "pear_desc_da.ogg.ogg")  # as misnamed in the package
    _write(stamps / "food" / "pear_desc.ogg")
    _write(stamps / "math" / "7_el.ogg")  # a name, not a description
    _write(stamps / "food" / "crunch.ogg")  # an effect
    fillets = share / "games" / "fillets-ng" / "sound"
    for name in ("b1-m-1", "b1-v-2", "b1-m", "b1-x-3", "b1-1"):
        _write(fillets / "gods" / "cs" / f"{name}.ogg")
    _write(fillets / "gods" / "en" / "b1-m-1.ogg")  # another language: not this package's
    pk3 = share / "games" / "nexuiz" / "data" / "data.pk3"
    pk3.parent.mkdir(parents=True)
    speech = _write(tmp_path / "speech.ogg").read_bytes()
    with zipfile.ZipFile(pk3, "w") as archive:
        for member in (
            "player/marine/coms/attack.ogg",
            "player/marine/player/pain25.ogg",
            "tutorial/1-welcome.ogg",
            "tutorial/misc-door.ogg",
            "announcer/male/1fragleft.ogg",
        ):
            archive.writestr(f"sound/{member}", speech)
    megapack = share / "games" / "megaglest" / "techs" / "megapack"
    units = megapack / "factions" / "norsemen" / "units"
    _write(units / "archer" / "sounds" / "archer_select1.wav")
    _write(units / "archer" / "sounds" / "archer_ack2.wav")
    _write(units / "archer" / "sounds" / "archer_attack1.wav")
    _write(units / "archer" / "sounds" / "archer_ack3.wav", subtype="PCM_U8")
    _write(units / "pig" / "sounds" / "pig_select1.wav")
    _write(megapack / "commondata" / "sounds" / "worker_ack1.wav")
    voices = share / "kajongg" / "voices"
    _write(voices / "male1" / "b1.ogg")
    _write(voices / "de" / "male1" / "b1.ogg")
    for speaker in ("3", "5"):
        _write(share / "gcin-voice" / "ogg" / "ㄅㄚ" / f"{speaker}.ogg")

    groups = {
        group: sorted(p.name for p in paths) for group, paths in wide_groups(tmp_path).items()
    }
    assert groups == {
        "tuxpaint-fr": ["koala_desc_fr.ogg", "pear_desc_fr.ogg"],
        "tuxpaint-da": ["pear_desc_da.ogg.ogg"],
        "tuxpaint-en": ["pear_desc.ogg"],
        "fillets-m": ["b1-m-1.ogg", "b1-m.ogg"],
        "fillets-v": ["b1-v-2.ogg"],
        "fillets-characters": ["b1-1.ogg", "b1-x-3.ogg"],
        "nexuiz-marine": ["attack.ogg"],
        "nexuiz-tutorial": ["1-welcome.ogg"],
        "megaglest-norsemen": ["archer_ack2.wav", "archer_select1.wav"],
        "megaglest-common": ["worker_ack1.wav"],
        "kajongg-male1": ["b1.ogg"],
        "kajongg-de-male1": ["b1.ogg"],
        "gcin-3": ["3.ogg"],
        "gcin-5": ["5.ogg"],
    }
    # Unpacked once: a second listing reads the same extracted files.
    assert wide_groups(tmp_path)["nexuiz-marine"][0].read_bytes() == speech
    assert all(not g.startswith(TRAIN_ONLY) for g in ("tuxpaint-fr", "nexuiz-marine", "gcin-3"))
    assert all(g.startswith(TRAIN_ONLY) for g in ("megaglest-common", "fillets-characters"))


def test_clipped_clips_are_those_held_at_full_scale():
    x = _voice(16000)
    assert not is_clipped(x / np.abs(x).max())  # normalised to full scale, not clipped
    assert is_clipped(np.clip(20 * x, -1, 1))
    assert not is_clipped(np.zeros(0, np.float32))


def test_voice_checks_drop_clipped_files_and_narrowband_voices(tmp_path):
    rate = 44100
    wide = [_write(tmp_path / "wide" / f"{i}.wav", rate) for i in range(3)]
    sf.write(wide[2], np.clip(20 * _voice(rate, 0.5), -1, 1), rate)
    pairs, info = voice_clips(wide, checked=True)
    assert [p.name for p, _ in pairs] == ["0.wav", "1.wav"]
    assert info["clipped_files"] == 1 and info["rate"] == rate
    assert info["bandwidth_hz"] > 20000
    assert all(c.dtype == np.float32 and len(c) > 4000 for _, c in pairs)

    # The same voice recorded at 12 kHz and resampled to 44.1 kHz: its band ends near 6 kHz,
    # short of 7.5 kHz, so none of it is kept.
    narrow = []
    for i in range(2):
        narrow.append(tmp_path / "narrow" / f"{i}.wav")
        narrow[-1].parent.mkdir(exist_ok=True)
        sf.write(narrow[-1], audio.resample(_voice(12000, 0.5), 12000, rate), rate)
    pairs, info = voice_clips(narrow, checked=True)
    assert pairs == [] and 5000 < info["bandwidth_hz"] < 7500
    # The debian corpora are kept as they were: no checks.
    assert len(voice_clips(narrow, checked=False)[0]) == 2


def test_full_band_data_keeps_only_voices_with_a_band_above_14_khz(tmp_path):
    """`prepare --rate 48000`: 48 kHz patches and validation inputs for x2 and x3, from the
    voices whose spectrum reaches past 14 kHz; a voice recorded at 22.05 kHz has no such band."""
    corpus = tmp_path / "corpus"
    for i, voice in enumerate(("full1", "full2", "full3")):
        for k in range(3):
            path = corpus / voice / f"{k}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, _voice(44100, 1.0, seed=10 * i + k), 44100)
    for k in range(3):
        path = corpus / "band11k" / f"{k}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, _voice(22050, 1.0, seed=100 + k), 22050)
    out = tmp_path / "data"
    manifest = prepare(str(corpus), out, patch=4096, stride=2048, val_fraction=0.25, rate=48000)
    assert manifest["rate"] == 48000
    voices = manifest["splits"]["train"]["voices"] | manifest["splits"]["val"]["voices"]
    assert voices["band11k"]["files"] == 0 and voices["band11k"]["bandwidth_hz"] < 14000
    assert all(
        voices[v]["files"] == 3 and voices[v]["bandwidth_hz"] > 20000
        for v in voices
        if v != "band11k"
    )
    hr = np.load(out / "val_hr.npy")
    assert hr.shape[1] == 4096 and len(hr) == manifest["splits"]["val"]["patches"] > 0
    assert np.load(out / "val_lr_x3.npy").shape == (len(hr), 4096 // 3 + 1)
    wav = next((out / "val_wavs").rglob("*.wav"))
    assert sf.info(wav).samplerate == 48000
