"""What ships: checkpoints that beat the spline baseline, `ship` moving the default, and an install
that carries the page's templates and static files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from model import audio, checkpoint, metrics, registry
from model.cli import ship
from model.inference import Upsampler
from model.nets import DNN
from tests.test_metrics import fullband_speech

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DIR = registry.CHECKPOINT_DIR
SHIPPED = [m for m in registry.available_models() if m["path"]]


@pytest.fixture(scope="module")
def speech_hr(speech_wav) -> tuple[np.ndarray, int]:
    """The speech clip, mono, at its own rate: the reference every model is scored against."""
    x, rate = audio.load(speech_wav)
    return audio.to_mono(x), rate


@pytest.mark.parametrize("entry", SHIPPED, ids=[m["name"] for m in SHIPPED])
def test_each_shipped_checkpoint_beats_spline_on_lsd(entry, speech_hr):
    hr, rate = speech_hr
    if entry["output_rate"] > rate:
        # The real clip is 16 kHz: it has no band above 8 kHz for a full-band model to restore,
        # so that model is scored on speech-like audio with harmonics and hiss up to 24 kHz.
        hr = fullband_speech(4.0, rate=entry["output_rate"])
    elif rate != entry["output_rate"]:
        hr = audio.resample(hr, rate, entry["output_rate"])
    scale = entry["scale"]
    lowres = audio.lowres(hr, scale, "cheby8", rate=entry["output_rate"])

    superres = Upsampler.load(entry["name"], scale=scale, device="cpu")(lowres)[0]
    spline = audio.spline(lowres, scale)

    assert metrics.lsd(hr, superres) < metrics.lsd(hr, spline)


# ---------------------------------------------------------------- ship


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.fixture
def checkpoint_dir(tmp_path, monkeypatch) -> Path:
    """A copy of the shipped checkpoints in place of the real ones, which `ship` must not touch."""
    copies = tmp_path / "checkpoints"
    copies.mkdir()
    for path in SHIPPED_DIR.glob("*.safetensors"):
        (copies / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(registry, "CHECKPOINT_DIR", copies)
    return copies


def tiny_run(folder: Path) -> Path:
    """A training run folder holding a tiny x4 net as its best checkpoint; nothing is trained."""
    init_args = {"frame": 64, "hidden": 16, "layers": 1}
    torch.manual_seed(0)
    net = DNN(**init_args)
    with torch.no_grad():
        net.mlp[-1].weight.normal_(0, 0.01)  # not the zero start: weights worth comparing
    training = {"epoch": 3, "val": {"lsd": 1.5}}
    checkpoint.save(
        folder / "best.safetensors",
        net,
        init_args=init_args,
        input_rate=4000,
        scale=4,
        training=training,
    )
    return folder


def defaults(scale: int) -> list[str]:
    return [m["name"] for m in registry.available_models() if m["scale"] == scale and m["default"]]


def test_ship_copies_the_run_and_moves_the_default_of_its_rate_and_scale(checkpoint_dir, tmp_path):
    before = digests(SHIPPED_DIR)
    previous_x4, previous_x2 = defaults(4), defaults(2)
    assert len(previous_x4) == len(previous_x2) == 1
    run = tiny_run(tmp_path / "runs" / "tiny")

    result = ship(run, "tiny-x4", default=True)

    shipped = checkpoint_dir / "tiny-x4.safetensors"
    assert result == {"path": str(shipped), "bytes": shipped.stat().st_size, "default": True}
    net, meta = checkpoint.load(shipped)
    trained, _ = checkpoint.load(run / "best.safetensors")
    for name, weights in trained.state_dict().items():
        torch.testing.assert_close(net.state_dict()[name], weights, atol=1e-3, rtol=1e-3)
    assert (meta["input_rate"], meta["scale"]) == (4000, 4)
    assert meta["training"] == {"epoch": 3, "val": {"lsd": 1.5}, "default": True, "run": "tiny"}

    assert defaults(4) == ["tiny-x4"]
    assert registry.find(None, 4000, 4)["name"] == "tiny-x4"
    unmarked = checkpoint.read_metadata(checkpoint_dir / f"{previous_x4[0]}.safetensors")
    assert unmarked["training"]["default"] is False
    assert defaults(2) == previous_x2
    assert digests(SHIPPED_DIR) == before


def test_ship_without_default_leaves_the_default_where_it_was(checkpoint_dir, tmp_path):
    previous_x4 = defaults(4)

    result = ship(tiny_run(tmp_path / "tiny"), "tiny-x4")

    assert result["default"] is False
    assert "tiny-x4" in [m["name"] for m in registry.available_models()]
    assert defaults(4) == previous_x4


def test_a_multi_rate_net_ships_once_per_scale(checkpoint_dir, tmp_path):
    from model.spectral import SpectralBWE

    args = dict(scale=4, scales=[2, 4], n_fft=256, hop=64, channels=8, blocks=1, kernel=3)
    run = tmp_path / "spectral"
    checkpoint.save(
        run / "best.safetensors", SpectralBWE(**args), init_args=args, input_rate=4000, scale=4
    )
    ship(run, "spectral-x4", scale=4)
    ship(run, "spectral-x2", scale=2, default=True)

    x2 = checkpoint.read_metadata(checkpoint_dir / "spectral-x2.safetensors")
    assert (x2["input_rate"], x2["scale"], x2["args"]["scale"]) == (8000, 2, 2)
    assert registry.find(None, 8000, 2)["name"] == "spectral-x2"
    net, _ = checkpoint.load(checkpoint_dir / "spectral-x2.safetensors")
    assert net.scale == 2
    with pytest.raises(LookupError, match="not by 3"):
        ship(run, "spectral-x3", scale=3)


def test_a_shipped_written_gain_lowers_only_the_band_the_net_writes(checkpoint_dir, tmp_path):
    from model.spectral import SpectralBWE

    args = dict(scale=4, scales=[2, 4], n_fft=256, hop=64, channels=8, blocks=1, kernel=3)
    torch.manual_seed(0)
    net = SpectralBWE(**args)
    with torch.no_grad():  # a written band well above the starting near-silence
        net.magnitude.bias.fill_(-1.0)
    run = tmp_path / "spectral"
    checkpoint.save(run / "best.safetensors", net, init_args=args, input_rate=4000, scale=4)
    ship(run, "as-trained", scale=4)
    ship(run, "quieter", scale=4, written_gain_db=-6.0)

    x = torch.randn(1, 1, 4096)
    spectra = {}
    for name in ("as-trained", "quieter"):
        shipped, meta = checkpoint.load(checkpoint_dir / f"{name}.safetensors")
        with torch.no_grad():
            spectra[name] = shipped.spectrum(x).abs()
    nyquist = shipped.nyquist_bin(4)
    ratio = spectra["quieter"][:, nyquist + 1 :] / spectra["as-trained"][:, nyquist + 1 :]
    torch.testing.assert_close(ratio, torch.full_like(ratio, 10 ** (-6 / 20)), rtol=1e-2, atol=0)
    torch.testing.assert_close(
        spectra["quieter"][:, : nyquist + 1], spectra["as-trained"][:, : nyquist + 1]
    )
    assert meta["args"]["written_gain_db"] == -6.0
    with pytest.raises(ValueError, match="writes no band"):
        ship(tiny_run(tmp_path / "tiny"), "tiny-x4", written_gain_db=-6.0)


# ---------------------------------------------------------------- the install

# Imported from the built package, not the source tree: the page and a static file are served.
SERVE_PAGE = """
import json
import webapp

