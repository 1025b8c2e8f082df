#!/usr/bin/env bash
# Reproduces model/checkpoints/audiounet-x4.safetensors (4 kHz -> 16 kHz, AudioUNet, not the
# default): stage 1 (normalized MSE), one SNR fine-tune, then ship. About 1.8 h on one CPU thread.
# Run logs of the shipped runs: experiments/runs/audiounet-x4.csv and audiounet-x4-snr.csv.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" # the shipped runs had one CPU thread each

[[ -f data/manifest.json ]] || .venv/bin/python -m model prepare --corpus debian --out data

# Stage 1: normalized MSE + 0.005 x STFT, 16 epochs of 150 steps; kept epoch 16.
.venv/bin/python -m model train --data data --model audiounet --scale 4 --epochs 16 \
    --steps-per-epoch 150 --lr 1e-3 --stft-weight 0.005 --out runs/audiounet-x4

# Stage 2: per-patch SNR loss; the 36-epoch schedule stopped (on time) after epoch 26; kept 25.
.venv/bin/python -m model train --data data --model audiounet --scale 4 --epochs 36 \
    --steps-per-epoch 150 --lr 3e-4 --loss snr --stft-weight 0.05 --select snr \
    --init runs/audiounet-x4/best.safetensors \
    --stop-after 26 --out runs/audiounet-x4-snr

.venv/bin/python -m model ship runs/audiounet-x4-snr audiounet-x4
.venv/bin/python -m model evaluate --checkpoint audiounet-x4 --files data/val_wavs --scale 4
