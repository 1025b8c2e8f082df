"""`evaluate` of a model that writes 48 kHz: ViSQOL in audio mode, low-band SNR and the written
band's level take the place of the 16 kHz scores."""

import json

import numpy as np
import pytest

from model import audio, cli
from tests.test_metrics import FULL_BAND, fullband_speech


@pytest.fixture
def voices_48k(tmp_path):
    """Three voices of one short 48 kHz file each, the last too short for ViSQOL's audio mode."""
    for seed, (voice, seconds) in enumerate((("a", 1.5), ("b", 1.5), ("c", 0.5))):
        (tmp_path / "voices" / voice).mkdir(parents=True)
        audio.save(tmp_path / "voices" / voice / "0.wav", fullband_speech(seconds, seed), FULL_BAND)
    return tmp_path / "voices"


def test_evaluate_x3_reports_the_full_band_scores(tmp_path, voices_48k, capsys):
    out = tmp_path / "eval"
    result = cli.evaluate("spectral-x3", voices_48k, scale=3, out=out, device="cpu")
    table = result["table"]
    assert set(table) == {"spectral-x3", "spline", "sinc"}  # no original: no reference-free score
    for row in table.values():
        assert set(row) == {"snr", "lsd", "lsd_hf", "lowband_snr", "visqol_audio"}
    # The 0.5 s item has every score but ViSQOL's: the table's ViSQOL is the other two's mean.
    assert result["files"] == 3 and result["visqol_audio_items"] == 2
    scored = [line.split(",") for line in (out / "scores.csv").read_text().splitlines()]
    column = scored[0].index("visqol_audio")
    assert [row[column] == "" for row in scored[1:]] == [False] * 6 + [True] * 3
    # Sinc writes nothing above 8 kHz: audio mode hears the loss.
    assert 1 < table["sinc"]["visqol_audio"] < 4.5 and table["sinc"]["lsd_hf"] > 2
    assert result["input_rate"] == 16000 and result["output_rate"] == FULL_BAND
    for key in ("lsd_ratio_vs_sinc", "visqol_audio_gain_vs_sinc", "lowband_snr_gain_vs_spline_db"):
        assert np.isfinite(result[key])
    levels = result["band_levels_db"]
    assert result["band_levels_from_hz"] == 8000 and len(levels) == 16
    assert result["band_level_worst_db"] == pytest.approx(max(abs(v) for v in levels), abs=1e-3)
    assert [len(item) for item in result["band_levels_db_per_item"]] == [16, 16, 16]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].endswith("scale 3, low-pass cheby8, 16000 -> 48000 Hz")
    assert printed[1].split()[-1] == "ViSQOL-A"
    assert any(line.startswith("LSD(sinc)/LSD(model) = ") for line in printed)
    visqol = [line for line in printed if line.startswith("ViSQOL (audio, 48 kHz) - sinc = ")]
    assert visqol and "(2 items of >= 0.96 s); low-band SNR - spline = " in visqol[0]
    bands = [line for line in printed if line.startswith("written band level vs original")]
    assert bands and bands[0].startswith("written band level vs original, dB per 1 kHz from 8 kHz:")
    assert json.loads((out / "results.json").read_text()) == result
    assert audio.info(out / "0.hr.wav")[1] == FULL_BAND and audio.info(out / "0.lr.wav")[1] == 16000


def test_evaluate_spline_x3_band_levels_show_the_empty_band(voices_48k, capsys):
    """Above 8 kHz spline writes only its images of the band below: every band far below the
    original's, the bar (within 6 dB) missed."""
    result = cli.evaluate("spline", voices_48k, scale=3, device="cpu", perceptual=False)
    assert set(result["table"]["spline"]) == {"snr", "lsd", "lsd_hf"}
    assert max(result["band_levels_db"]) < -10 and result["band_level_worst_db"] > 30
    assert "written band level vs original" in capsys.readouterr().out


def test_written_band_levels_are_the_corpus_long_term_spectrum():
    """Powers are summed over items before the ratio: a quiet item's -10 dB weighs by its power."""
    quiet, loud = np.array([1.0, 1.0]), np.array([9.0, 9.0])
    levels = cli.written_band_levels([[quiet, 0.1 * quiet], [loud, loud]], 8000.0)
    assert levels["band_levels_db"] == pytest.approx([10 * np.log10(9.1 / 10)] * 2, abs=1e-3)
    assert levels["band_levels_db_per_item"] == [[-10.0, -10.0], [0.0, 0.0]]
    assert levels["band_level_worst_db"] == pytest.approx(-10 * np.log10(9.1 / 10))


def test_the_median_item_level_is_not_ruled_by_the_loudest_voice():
    """Three quiet items 10 dB under, one loud item right: the corpus sum says about 0 dB, the
    median over items -10 dB."""
    quiet, loud = np.array([1.0]), np.array([1000.0])
    items = [[quiet, 0.1 * quiet]] * 3 + [[loud, loud]]
    levels = cli.written_band_levels(items, 8000.0)
    assert abs(levels["band_levels_db"][0]) < 0.02
    assert levels["band_levels_db_item_median"] == [-10.0]
    assert levels["band_level_item_median_worst_db"] == pytest.approx(10.0)
