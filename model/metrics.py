"""Quality metrics: SNR and log-spectral distance (LSD, LSD-HF) as the AP-BWE evaluation defines
them, the written band's level against the original's, and what listeners hear (ViSQOL, PESQ,
DNSMOS, DistillMOS)."""

from __future__ import annotations

import sys
import types

import numpy as np

# AP-BWE's cal_metrics.py takes one STFT for every rate, 16 kHz and 48 kHz output alike.
N_FFT = 2048
HOP = 512


def _match(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(ref, dtype=np.float64).reshape(-1)
    est = np.asarray(est, dtype=np.float64).reshape(-1)
    n = min(len(ref), len(est))
    return ref[:n], est[:n]


def snr(ref: np.ndarray, est: np.ndarray) -> float:
    """10 log10(sum ref^2 / sum (ref - est)^2) in dB, over the whole file."""
    ref, est = _match(ref, est)
    noise = np.sum((ref - est) ** 2)
    power = np.sum(ref**2)
    return float(10 * np.log10((power + 1e-20) / (noise + 1e-20)))


def stft(x: np.ndarray) -> np.ndarray:
    """Complex STFT: [frames x bins], n_fft 2048, hop 512, periodic Hann.

    Frames are centred with reflect padding of n_fft // 2 on each side (torch.stft(center=True)).
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    pad = N_FFT // 2
    mode = "reflect" if len(x) > pad else "constant"
    x = np.pad(x, pad, mode=mode)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    n_frames = 1 + (len(x) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames)[:, None]
    return np.fft.rfft(x[idx] * window, axis=-1)


def power_spectrogram(x: np.ndarray) -> np.ndarray:
    """|STFT|^2 (`stft`): [frames x bins]."""
    return np.abs(stft(x)) ** 2


def log_power_spectrogram(x: np.ndarray) -> np.ndarray:
    """log10 of |STFT|^2 clamped at 1e-8: [frames x bins] (`power_spectrogram`)."""
    return np.log10(np.maximum(power_spectrogram(x), 1e-8))


def _lsd_bins(ref: np.ndarray, est: np.ndarray, first_bin: int) -> float:
    ref, est = _match(ref, est)
    diff = log_power_spectrogram(ref)[:, first_bin:] - log_power_spectrogram(est)[:, first_bin:]
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=1))))


def lsd(ref: np.ndarray, est: np.ndarray) -> float:
    """RMS over frequency of the log10-power difference, mean over frames (one file)."""
    return _lsd_bins(ref, est, 0)


def hf_first_bin(scale: int) -> int:
    """First STFT bin strictly above the low-res Nyquist (rate / 2 / scale)."""
    return (N_FFT // 2) // scale + 1


def lsd_hf(ref: np.ndarray, est: np.ndarray, scale: int) -> float:
    """LSD over the bins above the low-res Nyquist only: the band the model has to invent."""
    return _lsd_bins(ref, est, hf_first_bin(scale))


def score(ref: np.ndarray, est: np.ndarray, scale: int) -> dict[str, float]:
    """{"snr", "lsd", "lsd_hf"} of one estimate against its reference."""
    return {"snr": snr(ref, est), "lsd": lsd(ref, est), "lsd_hf": lsd_hf(ref, est, scale)}


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each score over the files (or patches) that have it: one row of a validation
    table."""
    keys = dict.fromkeys(key for row in rows for key in row)
    return {key: float(np.mean([row[key] for row in rows if key in row])) for key in keys}


# ---------------------------------------------------------------- the written band's level
BAND_WIDTH_HZ = 1000.0


def band_power(
    x: np.ndarray, rate: int, low_hz: float, width_hz: float = BAND_WIDTH_HZ
) -> np.ndarray:
    """Power of `x` in bands `width_hz` wide from `low_hz` up to the Nyquist, summed over every
    STFT frame (the long-term spectrum, unnormalised): [bands]. The Nyquist bin joins the top band;
    a top band cut short by the Nyquist is kept, narrower."""
    starts = np.arange(low_hz, rate / 2, width_hz)
    freqs = np.arange(N_FFT // 2 + 1) * rate / N_FFT
    above = freqs >= low_hz
    band = np.minimum(((freqs[above] - low_hz) // width_hz).astype(int), len(starts) - 1)
    per_bin = power_spectrogram(x).sum(axis=0)[above]
    return np.bincount(band, weights=per_bin, minlength=len(starts))


def level_db(ref_power: np.ndarray, est_power: np.ndarray) -> np.ndarray:
    """10 log10(est / ref) per band: summed band powers of several items give the corpus's
    long-term level, one item's its own."""
    return 10 * np.log10((np.asarray(est_power) + 1e-20) / (np.asarray(ref_power) + 1e-20))


def band_levels_db(
    ref: np.ndarray, est: np.ndarray, rate: int, low_hz: float, width_hz: float = BAND_WIDTH_HZ
) -> np.ndarray:
    """The level of `est` against `ref` in each band from `low_hz` up (`band_power`), in dB:
    0 where the written band is as loud as the original's, negative where it is quieter. [bands]"""
    ref, est = _match(ref, est)
    return level_db(
        band_power(ref, rate, low_hz, width_hz), band_power(est, rate, low_hz, width_hz)
    )


# ---------------------------------------------------------------- what listeners hear
# ViSQOL, PESQ and DNSMOS come from the `perceptual` extra, DistillMOS from its own step in the
# Makefile (`make install` installs both); they are imported on first use so the product path
# never pays for them.

PERCEPTUAL_RATE = 16000  # all four are defined on 16 kHz wideband speech
FULLBAND_RATE = 48000  # ViSQOL's audio mode
# Audio mode compares 30-frame patches (80 ms windows, 20 ms apart) from the 15th frame on: 45
# frames, 0.96 s, is the shortest audio it scores.
VISQOL_AUDIO_MIN_S = 0.96


def lowband_snr(
    ref: np.ndarray, est: np.ndarray, input_rate: int, rate: int = PERCEPTUAL_RATE
) -> float:
    """SNR of output and reference both low-passed at 0.9 x the input's Nyquist: whether what the
    input already had is kept (zero-phase order-8 Butterworth, so nothing is shifted)."""
    from scipy import signal

    ref, est = _match(ref, est)
    sos = signal.butter(8, 0.9 * input_rate / 2, fs=rate, output="sos")
    return snr(signal.sosfiltfilt(sos, ref), signal.sosfiltfilt(sos, est))


def _visqol_api(mode: str = "speech"):
    if mode not in _VISQOL:
        from visqol import VisqolApi

        api = VisqolApi()
        if mode == "speech":
            # The lattice mapper, as ViSQOL v3's own speech default.
            api.create(mode="speech", use_lattice_model=True)
        else:
            # 32 gammatone bands from 50 Hz to the Nyquist and the bundled SVR mapper
            # (libsvm_nu_svr_model.txt), as AP-BWE's cal_visqol_48k.py scores 48 kHz output.
            api.create(mode="audio")
        _VISQOL[mode] = api
    return _VISQOL[mode]


_VISQOL: dict = {}


def visqol(ref: np.ndarray, est: np.ndarray, rate: int = PERCEPTUAL_RATE) -> float:
    """ViSQOL v3 MOS-LQO (speech mode, lattice mapper) of `est` against `ref`, 1..5."""
    ref, est = _match(ref, est)
    return float(_visqol_api().measure_from_arrays(ref, est, rate).moslqo)


def visqol_audio(ref: np.ndarray, est: np.ndarray, rate: int = FULLBAND_RATE) -> float:
    """ViSQOL v3 MOS-LQO in audio mode at 48 kHz (resampled there from `rate`): about 1..4.73,
    the top being what identical audio gets. Unlike speech mode (capped at 8 kHz) it hears up to
    24 kHz, so it judges a written band above 8 kHz."""
    ref, est = _match(ref, est)
    if rate != FULLBAND_RATE:
        from model.audio import resample

        ref, est = _match(resample(ref, rate, FULLBAND_RATE), resample(est, rate, FULLBAND_RATE))
    return float(_visqol_api("audio").measure_from_arrays(ref, est, FULLBAND_RATE).moslqo)


def wb_pesq(ref: np.ndarray, est: np.ndarray, rate: int = PERCEPTUAL_RATE) -> float:
    """Wideband PESQ (ITU-T P.862.2) MOS-LQO of `est` against `ref`, about 1..4.6."""
    from pesq import pesq

    ref, est = _match(ref, est)
    return float(pesq(rate, ref, est, "wb"))


def dnsmos(x: np.ndarray, rate: int = PERCEPTUAL_RATE) -> dict[str, float]:
    """DNSMOS P.835 (SIG, BAK, OVRL) and P.808 of one recording, no reference needed."""
    from speechmos import dnsmos as model

    x = np.clip(np.asarray(x, dtype=np.float32).reshape(-1), -1.0, 1.0)
    scores = model.run(x, rate)
    return {
        "dnsmos_sig": float(scores["sig_mos"]),
        "dnsmos_bak": float(scores["bak_mos"]),
        "dnsmos_ovrl": float(scores["ovrl_mos"]),
        "dnsmos_p808": float(scores["p808_mos"]),
    }


def _distillmos_module():
    """distillmos.sqa, imported without torchaudio.

    distillmos imports torchaudio at the top of its module for its own command line (reading and
    resampling files), which is not used here. PyPI's torchaudio wheels are CUDA builds that fail
    to load beside the CPU torch 2.13.0 (libc10_cuda.so), so `make install` leaves torchaudio out
    and an empty module stands in for it during the import only.
    """
    stand_in = "torchaudio" not in sys.modules
    if stand_in:
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    try:
        from distillmos import sqa
    finally:
        if stand_in:
            del sys.modules["torchaudio"]
    return sqa


def _distillmos_model():
    global _DISTILLMOS
    if _DISTILLMOS is None:
        import torch

        sqa = _distillmos_module()
        # The wheel's own weights, loaded here rather than by the constructor, which prints.
        model = sqa.ConvTransformerSQAModel(load_weights=False)
        weights = torch.load(sqa.DEFAULT_WEIGHTS_CHKPT, map_location="cpu", weights_only=True)
        model.load_state_dict(weights["model"])
        _DISTILLMOS = model.eval()
    return _DISTILLMOS


_DISTILLMOS = None


def distillmos(x: np.ndarray, rate: int = PERCEPTUAL_RATE) -> float:
    """DistillMOS (Stahl and Gamper) of one recording, no reference needed: MOS 1..5.

    The model is loaded once per process. It takes 16 kHz mono [1 x T] of any length: the mean
    over 7.68 s windows at most 1 s apart, each peak-normalised (shorter audio is zero-padded).
    """
    import torch

    x = np.asarray(x, dtype=np.float32).reshape(-1)
    if rate != PERCEPTUAL_RATE:
        from model.audio import resample

        x = resample(x, rate, PERCEPTUAL_RATE)
    with torch.no_grad():
        return float(_distillmos_model()(torch.from_numpy(x)[None]).item())


def reference_free(x: np.ndarray, rate: int = PERCEPTUAL_RATE) -> dict[str, float]:
    """DNSMOS and DistillMOS of one recording: the scores the original gets too."""
    return {**dnsmos(x, rate), "distillmos": distillmos(x, rate)}


def perceptual(ref: np.ndarray, est: np.ndarray, scale: int, rate: int = PERCEPTUAL_RATE) -> dict:
    """ViSQOL, WB-PESQ, DNSMOS, DistillMOS and low-band SNR of one estimate against its
    reference."""
    return {
        "lowband_snr": lowband_snr(ref, est, rate // scale, rate),
        "visqol": visqol(ref, est, rate),
        "pesq": wb_pesq(ref, est, rate),
        **reference_free(est, rate),
    }


def fullband(ref: np.ndarray, est: np.ndarray, input_rate: int, rate: int = FULLBAND_RATE) -> dict:
    """Low-band SNR and ViSQOL in audio mode of one estimate at a rate above 16 kHz (48 kHz) against
    its reference; no ViSQOL for audio shorter than it can score (`VISQOL_AUDIO_MIN_S`).

    WB-PESQ, DNSMOS, DistillMOS and ViSQOL's speech mode are defined on 16 kHz audio: resampled
    there they would hear only the band below 8 kHz, which a 16 kHz-input model keeps, and none of
    the band it writes; so they are left out here.
    """
    scores = {"lowband_snr": lowband_snr(ref, est, input_rate, rate)}
    if np.size(ref) / rate >= VISQOL_AUDIO_MIN_S:
        scores["visqol_audio"] = visqol_audio(ref, est, rate)
    return scores
