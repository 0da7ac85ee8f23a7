"""Choosing the absent threshold on a set with absent items: the sweep's known answers, and
``lusebench absent-threshold``."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lusebench.benchmark.absent_threshold import shown_points, sweep_absent_threshold
from lusebench.benchmark.dataset import load_dataset
from lusebench.benchmark.evaluate import evaluate
from lusebench.benchmark.submission import write_doa_likelihood, write_set_json, write_system_json
from lusebench.cli import main
from lusebench.errors import LusebenchError
from lusebench.schema import SystemInfo
from lusebench.testing.datasets import make_dataset

def test_separable_peaks_give_a_threshold_between_them_with_balanced_accuracy_1():
    peaks = np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.15])
    absent = np.array([False, True, False, True, False, True])
    sweep = sweep_absent_threshold(peaks, absent)
    assert sweep.chosen.threshold == pytest.approx(0.45)  # midway between 0.2 (absent) and 0.7 (present)
    assert sweep.balanced_accuracy_pct(sweep.chosen) == 100.0
    assert (sweep.chosen.detected, sweep.chosen.false_absent) == (3, 0)
    # One candidate per gap between distinct peaks, ascending, after "never absent".
    assert sweep.points[0].threshold is None and sweep.balanced_accuracy_pct(sweep.points[0]) == 50.0
    assert [p.threshold for p in sweep.points[1:]] == pytest.approx([0.125, 0.175, 0.45, 0.75, 0.85])


def test_identical_distributions_choose_never_absent():
    peaks = np.array([0.1, 0.2, 0.3, 0.4, 0.1, 0.2, 0.3, 0.4])
    absent = np.array([True] * 4 + [False] * 4)
    sweep = sweep_absent_threshold(peaks, absent)
    assert sweep.chosen.threshold is None
    # Every threshold says as many present items absent as absent ones: chance, never better.
    assert all(sweep.balanced_accuracy_pct(p) == 50.0 for p in sweep.points)


def test_ties_go_to_the_lowest_threshold():
    # 0.15 catches one absent item and no present one (1/2 - 0/2); 0.35 both absent items and one
    # present one (2/2 - 1/2): both 75 %, and the lower one wins.
    sweep = sweep_absent_threshold(np.array([0.1, 0.3, 0.2, 0.4]), np.array([True, True, False, False]))
    scores = [(p.threshold, sweep.balanced_accuracy_pct(p)) for p in sweep.points]
    assert scores == [(None, 50.0), (pytest.approx(0.15), 75.0), (pytest.approx(0.25), 50.0), (pytest.approx(0.35), 75.0)]
    assert sweep.chosen.threshold == pytest.approx(0.15)


def test_a_worse_than_chance_threshold_is_never_chosen():
    # Absent items peak higher than present ones: every threshold says present items absent first.
    sweep = sweep_absent_threshold(np.array([0.9, 0.8, 0.1, 0.2]), np.array([True, True, False, False]))
    assert sweep.chosen.threshold is None


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.booleans()), min_size=2, max_size=40),
       st.integers(2, 8), st.floats(0.01, 0.5))
def test_the_choice_does_not_depend_on_the_share_of_absent_items(rows, k, offset):
    """Repeating every absent item k times changes the share, not the rates: the same threshold wins."""
    peaks = np.array([p / 20 + offset for p, _ in rows])
    absent = np.array([a for _, a in rows])
    if absent.all() or not absent.any():
        return
    grown = sweep_absent_threshold(np.concatenate([peaks] + [peaks[absent]] * (k - 1)),
                                   np.concatenate([absent] + [absent[absent]] * (k - 1)))
    sweep = sweep_absent_threshold(peaks, absent)
    assert grown.chosen.threshold == sweep.chosen.threshold
    for point in sweep.points:  # and the chosen one is the best of all
        assert sweep.balanced_accuracy_pct(point) <= sweep.balanced_accuracy_pct(sweep.chosen) + 1e-9


@pytest.mark.parametrize("peaks, absent, message", [
    ([0.1, 0.2], [False, False], "no absent-target item"),
    ([0.1, 0.2], [True, True], "no present-target item"),
    ([0.1, np.nan], [True, False], "NaN or infinite"),
    ([0.1, 0.2, 0.3], [True, False], "must be two"),
])
def test_undefined_sweeps_are_refused(peaks, absent, message):
    with pytest.raises(LusebenchError, match=message):
        sweep_absent_threshold(np.array(peaks), np.array(absent))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Eight items, two of them absent (every fourth)."""
    return make_dataset(tmp_path_factory.mktemp("threshold") / "data", num_items=8, seconds=0.5, absent_share=0.25)


