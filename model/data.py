"""Corpus -> 16 kHz speech split by voice -> HR/LR patch pairs in numpy memmaps (`data/`).

Debian's spoken-word packages are the default corpus: ktuberling-data and klettres-data (KDE,
one speaker per language) and hedgewars-data (one speaker per voice pack). Validation voices are
whole groups that training never sees. `debian+g722` adds Asterisk's G.722 prompts (sentences,
four voices in five languages) to training only: they are coded to about 7 kHz, so they would
not be full-band references for validation.
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
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}
# Groups that only ever train: their band stops short of 8 kHz.
TRAIN_ONLY_PREFIX = "asterisk-"
SCALES = (2, 4)


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
    import G722  # the g722 package; only data preparation needs it

    pcm = G722.G722(OUTPUT_RATE, 64000).decode(path.read_bytes())
    return np.asarray(pcm, dtype=np.float32)[None] / 32768.0, OUTPUT_RATE


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


def load_clip(path: Path) -> np.ndarray | None:
    """16 kHz mono, silence trimmed, 10 ms fades so concatenated clips do not click."""
    try:
        x, rate = decode_g722(path) if path.suffix == ".g722" else audio.load(path)
    except audio.AudioError:
        return None
    x = audio.resample(audio.to_mono(x), rate, OUTPUT_RATE)
    x = audio.trim_silence(x)
    if len(x) < OUTPUT_RATE // 4 or np.max(np.abs(x)) < 1e-3:
        return None
    fade = OUTPUT_RATE // 100
    ramp = np.linspace(0, 1, fade, dtype=np.float32)
    x[:fade] *= ramp
    x[-fade:] *= ramp[::-1]
    return x.astype(np.float32)


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


def prepare(
    corpus: str,
    out: Path,
    *,
    patch: int = 8192,
    stride: int = 4096,
    val_fraction: float = 0.15,
) -> dict:
    """Build out/{train,val}_hr.npy, out/val_lr_x{2,4}.npy, out/val_wavs/ and out/manifest.json."""
    out.mkdir(parents=True, exist_ok=True)
    if corpus in ("debian", "debian+g722"):
        groups = debian_groups(fetch_debian(out))
        if corpus == "debian+g722":
            groups |= g722_groups(fetch_debian(out, G722_PACKAGES, "-g722"))
    else:
        groups = folder_groups(Path(corpus))
    if not groups:
        raise SystemExit(f"no audio found in corpus {corpus!r}")
    names = sorted(groups)
    val_names = [
        g for g in names if is_validation(g, val_fraction) and not g.startswith(TRAIN_ONLY_PREFIX)
    ]
    if not val_names or len(val_names) == len(names):
        # Tiny corpora: still hold out at least one voice and train on the rest.
        val_names = names[-1:] if len(names) > 1 else []
    manifest: dict = {
        "corpus": corpus,
        "rate": OUTPUT_RATE,
        "patch": patch,
        "stride": stride,
        "splits": {},
    }
    shutil.rmtree(out / "val_wavs", ignore_errors=True)
    for split in ("train", "val"):
        members = [g for g in names if (g in val_names) == (split == "val")]
        patches, seconds, files, group_patches = [], 0.0, 0, {}
        for group in members:
            pairs = [(p, c) for p in groups[group] if (c := load_clip(p)) is not None]
            if not pairs:
                continue
            clips = [c for _, c in pairs]
            files += len(clips)
            seconds += sum(len(c) for c in clips) / OUTPUT_RATE
            patches.append(cut_patches(np.concatenate(clips), patch, stride))
            group_patches[group] = len(patches[-1])
            if split == "val":
                (out / "val_wavs" / group).mkdir(parents=True, exist_ok=True)
                for path, clip in pairs:
                    audio.save(out / "val_wavs" / group / f"{path.stem}.wav", clip, OUTPUT_RATE)
            print(f"{split}: {group}: {len(clips)} clips", flush=True)
        hr = np.concatenate(patches) if patches else np.zeros((0, patch), np.float32)
        _write_memmap(out / f"{split}_hr.npy", hr)
        if split == "val":
            for scale in SCALES:
                _write_memmap(out / f"val_lr_x{scale}.npy", audio.lowres(hr, scale, "cheby8"))
        manifest["splits"][split] = {
            "groups": members,
            "files": files,
            "hours": round(seconds / 3600, 3),
            "patches": int(len(hr)),
            # Patches are stored voice after voice in this order: which rows are whose.
            "group_patches": group_patches,
        }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest
