"""Before/after spectrogram panels on one colour scale, as PNG bytes for the page and the CLI.

Drawn straight into pixels (a colormap lookup on the dB array, Pillow for the frame and the
labels) rather than through pyplot: a figure costs pyplot about half a second, this about 20 ms,
and a person waits for it after every Predict.
"""

from __future__ import annotations

import functools
import io

import numpy as np

N_FFT = 512
HOP = 128
MAX_COLUMNS = 1500
DYNAMIC_RANGE_DB = 90.0

# Geometry in pixels: each panel 378 x 306 as the former 4.2 x 3.4 inch figure at 90 dpi.
PANEL_W, HEIGHT = 378, 306
LEFT, RIGHT, TOP, BOTTOM = 46, 86, 22, 44  # room for labels, the colour bar, titles, time axis
GAP = 16  # between panels
FONT_PX = 12
# A palette image (one byte a pixel) encodes about three times faster than RGB: magma in 240
# steps, then ink from white to black in 8 (anti-aliased text), then the cut-off's cyan.
MAGMA_STEPS, INK_STEPS = 240, 8
WHITE, BLACK, CYAN = MAGMA_STEPS, MAGMA_STEPS + INK_STEPS - 1, MAGMA_STEPS + INK_STEPS


def _log_spectrogram(x: np.ndarray, rate: int, out_rate: int) -> np.ndarray:
    """dB magnitude [bins x frames] with bins on the `out_rate` frequency grid (0..out_rate/2).

    A low-res signal is analysed at its own rate and padded with silence above its Nyquist, so all
    panels share one frequency axis and the missing band shows as missing.
    """
    from scipy import signal

    n_fft = max(64, int(N_FFT * rate / out_rate))
    hop = max(16, int(HOP * rate / out_rate))
    _, _, z = signal.stft(
        np.asarray(x, dtype=np.float32),
        fs=rate,
        nperseg=n_fft,
        noverlap=n_fft - hop,
        boundary=None,
        padded=False,
    )
    db = 20 * np.log10(np.abs(z) + 1e-6)
    full_bins = N_FFT // 2 + 1
    if db.shape[0] < full_bins:
        db = np.vstack([db, np.full((full_bins - db.shape[0], db.shape[1]), -120.0)])
    db = db[:full_bins]
    if db.shape[1] > MAX_COLUMNS:
        # Long files: max-pool frames so the PNG stays small and quick whatever the length.
        k = int(np.ceil(db.shape[1] / MAX_COLUMNS))
        db = np.pad(db, ((0, 0), (0, (-db.shape[1]) % k)), constant_values=-120.0)
        db = db.reshape(db.shape[0], -1, k).max(axis=2)
    return db


@functools.cache
def _palette() -> list[int]:
    """matplotlib's magma in MAGMA_STEPS colours, the ink ramp, cyan: a flat RGB list."""
    from matplotlib import colormaps

    magma = colormaps["magma"](np.linspace(0, 1, MAGMA_STEPS))[:, :3] * 255
    ink = np.linspace(255, 0, INK_STEPS)[:, None].repeat(3, axis=1)
    colours = np.vstack([magma, ink, [[0, 255, 255]]]).round().astype(np.uint8)
    return colours.reshape(-1).tolist()


@functools.cache
def _font(size: int = FONT_PX):
    """DejaVu Sans, the face the figures always had (it ships with matplotlib)."""
    from pathlib import Path

    import matplotlib
    from PIL import ImageFont

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    return ImageFont.truetype(str(path), size) if path.exists() else ImageFont.load_default(size)


