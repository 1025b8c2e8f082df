#!/usr/bin/env bash
# spectral-x2, the x2 default: the time-frequency generator (model.spectral.SpectralBWE, one net
# for x4 and x2) at the end of stage 3 of recipes/spectral.sh, shipped for x2 with the band it
# writes 7 dB down: the loudest level tried at which WB-PESQ reaches sinc's on 24 items of the
# validation voices (experiments/LOG.md, "third session"). The weights are committed, so this
# ships them in seconds; without them it runs spectral.sh's stages first (hours on a CPU).
set -euo pipefail
cd "$(dirname "$0")/../.."

[[ -f data/manifest.json ]] || .venv/bin/python -m model prepare --corpus debian --out data
run=runs/spectral-s3-over10-g722
committed=experiments/runs/spectral-s3-over10-g722/epoch040.safetensors
if [[ ! -f $run/epochs/040.safetensors ]]; then
    if [[ -f $committed ]]; then
        mkdir -p $run/epochs && cp $committed $run/epochs/040.safetensors
    else
        bash experiments/recipes/spectral.sh
    fi
fi

# The level of the written band: a gain on the band above 4 kHz of the unshipped net's output.
.venv/bin/python -m model evaluate --checkpoint $run/epochs/040.safetensors --files data/val_wavs \
    --scale 2 --join 4 --limit 24 --no-perceptual --out eval/spectral-s3-e40-x2
.venv/bin/python experiments/hf_gain.py eval/spectral-s3-e40-x2 --scale 2 --gains=0,-3,-5,-7 \
    --visqol --items 24

mkdir -p runs/spectral-x2 && cp $run/epochs/040.safetensors runs/spectral-x2/best.safetensors
.venv/bin/python -m model ship runs/spectral-x2 spectral-x2 --scale 2 --written-gain-db -7 --default
.venv/bin/python -m model evaluate --checkpoint spectral-x2 --files data/val_wavs --scale 2 \
    --join 4 --limit 48
.venv/bin/python -m model evaluate --checkpoint spectral-x2 --files data/val_wavs --scale 2
.venv/bin/python -m model evaluate --checkpoint spectral-x2 --files data/val_wavs --scale 2 \
    --filter sinc
