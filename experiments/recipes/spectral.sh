#!/usr/bin/env bash
# The time-frequency generator (model.spectral.SpectralBWE, preset "spectral": 2.2 M parameters,
# ConvNeXt blocks on a 512-point STFT) for x4 and x2 at once. In progress: stage 1 is being
# trained across sessions; its resumable state lives in experiments/runs/spectral-s1/ and this
# script continues it from there. Stage 2 (the adversarial term, and its ablation) comes after.
set -euo pipefail
cd "$(dirname "$0")/../.."

[[ -f data/manifest.json ]] || .venv/bin/python -m model prepare --corpus debian --out data

# Resume from the committed state (weights, bfloat16 Adam moments, epoch, best merit) if this
# checkout has no run of its own yet.
if [[ ! -f runs/spectral-s1/state.pt && -f experiments/runs/spectral-s1/state.pt ]]; then
    mkdir -p runs/spectral-s1
    cp experiments/runs/spectral-s1/{state.pt,optimizer.pt,log.csv,best.safetensors} runs/spectral-s1/
fi

# Stage 1: log magnitude + 0.3 x anti-wrapping phase + 0.1 x multi-resolution STFT; every other
# batch at x2 (one net, two input rates); a quarter of the low-res inputs through the telephone
# band with mu-law, a 24 kbit/s MP3 or added noise; 60 epochs of 250 steps, cosine from 5e-4;
# the epoch with the lowest validation LSD (x4, the paper's low-pass) is kept.
.venv/bin/python -m model train --data data --out runs/spectral-s1 --model spectral --scale 4 \
    --mix-scale 2 --loss spectral --stft-weight 0.1 --degrade 0.25 --lr 5e-4 --epochs 60 \
    --steps-per-epoch 250 --select lsd

.venv/bin/python -m model evaluate --checkpoint runs/spectral-s1/best.safetensors \
    --files data/val_wavs --scale 4 --join 4 --limit 48