def _colour(db: np.ndarray, vmin: float, vmax: float, width: int, height: int) -> np.ndarray:
    """[bins x frames] dB -> palette indices uint8 [height x width], low frequencies at the
    bottom, nearest neighbour in both directions (each STFT cell stays a crisp block)."""
    rows = (np.arange(height)[::-1] * db.shape[0] // height).clip(0, db.shape[0] - 1)
    cols = (np.arange(width) * db.shape[1] // width).clip(0, db.shape[1] - 1)
    level = (db[rows][:, cols] - vmin) / (vmax - vmin)
    return (level.clip(0, 1) * (MAGMA_STEPS - 1)).astype(np.uint8)


def _nice_step(span: float, most: int) -> float:
    """A tick step of 1, 2 or 5 x 10^k giving at most `most` intervals over `span`."""
    if span <= 0:
        return 1.0
    for power in range(-3, 6):
        for mantissa in (1, 2, 5):
            step = mantissa * 10.0**power
            if span / step <= most:
                return step
    return 10.0**6


def _frequency_step(top_khz: float) -> float:
    """A kHz tick step that ends on the top of the axis when one of 1, 2, 4 or 5 kHz does so in at
    most 8 intervals (8 kHz: every 1 kHz; 24 kHz: every 4 kHz, the input's 8 kHz among them);
    otherwise a 1-2-5 step (22.05 kHz: every 5 kHz)."""
    for step in (1.0, 2.0, 4.0, 5.0):
        if top_khz / step <= 8 and (top_khz / step).is_integer():
            return step
    return _nice_step(top_khz, 8)


def _label(value: float) -> str:
    return f"{value:g}"


def _dashed(canvas: np.ndarray, y: int, x0: int, x1: int, colour: int, dash: int, gap: int):
    row = canvas[y, x0:x1]
    for x in range(0, len(row), dash + gap):
        row[x : x + dash] = colour


def spectrogram_comparison(
    reference: np.ndarray | None,
    lowres: np.ndarray,
    output: np.ndarray,
    rate: int,
    lowres_rate: int,
    cutoff_hz: float | None = None,
) -> bytes:
    """PNG of [reference,] low-res and super-resolved spectrograms, frequency in kHz, the low-res
    Nyquist marked with a dashed line and a detected cut-off `cutoff_hz` with a dotted one."""
    from PIL import Image

    panels = []
    if reference is not None:
        panels.append(("original (reference)", _log_spectrogram(reference, rate, rate)))
    panels.append(
        (f"low-res input ({lowres_rate / 1000:g} kHz)", _log_spectrogram(lowres, lowres_rate, rate))
    )
    panels.append((f"super-resolved ({rate / 1000:g} kHz)", _log_spectrogram(output, rate, rate)))
    vmax = max(float(np.max(p)) for _, p in panels)
    layout = _Layout(len(panels), len(output) / rate, rate / 2000, vmax - DYNAMIC_RANGE_DB, vmax)

    canvas = np.full((HEIGHT, layout.width), WHITE, dtype=np.uint8)
    for x0, (_, db) in zip(layout.lefts, panels, strict=True):
        x1 = x0 + layout.inner_w
        canvas[TOP : TOP + layout.inner_h, x0:x1] = _colour(
            db, layout.vmin, layout.vmax, layout.inner_w, layout.inner_h
        )
        _dashed(canvas, layout.y_of(lowres_rate / 2000), x0, x1, WHITE, 4, 3)
        if cutoff_hz:
            _dashed(canvas, layout.y_of(cutoff_hz / 1000), x0, x1, CYAN, 1, 2)
    ramp = np.linspace(MAGMA_STEPS - 1, 0, layout.bar_bottom - layout.bar_top).astype(np.uint8)
    canvas[layout.bar_top : layout.bar_bottom, layout.bar_x : layout.bar_x + 12] = ramp[:, None]
    ink = _ink(layout, [title for title, _ in panels])
    inked = ink > 0
    canvas[inked] = WHITE + (ink[inked].astype(np.int32) * (INK_STEPS - 1) + 254) // 255

    image = Image.fromarray(canvas, mode="P")
    image.putpalette(_palette())
    buf = io.BytesIO()
    # Fast zlib level: the PNG is drawn for every job and read once.
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class _Layout:
    """Where everything goes, in pixels, for `n` panels of `duration` s up to `top_khz`."""

    def __init__(self, n: int, duration: float, top_khz: float, vmin: float, vmax: float):
        self.duration, self.top_khz, self.vmin, self.vmax = duration, top_khz, vmin, vmax
        self.width = PANEL_W * n
        self.inner_w = (self.width - LEFT - RIGHT - GAP * (n - 1)) // n
        self.inner_h = HEIGHT - TOP - BOTTOM
        self.lefts = [LEFT + i * (self.inner_w + GAP) for i in range(n)]
        self.bar_x, self.bar_top = self.width - RIGHT + 24, TOP + 10
        self.bar_bottom = TOP + self.inner_h - 10

    def y_of(self, khz: float) -> int:
        return TOP + self.inner_h - round(khz / self.top_khz * self.inner_h)

    def x_of(self, x0: int, seconds: float) -> int:
        return x0 + (round(seconds / self.duration * (self.inner_w - 1)) if self.duration else 0)


def _ink(layout: _Layout, titles: list[str]) -> np.ndarray:
    """Frames, ticks and text as an anti-aliased ink mask uint8 [HEIGHT x width] (0: none)."""
    from PIL import Image, ImageDraw

    mask = Image.new("L", (layout.width, HEIGHT), 0)
    draw, font = ImageDraw.Draw(mask), _font()
    bottom = TOP + layout.inner_h
    x_step, y_step = _nice_step(layout.duration, 6), _frequency_step(layout.top_khz)
    for i, (x0, title) in enumerate(zip(layout.lefts, titles, strict=True)):
        x1 = x0 + layout.inner_w
        draw.rectangle([x0 - 1, TOP - 1, x1, bottom], outline=255)
        draw.text(((x0 + x1) / 2, TOP - 4), title, fill=255, font=font, anchor="ms")
        for t in np.arange(0, layout.duration + 1e-9, x_step):
            x = layout.x_of(x0, t)
            draw.line([(x, bottom), (x, bottom + 4)], fill=255)
            draw.text((x, bottom + 6), _label(t), fill=255, font=font, anchor="mt")
        draw.text(((x0 + x1) / 2, HEIGHT - 6), "time (s)", fill=255, font=font, anchor="md")
        for f in np.arange(0, layout.top_khz + 1e-9, y_step):
            y = layout.y_of(f)
            draw.line([(x0 - 5, y), (x0 - 1, y)], fill=255)
            if i == 0:
                draw.text((x0 - 7, y), _label(f), fill=255, font=font, anchor="rm")
    label = Image.new("L", (layout.inner_h, FONT_PX + 4), 0)
    ImageDraw.Draw(label).text(
        (layout.inner_h / 2, 0), "frequency (kHz)", fill=255, font=font, anchor="ma"
    )
    mask.paste(label.rotate(90, expand=True), (2, TOP))

    bar_x, bar_top, bar_bottom = layout.bar_x, layout.bar_top, layout.bar_bottom
    draw.rectangle([bar_x - 1, bar_top - 1, bar_x + 12, bar_bottom], outline=255)
    span = layout.vmax - layout.vmin
    for level in np.arange(np.ceil(layout.vmin / 20) * 20, layout.vmax + 1e-9, 20):
        y = bar_bottom - round((level - layout.vmin) / span * (bar_bottom - bar_top))
        draw.line([(bar_x + 12, y), (bar_x + 16, y)], fill=255)
        draw.text((bar_x + 18, y), f"{level:.0f}", fill=255, font=font, anchor="lm")
    draw.text((bar_x + 6, bar_top - 4), "dB", fill=255, font=font, anchor="ms")
    return np.asarray(mask)
