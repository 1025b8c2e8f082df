#!/usr/bin/env bash
# Reproduces model/checkpoints/audiounet-x2.safetensors (8 kHz -> 16 kHz, AudioUNet; the x2
# default until spectral-x2): stage 1 (normalized MSE), one SNR fine-tune, then ship. About 2.1 h
# on one CPU thread. Run logs of the shipped runs: experiments/runs/audiounet-x2.csv and audiounet-x2-snr.csv.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" # the shipped runs had one CPU thread each

[[ -f data/manifest.json ]] || .venv/bin/python -m model prepare --corpus debian --out data

# Stage 1: normalized MSE + 0.005 x STFT, 16 epochs of 150 steps; kept epoch 15.
.venv/bin/python -m model train --data data --model audiounet --scale 2 --epochs 16 \
    --steps-per-epoch 150 --lr 1e-3 --stft-weight 0.005 --out runs/audiounet-x2

# Stage 2: per-patch SNR loss, 24 epochs; kept epoch 24.
.venv/bin/python -m model train --data data --model audiounet --scale 2 --epochs 24 \
    --steps-per-epoch 150 --lr 3e-4 --loss snr --stft-weight 0.05 --select snr \
    --init runs/audiounet-x2/best.safetensors --out runs/audiounet-x2-snr-a

.venv/bin/python -m model ship runs/audiounet-x2-snr-a audiounet-x2   # not the default: spectral-x2 is
.venv/bin/python -m model evaluate --checkpoint audiounet-x2 --files data/val_wavs --scale 2
