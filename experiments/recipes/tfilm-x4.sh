#!/usr/bin/env bash
# Reproduces model/checkpoints/tfilm-x4.safetensors (4 kHz -> 16 kHz, AudioTFiLMNet; the x4 default
# until spectral-x4):
# stage 1 (normalized MSE), two SNR fine-tunes, two speed-perturbed SNR fine-tunes each averaged
# over its later epochs, then ship. About 3.4 h on one CPU thread. Run logs of the shipped runs:
# experiments/runs/tfilm-x4*.csv (names in experiments/LOG.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" # the shipped runs had one CPU thread each

[[ -f data/manifest.json ]] || .venv/bin/python -m model prepare --corpus debian --out data

# Stage 1: normalized MSE + 0.005 x STFT, 16 epochs of 150 steps; kept epoch 9.
.venv/bin/python -m model train --data data --model tfilm --scale 4 --epochs 16 \
    --steps-per-epoch 150 --lr 1e-3 --stft-weight 0.005 --out runs/tfilm-x4

# Stage 2: per-patch SNR loss; the 36-epoch schedule was stopped after epoch 13 (kept: 13).
.venv/bin/python -m model train --data data --model tfilm --scale 4 --epochs 36 \
    --steps-per-epoch 150 --lr 3e-4 --loss snr --stft-weight 0.05 --select snr \
    --init runs/tfilm-x4/best.safetensors \
    --stop-after 13 --out runs/tfilm-x4-snr

# Stage 3: lower learning rate, stronger STFT term; kept epoch 9.
.venv/bin/python -m model train --data data --model tfilm --scale 4 --epochs 10 \
    --steps-per-epoch 150 --lr 1e-4 --loss snr --stft-weight 0.2 --select snr \
    --init runs/tfilm-x4-snr/best.safetensors --out runs/tfilm-x4-snr2

# Stage 4: speed perturbation on half the patches, 36 epochs; weight average of epochs 25-36.
.venv/bin/python -m model train --data data --model tfilm --scale 4 --epochs 36 \
    --steps-per-epoch 150 --lr 3e-4 --loss snr --stft-weight 0.2 --select snr --speed 0.5 \
    --init runs/tfilm-x4-snr2/best.safetensors --out runs/tfilm-x4-s3-speed
.venv/bin/python -m model average runs/tfilm-x4-s3-speed --first 25 --data data \
    --out runs/tfilm-x4-s3-speed-avg25

# Stage 5: half the learning rate, 24 epochs; weight average of epochs 13-24.
.venv/bin/python -m model train --data data --model tfilm --scale 4 --epochs 24 \
    --steps-per-epoch 150 --lr 1.5e-4 --loss snr --stft-weight 0.2 --select snr --speed 0.5 \
    --init runs/tfilm-x4-s3-speed-avg25/best.safetensors --out runs/tfilm-x4-s4-s05
.venv/bin/python -m model average runs/tfilm-x4-s4-s05 --first 13 --data data \
    --out runs/tfilm-x4-s4-s05-avg13

.venv/bin/python -m model ship runs/tfilm-x4-s4-s05-avg13 tfilm-x4   # not the default: spectral-x4 is
.venv/bin/python -m model evaluate --checkpoint tfilm-x4 --files data/val_wavs --scale 4
