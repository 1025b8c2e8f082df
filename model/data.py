"""Corpus -> 16 kHz (or 48 kHz) speech split by voice -> HR/LR patch pairs in numpy memmaps.

Debian's spoken-word packages are the default corpus: ktuberling-data and klettres-data (KDE,
one speaker per language) and hedgewars-data (one speaker per voice pack). Validation voices are
whole groups that training never sees. `debian+g722` adds Asterisk's G.722 prompts (sentences,
four voices in five languages) to training only: they are coded to about 7 kHz, so they would
not be full-band references for validation. `wide` adds six more packages of recorded speech
(WIDE_PACKAGES) and checks every voice: clipped clips out, voices whose band ends too low out.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

from model import audio
from model.registry import OUTPUT_RATE

DEBIAN_PACKAGES = ("ktuberling-data", "klettres-data", "hedgewars-data")
G722_PACKAGES = tuple(
    f"asterisk-core-sounds-{lang}-g722" for lang in ("en", "es", "fr", "it", "ru")
)
# `wide`: more voices and recording set-ups (volunteers' microphones, actors in a studio, game
# voice packs): spoken descriptions in Tux Paint, Czech dialogue in Fish Fillets, player voices
# and a tutorial in Nexuiz, unit voices in MegaGlest, Kajongg's callers, Mandarin syllables.
WIDE_PACKAGES = (
    "tuxpaint-stamps-default",
    "fillets-ng-data-cs",
    "nexuiz-data",
    "megaglest-data",
    "kajongg",
    "gcin-voice",
)
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}
# Groups that only ever train: Asterisk's band stops short of 8 kHz; MegaGlest's factions share
# actors through its common sounds, and Fish Fillets' characters may be the two fish's actors.
TRAIN_ONLY_PREFIX = "asterisk-"
TRAIN_ONLY = (TRAIN_ONLY_PREFIX, "megaglest-", "fillets-characters")
# Validation voices beside those the hash picks: Fish Fillets' big fish, so that acted dialogue
# in whole sentences, a studio unlike the others, is among the voices training never hears.
VALIDATION = ("fillets-v",)
# `wide` drops clips with more than this fraction of samples at full scale (Tux Paint's Spanish
# reader: about 10 % in every clip) and voices whose band ends below what the rate asks for: near
# 8 kHz for 16 kHz data, above 14 kHz for full-band (48 kHz) data, whose point is that band.
CLIPPED_FRACTION = 1e-3
MIN_BANDWIDTH_HZ = {16000: 7500.0, 48000: 14000.0}
# The scales validation inputs are made for (val_lr_x{scale}.npy), by the data's rate.
SCALES_BY_RATE = {16000: (2, 4), 48000: (2, 3)}


def fetch_debian(root: Path, packages=DEBIAN_PACKAGES, name: str = "") -> Path:
    """apt-get download + dpkg-deb -x the packages into root/unpacked{name} (no root needed for
    either)."""
    debs = root / f"debs{name}"
    debs.mkdir(parents=True, exist_ok=True)
    for package in packages:
        if not list(debs.glob(f"{package}_*.deb")):
            print(f"downloading {package} ...", flush=True)
            result = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True)
            if result.returncode != 0:
                raise SystemExit(
                    f"apt-get download {package} failed: {result.stderr.decode().strip()}\n"
                    "(run `apt-get update` once so apt knows the package lists)"
                )
    unpacked = root / f"unpacked{name}"
    if not unpacked.exists():
        tmp = root / f"unpacked{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for deb in sorted(debs.glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
        tmp.rename(unpacked)
    return unpacked


def debian_groups(unpacked: Path) -> dict[str, list[Path]]:
    """Files by voice: KDE packages by language (one speaker records a language's words and
    letters), hedgewars by voice pack."""
    groups: dict[str, list[Path]] = {}
    share = unpacked / "usr" / "share"
    for path in sorted((share / "ktuberling" / "sounds").glob("*/*.ogg")):
        groups.setdefault(f"kde-{path.parent.name}", []).append(path)
    for path in sorted((share / "klettres").glob("*/**/*.ogg")):
        lang = path.relative_to(share / "klettres").parts[0]
        groups.setdefault(f"kde-{lang}", []).append(path)
    voices = share / "games" / "hedgewars" / "Data" / "Sounds" / "voices"
    for path in sorted(voices.glob("*/*.ogg")):
        groups.setdefault(f"hedgewars-{path.parent.name}", []).append(path)
    return groups


def wide_groups(unpacked: Path) -> dict[str, list[Path]]:
    """Files by voice in WIDE_PACKAGES: only speech, only what one speaker (or one character set
    of a game, where voices cannot be told apart by name) recorded."""
    share = unpacked / "usr" / "share"
    groups: dict[str, list[Path]] = {}

    def add(group: str, paths) -> None:
        groups.setdefault(group, []).extend(sorted(paths))

    # One volunteer per language reads the stamps' descriptions (`*_desc_<lang>.ogg`; a few are
    # misnamed `.ogg.ogg`); `*_desc.ogg` is the English reader.
    for path in sorted((share / "tuxpaint" / "stamps").rglob("*_desc*.ogg*")):
        lang = path.name.split("_desc")[-1].split(".")[0].lstrip("_") or "en"
        add(f"tuxpaint-{lang}", [path])
    # Fish Fillets' lines are <level>-<speaker>-<line>.ogg: m and v are the two fish, the two
    # main voices; the other codes are characters, several actors, kept together.
    for path in sorted((share / "games" / "fillets-ng" / "sound").glob("*/cs/*.ogg")):
        parts = path.stem.split("-")
        speaker = parts[1] if len(parts) > 1 and parts[1] in ("m", "v") else "characters"
        add(f"fillets-{speaker}", [path])
    # Nexuiz: each player model's radio calls (coms/; its pain and death sounds are not speech)
    # and the tutorial's narrator. The announcer is processed and left out.
    sounds = extract_pk3(share / "games" / "nexuiz" / "data" / "data.pk3", unpacked / "nexuiz")
    for folder in sorted((sounds / "player").glob("*/coms")):
        add(f"nexuiz-{folder.parent.name}", folder.glob("*.ogg"))
    add("nexuiz-tutorial", (sounds / "tutorial").glob("[0-9]*.ogg"))
    # MegaGlest: units answer when selected or given an order (`*_select*`, `*_ack*`); attack
    # and death sounds are effects, animals' and monsters' answers are not speech, and 8-bit
    # files have no band to learn from. One group a faction, one for the common sounds.
    megapack = share / "games" / "megaglest" / "techs" / "megapack"
    folders = {
        f"megaglest-{p.name}": p.glob("units/*/sounds/*") for p in megapack.glob("factions/*")
    }
    folders["megaglest-common"] = (megapack / "commondata" / "sounds").glob("*")
    for group, files in sorted(folders.items()):
        add(group, [p for p in files if is_megaglest_voice(p)])
    # Kajongg: eight callers, four English and four German.
    for folder in sorted((share / "kajongg" / "voices").glob("**/*")):
        if list(folder.glob("*.ogg")):
            name = "-".join(folder.relative_to(share / "kajongg" / "voices").parts)
            add(f"kajongg-{name}", folder.glob("*.ogg"))
    # gcin: every Mandarin syllable by two speakers, file 3.ogg and 5.ogg in its folder.
    for speaker in ("3", "5"):
        add(f"gcin-{speaker}", (share / "gcin-voice" / "ogg").glob(f"*/{speaker}.ogg"))
    return {group: paths for group, paths in groups.items() if paths}


# MegaGlest units whose answers are animal or monster sounds.
MEGAGLEST_NOT_SPEECH = (
    "behemoth bull carpet chicken cow daemon dragon eagle evil_dragon golem pig sheep".split()
)


def is_megaglest_voice(path: Path) -> bool:
    """A MegaGlest unit's spoken answer in 16-bit PCM (see `wide_groups`)."""
    import soundfile

    unit, sep, _ = path.stem.rpartition("_select" if "_select" in path.stem else "_ack")
    if not sep or unit in MEGAGLEST_NOT_SPEECH or path.suffix not in (".wav", ".ogg"):
        return False
    return soundfile.info(str(path)).subtype not in ("PCM_U8", "PCM_S8")