def _submission(data: Path, out: Path, peaks: np.ndarray) -> Path:
    likelihood = np.zeros((len(peaks), 360), dtype=np.float32)
    likelihood[:, 90] = peaks
    write_doa_likelihood(out, likelihood)
    write_system_json(out, SystemInfo(name="t", tasks=("localization",)))
    write_set_json(out, load_dataset(data))
    return out


def test_the_command_prints_the_sweep_and_the_threshold_evaluate_then_scores_perfectly(data, tmp_path, capsys):
    absent = np.array(load_dataset(data).absent)
    sub = _submission(data, tmp_path / "sub", np.where(absent, 0.25, 0.75))
    assert main(["absent-threshold", str(sub), "--data", str(data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2 absent and 6 present items; 1 thresholds"
    assert lines[2].split() == ["never", "0.0%", "0.0%", "50.0%"]
    assert lines[3].split() == ["0.5", "100.0%", "0.0%", "100.0%", "<-", "chosen"]
    assert lines[-1] == "chosen: 0.5 (infer --absent-threshold 0.5)"
    # Stated in system.json, the chosen threshold detects every absent item and no present one.
    write_system_json(sub, SystemInfo(name="t", tasks=("localization",), absent_threshold=0.5))
    overall = evaluate(sub, data, tmp_path / "res", workers=1, progress=False, figures=False).summary["metrics"]["overall"]
    assert overall["absent_detected_pct"]["mean"] == 100.0 and overall["false_absent_pct"]["mean"] == 0.0


@pytest.mark.parametrize("rows", [2, 5, 10])
def test_at_most_rows_thresholds_are_shown_with_never_and_the_chosen_one(rows):
    rng = np.random.default_rng(0)
    absent = np.arange(200) % 10 == 0
    sweep = sweep_absent_threshold(np.where(absent, 0.3, 0.5) + rng.uniform(0, 0.05, 200), absent)
    shown = shown_points(sweep, rows)
    assert len(shown) == rows and shown[0].threshold is None and sweep.chosen in shown
    assert [p.threshold for p in shown[1:]] == sorted(p.threshold for p in shown[1:])


def test_the_command_shows_rows_thresholds(data, tmp_path, capsys):
    absent = np.array(load_dataset(data).absent)
    sub = _submission(data, tmp_path / "sub", np.where(absent, 0.25, 0.75) + np.arange(8) / 100)
    assert main(["absent-threshold", str(sub), "--data", str(data), "--rows", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2 absent and 6 present items; 7 thresholds" and len(lines) == 2 + 4 + 1


def test_the_command_errors_are_one_line(data, tmp_path, capsys):
    plain = make_dataset(tmp_path / "plain", num_items=4, seconds=0.5)
    sub = _submission(plain, tmp_path / "plain-sub", np.full(4, 0.5))
    no_doa = tmp_path / "no-doa"
    write_system_json(no_doa, SystemInfo(name="t", tasks=("localization",)))
    other = _submission(plain, tmp_path / "other", np.full(4, 0.5))
    cases = [
        ([str(sub), "--data", str(plain)], "holds no absent-target item"),
        ([str(no_doa), "--data", str(data)], "has no doa_likelihood.npy"),
        ([str(other), "--data", str(data)], "answers another set"),
        ([str(tmp_path / "missing"), "--data", str(data)], "submission folder not found"),
        ([str(sub), "--data", str(tmp_path)], "no manifest.parquet"),
        ([str(_submission(data, tmp_path / "good", np.full(8, 0.5))), "--data", str(data), "--rows", "1"],
         "--rows must be at least 2"),
    ]
    for argv, message in cases:
        assert main(["absent-threshold", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("lusebench absent-threshold: error: ") and message in err, err


def test_the_command_refuses_a_pickled_likelihood(data, tmp_path, capsys):
    sub = _submission(data, tmp_path / "sub", np.full(8, 0.5))
    np.save(sub / "doa_likelihood.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    assert main(["absent-threshold", str(sub), "--data", str(data)]) == 2
    assert "doa_likelihood.npy cannot be read" in capsys.readouterr().err
