#!/usr/bin/env bash
# spectral-x4, the x4 default: the time-frequency generator (model.spectral.SpectralBWE, one net
# for x4 and x2) after 4,000 steps of stage 3 with the light adversarial term
# (recipes/spectral.sh, run spectral-s3-over10-g722-adv, epoch 20), shipped for x4 with the band
# it writes 12 dB down: the loudest level tried (-4, -8, -10, -12 dB, 24 items of the validation
# voices) at which WB-PESQ reaches sinc's, the rule that chose spectral-x2's level
# (experiments/LOG.md, "fourth session"). The weights are committed, so this ships them in
# seconds; without them it runs spectral.sh's stages first (hours on a CPU).
set -euo pipefail
cd "$(dirname "$0")/../.."

[[ -f data/manifest.json ]] || .venv/bin/python -m model prepare --corpus debian --out data
run=runs/spectral-s3-over10-g722-adv
committed=experiments/runs/spectral-s3-over10-g722-adv/epoch020.safetensors
if [[ ! -f $run/epochs/020.safetensors ]]; then
    if [[ -f $committed ]]; then
        mkdir -p $run/epochs && cp $committed $run/epochs/020.safetensors
    else
        bash experiments/recipes/spectral.sh
    fi
fi

.venv/bin/python -m model evaluate --checkpoint $run/epochs/020.safetensors --files data/val_wavs \
    --scale 4 --join 4 --limit 24 --no-perceptual --out eval/adv-e20
.venv/bin/python experiments/hf_gain.py eval/adv-e20 --gains=-4,-8,-10,-12 --visqol --items 24

mkdir -p runs/spectral-x4 && cp $run/epochs/020.safetensors runs/spectral-x4/best.safetensors
.venv/bin/python -m model ship runs/spectral-x4 spectral-x4 --scale 4 --written-gain-db -12 --default
.venv/bin/python -m model evaluate --checkpoint spectral-x4 --files data/val_wavs --scale 4 \
    --join 4 --limit 48
.venv/bin/python -m model evaluate --checkpoint spectral-x4 --files data/val_wavs --scale 4 \
    --no-perceptual
.venv/bin/python -m model evaluate --checkpoint spectral-x4 --files data/val_wavs --scale 4 \
    --no-perceptual --filter sinc
