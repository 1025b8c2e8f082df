"""What undoing decimate's low-pass gains, and costs, on validation patches under several low-passes.

Usage: .venv/bin/python scripts/boost_gate.py [--data data] [--checkpoint NAME ...]
       [--thresholds 4 8 100]

For each low-pass that can make the low-res input (the paper's `cheby8` and four others), prints
the median over 32 ms blocks of the ratio the gate judges by (the boost's level over the band
below, dB), then the mean per-patch SNR gain over spline of: spline plus `nets.PlausibleBoost` at
each threshold (100 dB: the boost always passes, i.e. the plain `nets.DecimationInverse`), the
same judged once per patch (`--whole`), and each checkpoint.
Patches are the 400 that `train` validates on, seen inside 1024 samples of their stream.
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from model import checkpoint, metrics, registry
from model.nets import PlausibleBoost
from model.train import crop, interpolate_windows, patch_stride, predict, stream_windows

FILTERS = ("cheby8", "sinc", "butter", "ellip", "bessel")


def median_ratio_db(x: np.ndarray) -> float:
    """Median over blocks (with sound in them) of the level ratio `PlausibleBoost` gates by."""
    gate = PlausibleBoost(4)
    with torch.no_grad():
        t = torch.from_numpy(x[:, None])
        ratio = gate.ratio_db(t, gate.inverse(t) - t)
    return float(ratio[gate.level(t) > 1e-5].median())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--checkpoint", nargs="*", default=[])
    parser.add_argument("--thresholds", nargs="*", type=float, default=[4.0, 8.0, 100.0])
    parser.add_argument(
        "--whole", nargs="*", type=float, default=[], help="thresholds judged per patch, not 32 ms"
    )
    args = parser.parse_args()
    val = np.load(args.data / "val_hr.npy", mmap_mode="r")
    idx = np.linspace(0, len(val) - 1, 400).astype(int)
    hr = val[idx].astype(np.float32)
    voiced = np.abs(hr).max(axis=1) > 1e-3  # as `validate`: silent patches have no SNR
    windows, _ = stream_windows(val, idx, patch_stride(args.data), 4)
    nets = {
        name: checkpoint.load(registry.checkpoint_path(name, None, 4))[0]
        for name in args.checkpoint
    }

    def gain(est: np.ndarray, base: np.ndarray) -> float:
        rows = zip(hr[voiced], est[voiced], base[voiced], strict=True)
        return float(np.mean([metrics.snr(r, e) - metrics.snr(r, b) for r, e, b in rows]))

    # A run's epoch file is labelled run@epoch: the whole path would not fit a column.
    labels = [n if "/" not in n else f"{Path(n).parent.parent.name}@{Path(n).stem}" for n in nets]
    gates = [(f"boost {t:g} dB", PlausibleBoost(4, t)) for t in args.thresholds]
    gates += [(f"per patch {t:g} dB", PlausibleBoost(4, t, block=None)) for t in args.whole]
    columns = ["median ratio dB"] + [name for name, _ in gates] + labels
    print(f"{len(idx)} validation patches, scale 4: SNR gain over spline, dB")
    print(f"{'low-pass':<10}" + "".join(f"{c:>24}" for c in columns))
    for kind in FILTERS:
        x = interpolate_windows(windows, 4, [kind] * len(idx), np.random.default_rng(0))
        spline = crop(x, hr.shape[1])
        cells = [median_ratio_db(x[voiced])]
        for _, gate in gates:
            with torch.no_grad():
                boost = gate(torch.from_numpy(x[:, None]))[:, 0].numpy()
            cells.append(gain(spline + crop(boost, hr.shape[1]), spline))
        for net in nets.values():
            cells.append(gain(crop(predict(net, x), hr.shape[1]), spline))
        print(f"{kind:<10}" + "".join(f"{c:+24.3f}" for c in cells))


if __name__ == "__main__":
    main()
