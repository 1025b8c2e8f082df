#!/usr/bin/env bash
# Issue 24's generator runs: the shipped x4 net (stage 3 with the light adversarial term, epoch
# 20: spectral-x4's weights before its level) trained on the `wide` corpus (77 voices, 6.1 h;
# G.722 now among the low-res degradations), with and without random recording chains
# (`--chain 0.5`: rooms, microphones, noise on the wideband clip before the low-res input is
# made): the augmentation ablation. Started in the first issue-24 session on the CPU, one thread
# each; their resumable state is committed in experiments/runs/<run>/ and this continues them.
# Epochs are chosen afterwards by the listener metrics on all twelve validation voices:
#   evaluate --checkpoint runs/<run>/epochs/NNN.safetensors --files data-wide/val_wavs \
#       --scale 4 --join 4 --voice-items 6 --out eval/<run>-eNNN
set -euo pipefail
cd "$(dirname "$0")/../.."

[[ -f data-wide/manifest.json ]] || .venv/bin/python -m model prepare --corpus wide --out data-wide
COMMON=(--data data-wide --model spectral --scale 4 --mix-scale 2 --loss spectral
    --stft-weight 0.1 --mel-weight 1.0 --mel-over 10 --degrade 0.25 --lr 1e-4 --epochs 40
    --steps-per-epoch 200 --select lsd --adversarial 1.0
    --init experiments/runs/spectral-s3-over10-g722-adv/epoch020.safetensors)
for run in spectral-wide-adv spectral-wide-chain-adv; do
    if [[ ! -f runs/$run/state.pt && -f experiments/runs/$run/state.pt ]]; then
        mkdir -p runs/$run && cp experiments/runs/$run/* runs/$run/
    fi
done
OMP_NUM_THREADS=1 .venv/bin/python -m model train "${COMMON[@]}" --out runs/spectral-wide-adv "$@" &
OMP_NUM_THREADS=1 .venv/bin/python -m model train "${COMMON[@]}" --chain 0.5 \
    --out runs/spectral-wide-chain-adv "$@" &
wait
