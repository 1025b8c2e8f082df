"""Before/after spectrogram panels on one colour scale, as PNG bytes for the page and the CLI."""

from __future__ import annotations

import io

import numpy as np

N_FFT = 512
HOP = 128
MAX_COLUMNS = 1500


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
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    panels = []
    if reference is not None:
        panels.append(("original (reference)", _log_spectrogram(reference, rate, rate)))
    panels.append(
        (f"low-res input ({lowres_rate / 1000:g} kHz)", _log_spectrogram(lowres, lowres_rate, rate))
    )
    panels.append((f"super-resolved ({rate / 1000:g} kHz)", _log_spectrogram(output, rate, rate)))
    vmax = max(float(np.max(p)) for _, p in panels)
    vmin = vmax - 90
    duration = len(output) / rate
    fig = Figure(figsize=(4.2 * len(panels), 3.4), dpi=90, layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True)
    image = None
    for ax, (title, spec) in zip(np.atleast_1d(axes), panels, strict=True):
        image = ax.imshow(
            spec,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=vmin,
            vmax=vmax,
            extent=(0, duration, 0, rate / 2000),
            interpolation="nearest",
        )
        ax.axhline(lowres_rate / 2000, color="white", linestyle="--", linewidth=0.8)
        if cutoff_hz:
            ax.axhline(cutoff_hz / 1000, color="cyan", linestyle=":", linewidth=1.0)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("time (s)")
    np.atleast_1d(axes)[0].set_ylabel("frequency (kHz)")
    fig.colorbar(image, ax=axes, label="dB", shrink=0.9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