def extract_pk3(pk3: Path, dest: Path) -> Path:
    """The sound/ folder of a Quake-engine data.pk3 (a zip) under dest; done once."""
    import zipfile

    if not dest.exists():
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        with zipfile.ZipFile(pk3) as archive:
            members = [
                n for n in archive.namelist() if n.startswith(("sound/player/", "sound/tutorial/"))
            ]
            archive.extractall(tmp, members)
        tmp.rename(dest)
    return dest / "sound"


def g722_groups(unpacked: Path) -> dict[str, list[Path]]:
    """Asterisk's prompts by speaker: folders are named language_COUNTRY_sex_Name, and Allison
    speaks both en_US and es_MX, so she is one group."""
    groups: dict[str, list[Path]] = {}
    for folder in sorted((unpacked / "usr" / "share" / "asterisk" / "sounds").iterdir()):
        speaker = folder.name.split("_")[-1]
        groups.setdefault(f"{TRAIN_ONLY_PREFIX}{speaker}", []).extend(
            sorted(folder.rglob("*.g722"))
        )
    return groups


def decode_g722(path: Path) -> tuple[np.ndarray, int]:
    """A headerless 64 kbit/s G.722 file -> (float32 [1 x N], 16000)."""
    return audio.g722_decode(path.read_bytes())[None], OUTPUT_RATE