app = webapp.create_app({"TESTING": True})
client = app.test_client()
page, script = client.get("/"), client.get("/static/app.js")
print(json.dumps({
    "package": webapp.__file__,
    "templates": app.template_folder,
    "page": [page.status_code, 'id="record"' in page.get_data(as_text=True)],
    "script": script.status_code,
}))
script.close()
"""


def test_an_installed_package_carries_and_serves_the_templates_and_static_files(tmp_path):
    pytest.importorskip("setuptools", reason="setuptools builds the package")
    # build_py lays out the files exactly as the wheel holds them (bdist_wheel zips this tree);
    # setuptools' own egg-info and build folders go to tmp_path, so the source tree is untouched.
    lib, egg_base = tmp_path / "lib", tmp_path / "egg"
    egg_base.mkdir()
    built = subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q"]
        + ["egg_info", "--egg-base", str(egg_base), "build_py", "--build-lib", str(lib)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr

    for folder in ("templates", "static"):
        sources = sorted(p for p in (ROOT / folder).iterdir() if not p.name.startswith("."))
        assert sources
        for source in sources:
            installed = lib / "webapp" / folder / source.name
            assert installed.is_file(), f"{source.relative_to(ROOT)} is not in the package"
            assert installed.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in (lib / "model" / "checkpoints").glob("*.safetensors")) == sorted(
        p.name for p in SHIPPED_DIR.glob("*.safetensors")
    )

    served = subprocess.run(
        [sys.executable, "-c", SERVE_PAGE],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(lib)},
        capture_output=True,
        text=True,
    )
    assert served.returncode == 0, served.stderr
    answer = json.loads(served.stdout)
    assert Path(answer["package"]).is_relative_to(lib)
    assert Path(answer["templates"]).is_relative_to(lib)
    assert answer["page"] == [200, True]
    assert answer["script"] == 200
