"""Known answers for the tracks beyond Table 1: front-back confusions and the joint score."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lusebench.benchmark.aggregate import aggregate
from lusebench.benchmark.metrics import (
    circular_error_deg,
    folded_error_deg,
    front_back_confused,
    joint_found,
    resolved_error_deg,
)
from lusebench.benchmark.tracks import TrackOptions, add_track_columns
from lusebench.cli import main
from lusebench.errors import LusebenchError

# Off the interaural axis (90, 270), where a mirror image lies within 20 deg of the truth itself.
_TRUTH = np.array([0.0, 10.0, 30.0, 150.0, 200.0, 320.0, 345.0])


def test_mirror_images_are_all_confusions_and_resolve_to_zero():
    mirrored = (180.0 - _TRUTH) % 360.0
    assert front_back_confused(mirrored, _TRUTH).all()
    np.testing.assert_allclose(resolved_error_deg(mirrored, _TRUTH), 0.0, atol=1e-9)
    assert (circular_error_deg(mirrored, _TRUTH) > 20.0).all()


def test_confusion_needs_a_wrong_estimate_and_a_close_mirror():
    # 30 deg: right; 160 (mirror 20, 10 off): confusion; 100 (mirror 80): a plain error; 35: within 20.
    predicted = np.array([30.0, 160.0, 100.0, 35.0])
    truth = np.full(4, 30.0)
    assert front_back_confused(predicted, truth).tolist() == [False, True, False, False]
    np.testing.assert_allclose(resolved_error_deg(predicted, truth), [0.0, 10.0, 70.0, 5.0])
    # The folded error forgives the mirror of 100 (80, 50 off); resolving does not: it is no confusion.
    np.testing.assert_allclose(folded_error_deg(predicted, truth), [0.0, 10.0, 50.0, 5.0])


@given(st.floats(0.0, 360.0), st.floats(0.0, 360.0))
def test_resolved_error_lies_between_folded_and_plain(predicted, truth):
    resolved = resolved_error_deg(predicted, truth)
    assert folded_error_deg(predicted, truth) - 1e-9 <= resolved <= circular_error_deg(predicted, truth) + 1e-9


def _items(si_snri, error, predicted=None, truth=None):
    n = len(si_snri)
    truth = np.zeros(n) if truth is None else np.asarray(truth, dtype=float)
    predicted = np.asarray(error, dtype=float) if predicted is None else np.asarray(predicted, dtype=float)
    return pd.DataFrame({
        "mixture_id": [f"m{i}" for i in range(n)],
        "num_sources": 2,
        "condition": "anechoic",
        "angular_separation_deg": 90.0,
        "target_azimuth_deg": truth,
        "target_clip_id": [f"c{i % 3}" for i in range(n)],
        "si_snri_db": si_snri,
        "doa_pred_deg": predicted,
        "doa_error_deg": error,
    })


def test_joint_success_counted_by_hand():
    #                 found+located  found only  located only  neither  edge (3 dB, 20 deg)  found, 21 deg
    si_snri = [10.0, 8.0, 1.0, -5.0, 3.0, 12.0]
    error = [2.0, 90.0, 5.0, 170.0, 20.0, 21.0]
    items = add_track_columns(_items(si_snri, error))
    assert items["joint_success_pct"].tolist() == [100.0, 0.0, 0.0, 0.0, 100.0, 0.0]
    summary = aggregate(items)["overall"]
    assert summary["joint_success_pct"]["mean"] == pytest.approx(100.0 * 2 / 6)
    # Located within 20 deg: items 0, 2, 4; the rest are mislocated.
    assert summary["si_snri_located_db"]["mean"] == pytest.approx((10.0 + 1.0 + 3.0) / 3)
    assert summary["si_snri_mislocated_db"]["mean"] == pytest.approx((8.0 - 5.0 + 12.0) / 3)
    # Both intervals, the share's Wilson interval inside [0, 100].
    cell = summary["joint_success_pct"]
    assert 0.0 <= cell["ci95_low"] < cell["mean"] < cell["ci95_high"] <= 100.0
    assert cell["clips"] == 3 and cell["ci95_clips_low"] is not None
    # Other thresholds change the count: 2 dB and 25 deg add item 5 (12 dB, 21 deg), not item 2 (1 dB).
    looser = add_track_columns(_items(si_snri, error), TrackOptions(joint_si_snri_db=2.0, joint_doa_deg=25.0))
    assert looser["joint_success_pct"].tolist() == [100.0, 0.0, 0.0, 0.0, 100.0, 100.0]
    np.testing.assert_array_equal(joint_found(si_snri, error, 3.0, 20.0), items["joint_success_pct"] == 100.0)


def test_one_task_systems_get_no_joint_score():
    items = _items([5.0, 6.0], [1.0, 2.0])
    extraction = add_track_columns(items.drop(columns=["doa_pred_deg", "doa_error_deg"]))
    localization = add_track_columns(items.drop(columns=["si_snri_db"]))
    for table in (extraction, localization):
        assert not {"joint_success_pct", "si_snri_located_db", "si_snri_mislocated_db"} & set(table.columns)
    assert "doa_front_back_pct" in localization.columns and "doa_front_back_pct" not in extraction.columns


def test_mirrored_submission_has_full_confusion_rate_in_the_aggregate():
    mirrored = (180.0 - _TRUTH) % 360.0
    items = add_track_columns(_items(np.zeros(len(_TRUTH)), circular_error_deg(mirrored, _TRUTH), mirrored, _TRUTH))
    summary = aggregate(items)["overall"]
    assert summary["doa_front_back_pct"]["mean"] == 100.0
    assert summary["doa_mae_resolved_deg"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert summary["joint_success_pct"]["mean"] == 0.0


@pytest.mark.parametrize("field, value", [("joint_doa_deg", 0.0), ("joint_doa_deg", 181.0),
                                          ("joint_doa_deg", float("nan")), ("joint_si_snri_db", float("inf")),
                                          ("joint_si_snri_db", 101.0)])
def test_thresholds_out_of_range_are_refused(field, value):
    with pytest.raises(LusebenchError, match="joint"):
        TrackOptions(**{field: value})


def test_cli_threshold_out_of_range_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "res"
    code = main(["evaluate", str(tmp_path), "--data", str(tmp_path), "--out", str(out), "--joint-doa-deg", "200"])
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "joint DoA tolerance must be within (0, 180] deg, got 200.0" in err


def test_rescore_from_items_alone(tmp_path):
    import json

    from lusebench.benchmark.evaluate import evaluate, rescore
    from lusebench.testing.datasets import make_dataset
    from lusebench.testing.submissions import make_submission

    data = make_dataset(tmp_path / "data", num_items=6, seconds=0.5)
    submission = make_submission(data, tmp_path / "sub", noise=0.3, doa_error_deg=15.0)
    scored = evaluate(submission, data, tmp_path / "res", workers=1, progress=False, figures=False)
    assert scored.summary["metrics"]["overall"]["joint_success_pct"]["mean"] == 100.0  # 15 deg off
    # Other thresholds, no audio: 10 deg now fails every item; the other metrics do not move.
    again = rescore(tmp_path / "res", TrackOptions(joint_doa_deg=10.0), figures=False)
    assert again.summary["metrics"]["overall"]["joint_success_pct"]["mean"] == 0.0
    assert again.summary["tracks"]["joint_doa_deg"] == 10.0
    # items.csv keeps 6 significant digits: the means move no further than that.
    for key in ("si_snri_db", "doa_mae_deg", "doa_accuracy_pct"):
        before, after = scored.summary["metrics"]["overall"][key], again.summary["metrics"]["overall"][key]
        assert after == pytest.approx(before, rel=1e-5)
    # A schema 1 folder (before the tracks) comes back as schema 2 with them.
    path = tmp_path / "res" / "results.json"
    old = json.loads(path.read_text())
    old["schema_version"] = 1
    del old["tracks"]
    for block in (old["metrics"]["overall"], *old["metrics"]["by_num_sources"].values()):
        for key in ("joint_success_pct", "doa_front_back_pct", "doa_mae_resolved_deg"):
            block.pop(key)
    path.write_text(json.dumps(old))
    pd.read_csv(tmp_path / "res" / "items.csv").drop(columns=["joint_success_pct", "doa_front_back_pct"]).to_csv(
        tmp_path / "res" / "items.csv", index=False)
    assert main(["rescore", str(tmp_path / "res")]) == 0  # the command: defaults, figures redrawn
    upgraded = json.loads(path.read_text())
    assert upgraded["schema_version"] == 2 and upgraded["tracks"]["joint_doa_deg"] == 20.0
    assert upgraded["metrics"]["overall"]["joint_success_pct"]["mean"] == 100.0
    assert (tmp_path / "res" / "figures" / "fig5_azimuth_polar.png").is_file()
