"""Absent-target items: the submission's "absent", its metrics, and the references' answers."""

import json

import numpy as np
import pandas as pd
import pytest

from lusebench.benchmark.dataset import load_dataset
from lusebench.benchmark.evaluate import evaluate
from lusebench.benchmark.metrics import ABSENT_FLOOR_DB, level_db
from lusebench.benchmark.reference import write_reference
from lusebench.benchmark.submission import AUDIO_DIR, SubmissionError, write_doa_likelihood, write_system_json
from lusebench.io import encode_audio, read_audio, write_bytes
from lusebench.schema import SystemInfo
from lusebench.testing.datasets import make_dataset
from lusebench.testing.submissions import make_submission

NUM_ITEMS, NUM_ABSENT = 8, 2


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("absent") / "data", num_items=NUM_ITEMS, seconds=0.5, absent_share=0.25)


def _overall(results):
    return results.summary["metrics"]["overall"]


def test_level_db_known_answers():
    mixture = np.ones((2, 100))
    assert level_db(np.zeros((2, 100)), mixture) == ABSENT_FLOOR_DB
    assert level_db(mixture, mixture) == pytest.approx(0.0)
    assert level_db(0.1 * mixture, mixture) == pytest.approx(-20.0)
    assert level_db(1e-5 * mixture, mixture) == ABSENT_FLOOR_DB  # -100 dB, floored


def test_the_oracle_scores_perfectly_on_absent_items(data, tmp_path):
    write_reference("oracle", data, tmp_path / "oracle", progress=False)
    doa = pd.read_csv(tmp_path / "oracle" / "doa.csv")
    assert doa["azimuth_deg"].isna().sum() == NUM_ABSENT  # empty cells: "absent"
    results = evaluate(tmp_path / "oracle", data, tmp_path / "res", workers=1, progress=False, figures=False)
    overall = _overall(results)
    assert overall["absent_level_db"]["mean"] == ABSENT_FLOOR_DB and overall["absent_level_db"]["n"] == NUM_ABSENT
    assert overall["absent_detected_pct"]["mean"] == 100.0 and overall["absent_detected_pct"]["n"] == NUM_ABSENT
    assert overall["false_absent_pct"]["mean"] == 0.0 and overall["false_absent_pct"]["n"] == NUM_ITEMS - NUM_ABSENT
    # The present-target figures are over the present items only.
    for key in ("si_snri_db", "doa_mae_deg", "doa_accuracy_pct", "joint_success_pct"):
        assert overall[key]["n"] == NUM_ITEMS - NUM_ABSENT, key
    assert overall["doa_accuracy_pct"]["mean"] == 100.0 and overall["joint_success_pct"]["mean"] == 100.0
    # Both intervals on every absent metric.
    for key in ("absent_level_db", "absent_detected_pct", "false_absent_pct"):
        assert {"ci95_low", "ci95_high", "ci95_clips_low", "ci95_clips_high"} <= set(overall[key]), key
    summary = json.loads((tmp_path / "res" / "results.json").read_text())
    assert summary["dataset"]["num_absent_items"] == NUM_ABSENT
    # An absent item is in no separation bin.
    assert sum(cell["n"] for cell in summary["metrics"]["by_separation"]["absent_level_db"]) == 0


