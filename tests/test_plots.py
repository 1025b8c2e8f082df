"""model.plots: the spectrogram comparison keeps its size, panels, shared scale and markings."""

import io

import numpy as np
import pytest
from PIL import Image

from model import audio, plots


@pytest.fixture(scope="module")
def speech(speech_wav):
    x, rate = audio.load(speech_wav)
    return audio.to_mono(x), rate


def picture(png: bytes) -> np.ndarray:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def panel(image: np.ndarray, index: int, n_panels: int) -> np.ndarray:
    """The pixels inside panel `index`'s frame."""
    width = (plots.PANEL_W * n_panels - plots.LEFT - plots.RIGHT - plots.GAP * (n_panels - 1)) // (
        n_panels
    )
    x0 = plots.LEFT + index * (width + plots.GAP)
    return image[plots.TOP + 2 : plots.HEIGHT - plots.BOTTOM - 2, x0 + 2 : x0 + width - 2]


def brightness(pixels: np.ndarray) -> float:
    return float(pixels.mean())


@pytest.mark.parametrize("with_reference", [True, False])
def test_the_figure_keeps_its_size_one_panel_per_signal(speech, with_reference):
    x, rate = speech
    lowres = audio.lowres(x, 4)
    png = plots.spectrogram_comparison(x if with_reference else None, lowres, x, rate, rate // 4)
    n_panels = 3 if with_reference else 2
    image = picture(png)
    # 4.2 x 3.4 inches a panel at 90 dpi, as the matplotlib figure was.
    assert image.shape == (306, 378 * n_panels, 3)
    # Every panel shows speech: bright cells below 2 kHz, in every panel.
    for i in range(n_panels):
        low_band = panel(image, i, n_panels)[-40:]
        assert brightness(low_band) > 60


def test_the_low_res_panel_is_dark_above_its_nyquist_on_the_shared_scale(speech):
    x, rate = speech
    lowres = audio.lowres(x, 4)
    image = picture(plots.spectrogram_comparison(x, lowres, x, rate, rate // 4))
    original, low = panel(image, 0, 3), panel(image, 1, 3)
    top_quarter = slice(0, low.shape[0] // 4)  # 6-8 kHz
    assert brightness(low[top_quarter]) < 5  # magma's floor: the band the input lacks
    assert brightness(original[top_quarter]) > brightness(low[top_quarter]) + 20


def test_the_nyquist_and_a_detected_cutoff_are_marked(speech):
    x, rate = speech
    lowres = audio.lowres(x, 4)
    plain = picture(plots.spectrogram_comparison(None, lowres, x, rate, rate // 4))
    marked = picture(plots.spectrogram_comparison(None, lowres, x, rate, rate // 4, 1000.0))
    changed = np.argwhere(np.any(plain != marked, axis=2))
    rows = set(changed[:, 0].tolist())
    inner_h = plots.HEIGHT - plots.TOP - plots.BOTTOM
    one_khz = plots.TOP + inner_h - round(1.0 / 8.0 * inner_h)
    assert rows == {one_khz}  # only the dotted cut-off line was added, at 1 kHz
    assert np.all(marked[one_khz, changed[:, 1]] == [0, 255, 255])
    two_khz = plots.TOP + inner_h - round(2.0 / 8.0 * inner_h)
    dashes = np.all(plain[two_khz, plots.LEFT : plots.LEFT + 100] == 255, axis=1)
    assert 30 < dashes.sum() < 80  # the low-res Nyquist: white dashes, 4 on and 3 off


def test_full_band_output_is_drawn_to_24_khz_with_the_input_nyquist_at_8(speech):
    """16 -> 48 kHz: the axis runs to 24 kHz with a tick at the top, the dashes sit at 8 kHz."""
    x, rate = speech
    reference = audio.resample(x, rate, 48000)
    lowres = audio.lowres(reference, 3, rate=48000)
    image = picture(plots.spectrogram_comparison(reference, lowres, reference, 48000, 16000))
    assert image.shape == (306, 378 * 3, 3)
    inner_h = plots.HEIGHT - plots.TOP - plots.BOTTOM
    eight_khz = plots.TOP + inner_h - round(8.0 / 24.0 * inner_h)
    dashes = np.all(image[eight_khz, plots.LEFT : plots.LEFT + 100] == 255, axis=1)
    assert 30 < dashes.sum() < 80
    # Tick marks left of the first panel every 4 kHz, 24 kHz (the top edge) among them.
    ticks = [plots.TOP + inner_h - round(f / 24.0 * inner_h) for f in range(0, 25, 4)]
    tick_column = image[:, plots.LEFT - 4]
    assert all(tick_column[y].mean() < 128 for y in ticks)
    low = panel(image, 1, 3)
    above_input = slice(0, low.shape[0] * 2 // 3 - 2)  # 8-24 kHz: nothing in the input there
    assert brightness(low[above_input]) < 5
