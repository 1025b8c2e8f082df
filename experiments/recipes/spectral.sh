#!/usr/bin/env bash
# The time-frequency generator (model.spectral.SpectralBWE, preset "spectral": 2.2 M parameters,
# ConvNeXt blocks on a 512-point STFT), one net for x4 and x2. Stage 3's epoch 40 ships for x2
# as spectral-x2 (recipes/spectral-x2.sh); the adversarial stage 3's epoch 20 ships for x4 as
# spectral-x4 (recipes/spectral-x4.sh).
# Stages 1-3 are done, their weights committed in experiments/runs/; experiments/LOG.md has the
# results.
set -euo pipefail
cd "$(dirname "$0")/../.."

[[ -f data/manifest.json ]] || .venv/bin/python -m model prepare --corpus debian --out data
# + Asterisk's G.722 prompts for training (validation unchanged): the current stage-2 data.
[[ -f data-g722/manifest.json ]] ||
    .venv/bin/python -m model prepare --corpus debian+g722 --out data-g722

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
# 2e-4. The current line (second session): too much band energy 10 x dearer than too little
# (--mel-over 10) with the G.722 prompts. It ran its whole schedule; its weights at epochs 16
# and 40 are in experiments/runs/spectral-s2-mel-over10-g722/ (a next stage starts from
# epoch040.safetensors with --init). This reruns it from stage 1 (about an hour on one CPU thread).
COMMON=(--model spectral --scale 4 --mix-scale 2 --loss spectral --stft-weight 0.1
    --mel-weight 1.0 --degrade 0.25 --lr 2e-4 --epochs 40 --steps-per-epoch 200 --select lsd
    --init runs/spectral-s1/best.safetensors)
run=spectral-s2-mel-over10-g722
.venv/bin/python -m model train --data data-g722 "${COMMON[@]}" --mel-over 10 --out runs/$run
.venv/bin/python -m model evaluate --checkpoint runs/$run/epochs/040.safetensors \
    --files data/val_wavs --scale 4 --join 4 --limit 24 --out eval/$run-e40

# Stage 3 (end of the second session; about level with stage 2, LOG.md): the same loss and data
# from stage 2's epoch 40, at 1e-4; its epoch-40 weights are in experiments/runs/. Reruns it
# (or resumes a state left in runs/).
run=spectral-s3-over10-g722
.venv/bin/python -m model train --data data-g722 --model spectral --scale 4 --mix-scale 2 \
    --loss spectral --stft-weight 0.1 --mel-weight 1.0 --mel-over 10 --degrade 0.25 --lr 1e-4 \
    --epochs 40 --steps-per-epoch 200 --select lsd \
    --init experiments/runs/spectral-s2-mel-over10-g722/epoch040.safetensors --out runs/$run

# Stage 3 with the light adversarial term (third session; the ablation of the current line:
# the same as stage 3 plus --adversarial 1.0). Resumes from the state committed in
# experiments/runs/ when this checkout has none.
run=spectral-s3-over10-g722-adv
if [[ ! -f runs/$run/state.pt && -f experiments/runs/$run/state.pt ]]; then
    mkdir -p runs/$run && cp experiments/runs/$run/* runs/$run/
fi
.venv/bin/python -m model train --data data-g722 --model spectral --scale 4 --mix-scale 2 \
    --loss spectral --stft-weight 0.1 --mel-weight 1.0 --mel-over 10 --degrade 0.25 --lr 1e-4 \
    --epochs 40 --steps-per-epoch 200 --select lsd --adversarial 1.0 \
    --init experiments/runs/spectral-s2-mel-over10-g722/epoch040.safetensors --out runs/$run

# The first session's stage 2 (the ablation; state in experiments/runs/): with and without the
# light adversarial term, on the Debian voices alone. `spectral.sh ablation` continues them.
[[ "${1:-}" == ablation ]] || exit 0
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
