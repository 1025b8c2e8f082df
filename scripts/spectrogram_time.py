"""Time the spectrogram comparison PNG of 10 s of speech (3 panels): median of 20 draws.

.venv/bin/python scripts/spectrogram_time.py
"""

import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from model import audio, plots  # noqa: E402


def main() -> None:
    x, rate = audio.load(REPO / "tests" / "data" / "speech_16k.wav")
    x = np.tile(audio.to_mono(x), 2)[: 10 * rate]  # 10 s
    lowres = audio.lowres(x, 4)
    plots.spectrogram_comparison(x, lowres, x, rate, rate // 4)  # first call: imports, fonts
    times = []
    for _ in range(20):
        started = time.perf_counter()
        plots.spectrogram_comparison(x, lowres, x, rate, rate // 4)
        times.append(time.perf_counter() - started)
    print(
        f"10 s, 3 panels: median {1000 * np.median(times):.1f} ms, min {1000 * min(times):.1f} ms"
    )


if __name__ == "__main__":
    main()
