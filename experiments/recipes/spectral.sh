#!/usr/bin/env bash
# The time-frequency generator (model.spectral.SpectralBWE, preset "spectral": 2.2 M parameters,
# ConvNeXt blocks on a 512-point STFT), one net for x4 and x2. In progress (issue 12): not
# shipped yet. Stage 1 is done; the two stage-2 runs (with and without the adversarial term, the
# ablation) continue from the state committed in experiments/runs/ when this checkout has none.
# experiments/LOG.md has the results so far.
set -euo pipefail
cd "$(dirname "$0")/../.."

[[ -f data/manifest.json ]] || .venv/bin/python -m model prepare --corpus debian --out data

# Stage 1 (done: 21 of 60 planned epochs, kept epoch 11 by validation LSD; its weights are in
# experiments/runs/spectral-s1/best.safetensors): log magnitude + 0.3 x anti-wrapping phase +
# 0.1 x multi-resolution STFT; every other batch at x2; a quarter of the inputs through the
# telephone band, MP3 or noise; 250 steps an epoch, cosine from 5e-4.
if [[ ! -f runs/spectral-s1/best.safetensors ]]; then
    if [[ -f experiments/runs/spectral-s1/best.safetensors ]]; then
        mkdir -p runs/spectral-s1 && cp experiments/runs/spectral-s1/best.safetensors runs/spectral-s1/
    else
        .venv/bin/python -m model train --data data --out runs/spectral-s1 --model spectral \
            --scale 4 --mix-scale 2 --loss spectral --stft-weight 0.1 --degrade 0.25 --lr 5e-4 \
            --epochs 60 --steps-per-epoch 250 --select lsd --stop-after 21
    fi
fi

# Stage 2: + log mel-band energies (weight 1), from stage 1's best, 40 epochs of 200 steps at
# 2e-4; with and without the light adversarial term. Each resumes where its state stopped.
COMMON=(--data data --model spectral --scale 4 --mix-scale 2 --loss spectral --stft-weight 0.1
    --mel-weight 1.0 --degrade 0.25 --lr 2e-4 --epochs 40 --steps-per-epoch 200 --select lsd
    --init runs/spectral-s1/best.safetensors)
for run in spectral-s2-mel spectral-s2-mel-adv; do
    if [[ ! -f runs/$run/state.pt && -f experiments/runs/$run/state.pt ]]; then
        mkdir -p runs/$run && cp experiments/runs/$run/* runs/$run/
    fi
done
OMP_NUM_THREADS=1 .venv/bin/python -m model train "${COMMON[@]}" --out runs/spectral-s2-mel &
OMP_NUM_THREADS=1 .venv/bin/python -m model train "${COMMON[@]}" --adversarial 1.0 \
    --out runs/spectral-s2-mel-adv &
wait

for run in spectral-s2-mel spectral-s2-mel-adv; do
    .venv/bin/python -m model evaluate --checkpoint runs/$run/best.safetensors \
        --files data/val_wavs --scale 4 --join 4 --limit 48
done