def folder_groups(folder: Path) -> dict[str, list[Path]]:
    """Any folder of audio: each first-level subfolder is a speaker (VCTK's layout); loose files
    form one group each by file name stem prefix before '_' (VCTK's p225_001 style)."""
    groups: dict[str, list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        rel = path.relative_to(folder)
        key = rel.parts[0] if len(rel.parts) > 1 else path.stem.split("_")[0]
        groups.setdefault(key, []).append(path)
    return groups


def is_validation(group: str, fraction: float) -> bool:
    """Stable pseudo-random choice of validation voices by hashing the group name."""
    digest = int(hashlib.sha1(group.encode()).hexdigest()[:8], 16)
    return digest / 0xFFFFFFFF < fraction


def load_native(path: Path) -> tuple[np.ndarray, int] | None:
    """A file as mono float32 [T] at its own rate; None when it cannot be decoded."""
    try:
        x, rate = decode_g722(path) if path.suffix == ".g722" else audio.load(path)
    except audio.AudioError:
        return None
    return audio.to_mono(x), rate


def is_clipped(x: np.ndarray) -> bool:
    """More than CLIPPED_FRACTION of the samples at full scale: the recording was clipped (a
    decoder's overshoot can take such samples past 1)."""
    return x.size > 0 and float(np.mean(np.abs(x) >= 0.99)) > CLIPPED_FRACTION


def to_clip(x: np.ndarray, rate: int, out_rate: int = OUTPUT_RATE) -> np.ndarray | None:
    """At `out_rate`, silence trimmed, 10 ms fades so concatenated clips do not click; None when
    too short or silent."""
    x = audio.resample(x, rate, out_rate)
    x = audio.trim_silence(x)
    if len(x) < out_rate // 4 or np.max(np.abs(x)) < 1e-3:
        return None
    fade = out_rate // 100
    ramp = np.linspace(0, 1, fade, dtype=np.float32)
    x[:fade] *= ramp
    x[-fade:] *= ramp[::-1]
    return x.astype(np.float32)


def voice_bandwidth(
    natives: list[tuple[np.ndarray, int]], seconds: float = 120.0
) -> tuple[float, int]:
    """Where a voice's spectrum ends (`audio.bandwidth`), in Hz, over up to `seconds` of its
    clips at their most common rate (others resampled to it), and that rate."""
    rates = [rate for _, rate in natives]
    rate = max(set(rates), key=rates.count)
    joined, total = [], 0
    for x, r in natives:
        joined.append(audio.resample(x, r, rate) if r != rate else x)
        total += len(joined[-1])
        if total >= seconds * rate:
            break
    return audio.bandwidth(np.concatenate(joined), rate), rate


def voice_clips(
    paths: list[Path], checked: bool, out_rate: int = OUTPUT_RATE
) -> tuple[list[tuple[Path, np.ndarray]], dict]:
    """A voice's (path, clip) pairs at `out_rate` and what was learnt of it. `checked` (the
    `wide` corpus, and any full-band data) drops clipped files and the whole voice when its band
    ends below MIN_BANDWIDTH_HZ[out_rate], and reports its bandwidth at the files' own rate."""
    natives = [(p, n) for p in paths if (n := load_native(p)) is not None]
    info: dict = {}
    if checked:
        kept = [(p, n) for p, n in natives if not is_clipped(n[0])]
        info["clipped_files"] = len(natives) - len(kept)
        natives = kept
        if natives:
            bandwidth, info["rate"] = voice_bandwidth([n for _, n in natives])
            info["bandwidth_hz"] = round(bandwidth)
            if info["bandwidth_hz"] < MIN_BANDWIDTH_HZ[out_rate]:
                natives = []
    pairs = [(p, c) for p, n in natives if (c := to_clip(*n, out_rate)) is not None]
    return pairs, info


def cut_patches(stream: np.ndarray, patch: int, stride: int) -> np.ndarray:
    """[N x patch] windows of a 1-D stream every `stride` samples."""
    if len(stream) < patch:
        return np.zeros((0, patch), dtype=np.float32)
    starts = np.arange(0, len(stream) - patch + 1, stride)
    return np.stack([stream[s : s + patch] for s in starts])


def _write_memmap(path: Path, array: np.ndarray) -> None:
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=array.shape)
    mm[:] = array
    mm.flush()


