#!/usr/bin/env bash
# Issue 25's 16 -> 48 kHz net (x3): the time-frequency generator at 48 kHz ("spectral-fb": the
# shipped x4/x2 net's frames in time, 32 ms windows, 8 ms hop) trained from scratch on the
# full-band data of the `wide` corpus (voices whose band passes 14 kHz; 56 voices, 2.6 h), with
# the codecs wideband input goes through (G.722, MP3, noise) on a quarter of the inputs. The mel
# term weighs too much energy twice as dear as too little: the written band must not hiss.
# Resumes from runs/spectral-x3/state.pt when that exists.
set -euo pipefail
cd "$(dirname "$0")/../.."

[[ -f data-fb/manifest.json ]] ||
    .venv/bin/python -m model prepare --corpus wide --rate 48000 --out data-fb
.venv/bin/python -m model train --data data-fb --model spectral-fb --scale 3 --loss spectral \
    --stft-weight 0.1 --mel-weight 1.0 --mel-over 2 --degrade 0.25 --lr 3e-4 --epochs 24 \
    --steps-per-epoch 150 --select lsd --out runs/spectral-x3 "$@"

# Stage 2: from stage 1's best epoch, the light adversarial term (as the shipped x4/x2 nets'
# last stage) at a tenth of the learning rate, so the written band's fine structure is judged
# against real speech, not only its envelope.
[[ -f runs/spectral-x3-adv/state.pt ]] || mkdir -p runs/spectral-x3-adv
.venv/bin/python -m model train --data data-fb --model spectral-fb --scale 3 --loss spectral \
    --stft-weight 0.1 --mel-weight 1.0 --mel-over 2 --degrade 0.25 --lr 1e-4 --epochs 16 \
    --steps-per-epoch 150 --select lsd --adversarial 1.0 \
    --init runs/spectral-x3/best.safetensors --out runs/spectral-x3-adv "$@"

# Stage 1b: stage 1's loss and data, continued from its best epoch at a third of its learning
# rate (its validation LSD was still falling at epoch 24); the adversarial stage above did not help.
.venv/bin/python -m model train --data data-fb --model spectral-fb --scale 3 --loss spectral \
    --stft-weight 0.1 --mel-weight 1.0 --mel-over 2 --degrade 0.25 --lr 1e-4 --epochs 12 \
    --steps-per-epoch 150 --select lsd --init runs/spectral-x3/best.safetensors \
    --out runs/spectral-x3-b "$@"
