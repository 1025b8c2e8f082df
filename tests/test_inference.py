"""model.inference.Upsampler: lengths, channels, chunked == whole-signal, no seams."""

import numpy as np
import pytest
import torch

from model import audio
from model.inference import Chain, Upsampler, crossfade_window
from model.nets import AudioUNet


@pytest.fixture(scope="module")
def unet_upsampler():
    torch.manual_seed(0)
    net = AudioUNet(depth=3, base_filters=8, max_filters=32, max_kernel=17)
    # The residual branch starts at zero (an identity net); give it weights so chunking matters.
    torch.nn.init.normal_(net.final.weight, std=0.05)
    # Small chunks so a few seconds already cross many seams.
    return Upsampler(
        net,
        name="test",
        input_rate=4000,
        scale=4,
        device="cpu",
        chunk=4096,
        margin=512,
        fade=512,
        batch=3,
    )


def _speechlike(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = sum(
        np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) / k
        for k, f in enumerate((150, 310, 620, 1240), 1)
    )
    return (0.3 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 2.5 * t))).astype(np.float32)


def test_windows_sum_to_one_where_chunks_overlap():
    length, margin, fade = 64, 8, 16
    hop = length - 2 * margin - fade
    w = crossfade_window(length, margin, fade)
    total = np.zeros(hop * 5 + length)
    for k in range(6):
        total[k * hop : k * hop + length] += w
    inner = total[margin + fade : 5 * hop + margin]
    assert np.allclose(inner, 1.0)


@pytest.mark.parametrize("frames", [1, 7, 4000, 12345])
def test_output_length_and_channels(unet_upsampler, frames):
    x = np.random.default_rng(1).standard_normal((2, frames)).astype(np.float32) * 0.1
    y = unet_upsampler(x)
    assert y.shape == (2, frames * 4)
    assert np.all(np.isfinite(y))


def test_chunked_equals_whole_signal(unet_upsampler):
    lr = _speechlike(3.0, 4000)
    chunked = unet_upsampler(lr[None])[0]
    with torch.no_grad():
        whole = unet_upsampler.net(torch.from_numpy(audio.spline(lr, 4))[None, None])[0, 0].numpy()
    edge = 2048  # the whole-signal pass has its own padding effects at the file edges
    assert np.max(np.abs(chunked[edge:-edge] - whole[edge:-edge])) < 1e-3


def test_no_click_at_seams(unet_upsampler):
    lr = _speechlike(3.0, 4000, seed=2)
    y = unet_upsampler(lr[None])[0]
    hop = unet_upsampler.chunk - 2 * unet_upsampler.margin - unet_upsampler.fade
    lead = unet_upsampler.margin + unet_upsampler.fade
    # Seams: where one chunk's weight ends and the next takes over, in output coordinates.
    seams = [
        k * hop + unet_upsampler.chunk - unet_upsampler.margin - lead for k in range(len(y) // hop)
    ]
    seams = [s for s in seams if 16 < s < len(y) - 16]
    diff = np.abs(np.diff(y))
    typical = np.median([diff[s - 200 : s + 200].sum() / 400 for s in seams])
    at_seams = np.array([diff[s - 8 : s + 8].sum() / 16 for s in seams])
    assert len(seams) > 5
    assert np.all(at_seams < 3 * typical)


@pytest.mark.parametrize(("context", "chunk"), [(0, 32768), (3456, 32768), (10368, 131072)])
def test_the_default_chunk_grows_with_how_far_the_net_reaches(context, chunk):
    """Most of each chunk is kept: the 16 kHz nets keep 32k chunks, the 48 kHz one gets larger."""
    net = torch.nn.Identity()
    net.context = context
    up = Upsampler(net, name="reach", input_rate=16000, scale=3, device="cpu")
    assert up.chunk == chunk
    assert up.chunk - 2 * up.margin - up.fade >= 0.75 * up.chunk


def test_progress_reaches_one(unet_upsampler):
    seen = []
    unet_upsampler(_speechlike(2.0, 4000)[None], progress=seen.append)
    assert seen and seen[-1] == pytest.approx(1.0) and seen == sorted(seen)


def test_spline_upsampler_any_rate():
    up = Upsampler.load("spline", input_rate=11025, scale=2)
    assert up.output_rate == 22050
    assert up(np.zeros((1, 100), np.float32)).shape == (1, 200)


def test_spline_takes_its_shipped_pairs_rate_by_default():
    """Beside each shipped pair: 8 -> 16 kHz at x2, 16 -> 48 kHz at x3, 4 -> 16 kHz at x4."""
    rates = {scale: Upsampler.load("spline", scale=scale).input_rate for scale in (2, 3, 4)}
    assert rates == {2: 8000, 3: 16000, 4: 4000}


def test_a_chain_runs_its_stages_in_order_with_one_progress():
    """x2 then x3: 8 kHz in, 48 kHz out, exactly six samples for each, progress 0 -> 1."""
    chain = Chain([Upsampler.load("spline", scale=2), Upsampler.load("spline", scale=3)])
    assert (chain.input_rate, chain.output_rate) == (8000, 48000)
    assert chain.names == ["spline", "spline"]
    seen = []
    x = _speechlike(1.0, 8000)[None]
    y = chain(x, progress=seen.append)
    assert y.shape == (1, 6 * x.shape[1])
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(y, audio.spline(audio.spline(x, 2), 3), atol=1e-6)


def test_unknown_pair_names_what_exists():
    with pytest.raises(LookupError, match="spline"):
        Upsampler.load(None, input_rate=12345, scale=3)


def test_cuda_refused_clearly_without_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CUDA"):
        Upsampler.load("spline", scale=4, device="cuda")