def corpus_groups(corpus: str, root: Path) -> dict[str, list[Path]]:
    """A corpus's files by voice: the Debian corpora (fetched and unpacked under `root`), or a
    folder of audio."""
    if corpus not in ("debian", "debian+g722", "wide"):
        return folder_groups(Path(corpus))
    groups = debian_groups(fetch_debian(root))
    if corpus != "debian":
        groups |= g722_groups(fetch_debian(root, G722_PACKAGES, "-g722"))
    if corpus == "wide":
        groups |= wide_groups(fetch_debian(root, WIDE_PACKAGES, "-wide"))
    return groups


def is_checked(corpus: str, rate: int) -> bool:
    """Whether a voice's clips are checked for clipping and bandwidth (`voice_clips`): in the
    `wide` corpus and in any full-band data."""
    return corpus == "wide" or rate != OUTPUT_RATE


def prepare(
    corpus: str,
    out: Path,
    *,
    patch: int = 8192,
    stride: int = 4096,
    val_fraction: float = 0.15,
    rate: int = OUTPUT_RATE,
) -> dict:
    """Build out/{train,val}_hr.npy, out/val_lr_x{scale}.npy, out/val_wavs/ and
    out/manifest.json at `rate`: 16 kHz, or 48 kHz for full-band models."""
    if rate not in SCALES_BY_RATE:
        raise SystemExit(f"--rate must be one of {sorted(SCALES_BY_RATE)}, not {rate}")
    out.mkdir(parents=True, exist_ok=True)
    groups = corpus_groups(corpus, out)
    if not groups:
        raise SystemExit(f"no audio found in corpus {corpus!r}")
    names = sorted(groups)
    val_names = [
        g
        for g in names
        if (is_validation(g, val_fraction) or g in VALIDATION) and not g.startswith(TRAIN_ONLY)
    ]
    if not val_names or len(val_names) == len(names):
        # Tiny corpora: still hold out at least one voice and train on the rest.
        val_names = names[-1:] if len(names) > 1 else []
    manifest: dict = {
        "corpus": corpus,
        "rate": rate,
        "patch": patch,
        "stride": stride,
        "splits": {},
    }
    shutil.rmtree(out / "val_wavs", ignore_errors=True)
    for split in ("train", "val"):
        members = [g for g in names if (g in val_names) == (split == "val")]
        patches, seconds, files, group_patches, voices = [], 0.0, 0, {}, {}
        for group in members:
            pairs, voices[group] = voice_clips(groups[group], is_checked(corpus, rate), rate)
            clips = [c for _, c in pairs]
            voices[group] |= {
                "files": len(clips),
                "hours": round(sum(len(c) for c in clips) / rate / 3600, 4),
            }
            if not pairs:
                continue
            files += len(clips)
            seconds += sum(len(c) for c in clips) / rate
            patches.append(cut_patches(np.concatenate(clips), patch, stride))
            group_patches[group] = len(patches[-1])
            if split == "val":
                (out / "val_wavs" / group).mkdir(parents=True, exist_ok=True)
                for path, clip in pairs:
                    audio.save(out / "val_wavs" / group / f"{path.stem}.wav", clip, rate)
            print(f"{split}: {group}: {voices[group]}", flush=True)
        hr = np.concatenate(patches) if patches else np.zeros((0, patch), np.float32)
        _write_memmap(out / f"{split}_hr.npy", hr)
        if split == "val":
            for scale in SCALES_BY_RATE[rate]:
                _write_memmap(out / f"val_lr_x{scale}.npy", audio.lowres(hr, scale, "cheby8"))
        manifest["splits"][split] = {
            "groups": members,
            "files": files,
            "hours": round(seconds / 3600, 3),
            "patches": int(len(hr)),
            # Patches are stored voice after voice in this order: which rows are whose.
            "group_patches": group_patches,
            # Every voice asked for, kept or not: files, hours, and for `wide` its bandwidth at
            # its own rate and the clipped files dropped.
            "voices": voices,
        }
    manifest["packages"] = package_table(manifest)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def package_table(manifest: dict) -> dict:
    """Voices and hours kept per package (a group's name up to its first '-') and split."""
    table: dict = {}
    for split, entry in manifest["splits"].items():
        for group, voice in entry["voices"].items():
            if not voice["files"]:
                continue
            row = table.setdefault(group.split("-")[0], {}).setdefault(
                split, {"voices": 0, "hours": 0.0}
            )
            row["voices"] += 1
            row["hours"] = round(row["hours"] + voice["hours"], 4)
    return table
