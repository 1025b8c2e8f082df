"""Does the 16 -> 48 kHz net gain from size? Stage 1 of `recipes/spectral-x3.sh` with a larger
SpectralBWE (256 channels, 10 ConvNeXt blocks: about twice the shipped 2.7 M parameters), on the
same schedule, stopped early to compare the validation-patch LSD epoch by epoch with
`runs/spectral-x3/log.csv`:

    .venv/bin/python experiments/x3_capacity.py --stop-after 12 --out runs/spectral-x3-large

Any other `train` option may follow; the preset exists only here, not in the product.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model import train  # noqa: E402
from model.__main__ import main  # noqa: E402
from model.spectral import SpectralBWE  # noqa: E402

train.PRESETS["spectral-fb-large"] = (
    SpectralBWE,
    dict(n_fft=1536, hop=384, channels=256, blocks=10, kernel=7),
)

if __name__ == "__main__":
    stage1 = "--data data-fb --model spectral-fb-large --scale 3 --loss spectral --stft-weight 0.1"
    stage1 += " --mel-weight 1.0 --mel-over 2 --degrade 0.25 --lr 3e-4 --epochs 24"
    stage1 += " --steps-per-epoch 150 --select lsd"
    sys.exit(main(["train", *stage1.split(), *sys.argv[1:]]))