def test_a_system_that_always_answers_scores_the_worst(data, tmp_path):
    make_submission(data, tmp_path / "sub")  # absent items: the mixture at -20 dB and a direction
    overall = _overall(evaluate(tmp_path / "sub", data, tmp_path / "res", workers=1, progress=False, figures=False))
    assert overall["absent_level_db"]["mean"] == pytest.approx(-20.0, abs=0.01)
    assert overall["absent_detected_pct"]["mean"] == 0.0 and overall["false_absent_pct"]["mean"] == 0.0
    write_reference("mixture", data, tmp_path / "mix", progress=False)
    overall = _overall(evaluate(tmp_path / "mix", data, tmp_path / "res2", workers=1, progress=False, figures=False))
    assert overall["absent_level_db"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert "absent_detected_pct" not in overall  # an extraction-only system cannot say absent


def test_the_level_error_exposes_an_extractor_that_answers_every_query_quietly(data, tmp_path):
    # The collapse of absent-query training (docs/small-preset.md): every answer 40 dB down, a
    # perfect absent level, and an SI-SNRi that does not notice.
    loud = make_submission(data, tmp_path / "loud", tasks=("extraction",))
    quiet = make_submission(data, tmp_path / "quiet", tasks=("extraction",))
    for path in (quiet / AUDIO_DIR).glob("*.wav"):
        audio, rate = read_audio(path)
        write_bytes(path, encode_audio(0.01 * audio, rate, "wav"))
    loud, quiet = (_overall(evaluate(sub, data, tmp_path / f"res-{sub.name}", workers=1, progress=False, figures=False))
                   for sub in (loud, quiet))
    assert quiet["si_snri_db"]["mean"] == pytest.approx(loud["si_snri_db"]["mean"], abs=1e-3)
    assert quiet["absent_level_db"]["mean"] == ABSENT_FLOOR_DB < loud["absent_level_db"]["mean"]
    # The target plus 10 % noise is 0.04 dB louder than the target; 40 dB down, it is 39.96 dB off.
    assert loud["level_error_db"]["mean"] == pytest.approx(0.043, abs=0.01)
    assert quiet["level_error_db"]["mean"] == pytest.approx(40.0 - 0.043, abs=0.01)
    assert quiet["level_error_db"]["n"] == NUM_ITEMS - NUM_ABSENT  # present items only


def test_the_references_level_errors(data, tmp_path):
    dataset = load_dataset(data)
    expected = []
    for row, absent in zip(dataset.manifest.itertuples(index=False), dataset.absent):
        if not absent:
            mixture, _ = read_audio(data / row.mixture_path)
            target, _ = read_audio(data / row.target_path)
            expected.append(abs(float(level_db(target, mixture))))
    for kind, level_error in (("oracle", 0.0), ("mixture", np.mean(expected))):
        write_reference(kind, data, tmp_path / kind, progress=False)
        overall = _overall(evaluate(tmp_path / kind, data, tmp_path / f"res-{kind}", workers=1, progress=False, figures=False))
        assert overall["level_error_db"]["mean"] == pytest.approx(level_error, abs=1e-4), kind
    assert np.mean(expected) > 1.0  # the mixture is louder than its target: a real error to find


def test_saying_absent_everywhere_is_all_false_absents(data, tmp_path):
    sub = make_submission(data, tmp_path / "sub", tasks=("localization",))
    ids = load_dataset(data).mixture_ids
    (sub / "doa.csv").write_text("mixture_id,azimuth_deg\n" + "".join(f"{i},\n" for i in ids))
    results = evaluate(sub, data, tmp_path / "res", workers=1, progress=False, figures=False)
    overall = _overall(results)
    assert overall["absent_detected_pct"]["mean"] == 100.0 and overall["false_absent_pct"]["mean"] == 100.0
    # A present target said absent is missed (accuracy 0) and has no error to average.
    assert overall["doa_accuracy_pct"]["mean"] == 0.0 and overall["doa_mae_deg"]["n"] == 0


def test_doa_csv_mixing_numbers_and_blanks_is_fine_other_text_is_refused(data, tmp_path):
    sub = make_submission(data, tmp_path / "sub", tasks=("localization",))
    ids = load_dataset(data).mixture_ids
    rows = [f"{ids[0]}, ", f"{ids[1]},12.5"] + [f"{i},0" for i in ids[2:]]
    (sub / "doa.csv").write_text("mixture_id,azimuth_deg\n" + "\n".join(rows) + "\n")
    items = evaluate(sub, data, tmp_path / "res", workers=1, progress=False, figures=False).items
    assert np.isnan(items["doa_pred_deg"][0]) and items["doa_pred_deg"][1] == 12.5
    for bad in ("nan", "x", "inf"):
        (sub / "doa.csv").write_text("mixture_id,azimuth_deg\n" + "\n".join([f"{ids[0]},{bad}"] + rows[1:]) + "\n")
        with pytest.raises(SubmissionError, match=f"azimuth_deg is not a finite number: {ids[0]}"):
            evaluate(sub, data, tmp_path / "bad", workers=1, progress=False, figures=False)


def test_likelihood_peak_under_the_stated_threshold_says_absent(data, tmp_path):
    dataset = load_dataset(data)
    absent = np.array(dataset.absent)
    likelihood = np.zeros((NUM_ITEMS, 360))
    truth = dataset.manifest["target_azimuth_deg"].to_numpy()
    likelihood[~absent, np.round(truth[~absent]).astype(int) % 360] = 0.9
    likelihood[absent, 7] = 0.2  # a weak peak: absent under a threshold of 0.5, a guess of 7 deg without one
    sub = tmp_path / "sub"
    write_doa_likelihood(sub, likelihood)
    for threshold, detected in ((0.5, 100.0), (None, 0.0)):
        write_system_json(sub, SystemInfo(name="t", tasks=("localization",), absent_threshold=threshold))
        overall = _overall(evaluate(sub, data, tmp_path / f"res{threshold}", workers=1, progress=False, figures=False))
        assert overall["absent_detected_pct"]["mean"] == detected
        assert overall["false_absent_pct"]["mean"] == 0.0
    system = json.loads((tmp_path / "res0.5" / "results.json").read_text())["system"]
    assert system["absent_threshold"] == 0.5


def test_silence_is_refused_on_a_present_item_only(data, tmp_path):
    write_reference("oracle", data, tmp_path / "oracle", progress=False)
    dataset = load_dataset(data)
    present = dataset.mixture_ids[0]
    (audio,) = (tmp_path / "oracle" / "audio").glob(f"{present}.*")  # the oracle's FLAC (issue 22), overwritten
    import soundfile as sf

    sf.write(audio, np.zeros((int(dataset.manifest["num_samples"][0]), 2)), dataset.sample_rate)
    with pytest.raises(SubmissionError, match=f"silent audio .*{present}"):
        evaluate(tmp_path / "oracle", data, tmp_path / "res", workers=1, progress=False, figures=False)
