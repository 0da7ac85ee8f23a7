import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lusebench.benchmark.aggregate import clip_ci, mean_ci, separation_bin
from lusebench.benchmark.dataset import load_dataset
from lusebench.benchmark.metrics import METRICS
from lusebench.benchmark.evaluate import ItemJob, _run_jobs, check, evaluate
from lusebench.benchmark.reference import write_reference
from lusebench.benchmark.results import load_results
from lusebench.benchmark.submission import SubmissionError
from lusebench.cli import main
from lusebench.errors import LusebenchError
from lusebench.fingerprint import dataset_fingerprint
from lusebench.testing.datasets import make_dataset
from lusebench.testing.submissions import MALFORMATIONS, make_submission, malform


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), num_items=5, num_sources=2, seconds=0.5, seed=3)


@pytest.fixture(scope="module")
def good(data, tmp_path_factory):
    return make_submission(data, tmp_path_factory.mktemp("good") / "sub", noise=0.3, doa_error_deg=3.0)


def test_fingerprint_follows_the_recipes_not_the_file_bytes(data):
    dataset = load_dataset(data)
    manifest = dataset.manifest
    assert len(dataset.fingerprint) == 64
    assert dataset.fingerprint == load_dataset(data).fingerprint
    # Another CPU or libFLAC writes other bytes: same set. The files may also live elsewhere.
    other_bytes = manifest.assign(target_sha256=manifest["target_sha256"].str.replace("a", "b"),
                                  mixture_path="elsewhere/" + manifest["mixture_path"], lusebench_version="9.9")
    assert dataset_fingerprint(other_bytes) == dataset.fingerprint
    assert dataset_fingerprint(manifest.iloc[::-1]) == dataset.fingerprint  # order does not matter
    # Any recipe value, however small the change, is another set.
    nudged = manifest.assign(target_azimuth_deg=np.nextafter(manifest["target_azimuth_deg"], np.inf))
    assert dataset_fingerprint(nudged) != dataset.fingerprint
    assert dataset_fingerprint(manifest.assign(sample_rate=8000)) != dataset.fingerprint


def test_mean_ci_known_answer():
    cell = mean_ci(np.array([1.0, 2.0, 3.0]))
    assert cell["mean"] == pytest.approx(2.0) and cell["n"] == 3
    assert cell["ci95"] == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)  # t(0.975, 2) * s / sqrt(n)
    assert (cell["ci95_low"], cell["ci95_high"]) == pytest.approx((2.0 - cell["ci95"], 2.0 + cell["ci95"]))
    assert mean_ci(np.array([5.0])) == {"mean": 5.0, "ci95": None, "ci95_low": None, "ci95_high": None, "n": 1}
    assert mean_ci(np.array([])) == {"mean": None, "ci95": None, "ci95_low": None, "ci95_high": None, "n": 0}


@pytest.mark.parametrize("hits", [0, 1, 19, 20])
def test_accuracy_interval_is_wilson_and_stays_within_0_100(hits):
    cell = mean_ci(np.array([100.0] * hits + [0.0] * (20 - hits)), METRICS["doa_accuracy_pct"])
    share, n, z = hits / 20, 20, 1.959964
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    spread = z / (1 + z * z / n) * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    assert cell["ci95_low"] == pytest.approx(100 * max(0.0, centre - spread), abs=1e-4)
    assert cell["ci95_high"] == pytest.approx(100 * min(1.0, centre + spread), abs=1e-4)
    assert 0.0 <= cell["ci95_low"] <= cell["mean"] <= cell["ci95_high"] <= 100.0
    assert cell["ci95_high"] - cell["ci95_low"] > 5.0  # 0 of 20 is not certainty


def test_bounded_metric_interval_is_cut_to_its_range():
    errors = np.array([0.0] * 18 + [170.0, 180.0])  # a t interval would reach below 0 deg
    cell = mean_ci(errors, METRICS["doa_mae_deg"])
    assert cell["ci95_low"] == 0.0 and cell["ci95_high"] <= 180.0
    assert cell["ci95"] == pytest.approx(cell["ci95_high"] / 2)


def test_by_clip_interval_known_answers():
    rng = np.random.default_rng(0)
    values = rng.normal(0.5, 2.0, 40)
    item = mean_ci(values)
    # One item per clip: the by-clip interval is Student's t over the items.
    one_each = clip_ci(values, np.arange(40))
    assert (one_each["ci95_clips_low"], one_each["ci95_clips_high"]) == pytest.approx((item["ci95_low"], item["ci95_high"]))
    assert one_each["clips"] == 40
    # Eight clips, every item a copy of its clip's value: the interval over the eight clip values,
    # however many copies (the item interval shrinks with the copies; this one does not).
    clip_values = values[:8]
    copies = np.repeat(clip_values, 25)
    grouped = clip_ci(copies, np.repeat([f"clip-{k}" for k in range(8)], 25))
    over_clips = mean_ci(clip_values)
    assert (grouped["ci95_clips_low"], grouped["ci95_clips_high"]) == pytest.approx((over_clips["ci95_low"], over_clips["ci95_high"]))
    assert grouped["ci95_clips_high"] - grouped["ci95_clips_low"] > 4 * mean_ci(copies)["ci95"]
    # The order of the items, and NaN items, do not matter; fewer than two clips give no interval.
    order = rng.permutation(200)
    with_nan = np.append(copies[order], np.nan)
    shuffled = clip_ci(with_nan, np.append(np.repeat(np.arange(8), 25)[order], 99))
    assert shuffled["ci95_clips_low"] == pytest.approx(grouped["ci95_clips_low"]) and shuffled["clips"] == 8
    assert clip_ci(values, np.zeros(40)) == {"ci95_clips_low": None, "ci95_clips_high": None, "clips": 1}
    # A share (accuracy): Wilson's interval over the effective count. Every item a hit, in 8 clips
    # of 25: the interval of 8 hits, not of 200 (the item interval keeps the 200).
    accuracy = METRICS["doa_accuracy_pct"]
    hits = clip_ci(np.full(200, 100.0), np.repeat(np.arange(8), 25), accuracy)
    assert (hits["ci95_clips_low"], hits["ci95_clips_high"]) == pytest.approx(
        (mean_ci(np.full(8, 100.0), accuracy)["ci95_low"], 100.0))
    assert hits["ci95_clips_low"] < mean_ci(np.full(200, 100.0), accuracy)["ci95_low"] - 20
    # Half the clips always hit, half never: as uncertain as 7 draws (8 clips, less CR1's 8/7), not 200.
    from lusebench.benchmark.aggregate import _wilson

    split = clip_ci(np.repeat([100.0, 0.0] * 4, 25), np.repeat(np.arange(8), 25), accuracy)
    assert (split["ci95_clips_low"], split["ci95_clips_high"]) == pytest.approx(_wilson(50.0, 7, 100.0))
    assert split["ci95_clips_low"] < 25.0 < mean_ci(np.repeat([100.0, 0.0] * 4, 25), accuracy)["ci95_low"]
    # Cut to the metric's range like the item interval.
    errors = clip_ci(np.array([0.0] * 18 + [170.0, 180.0]), np.arange(20), METRICS["doa_mae_deg"])
    assert errors["ci95_clips_low"] == 0.0


def test_separation_bins_close_on_the_right_at_180():
    np.testing.assert_array_equal(separation_bin(np.array([0.0, 19.9, 20.0, 179.0, 180.0])), [0, 0, 1, 8, 8])


def test_good_submission_results(data, good, tmp_path):
    results = evaluate(good, data, tmp_path / "res", workers=1, progress=False)
    summary = json.loads((tmp_path / "res" / "results.json").read_text())
    assert summary["schema_version"] == 2 and summary["items"] == "items.csv"
    assert summary["tracks"] == {"joint_si_snri_db": 3.0, "joint_doa_deg": 20.0, "front_back_deg": 20.0}
    assert summary["dataset"]["fingerprint"] == load_dataset(data).fingerprint
    assert summary["dataset"]["num_items"] == 5 and summary["dataset"]["num_sources"] == [2]
    assert summary["system"]["name"] == "test-system"
    overall = summary["metrics"]["overall"]
    assert set(overall) == {
        "si_snr_db", "si_snri_db", "sdr_db", "sdri_db", "bss_sdr_db", "bss_sdri_db",
        "itd_error_us", "ild_error_db", "level_error_db", "doa_accuracy_pct", "doa_mae_deg", "doa_mae_folded_deg",
        "doa_front_back_pct", "doa_mae_resolved_deg", "joint_success_pct", "si_snri_located_db",
        "si_snri_mislocated_db",
    }
    # Noise at 0.3 of the target's RMS: about 10.5 dB SI-SNR; every DoA is 3 deg off.
    assert 8.0 < overall["si_snr_db"]["mean"] < 13.0
    assert overall["si_snri_db"]["mean"] > 0
    assert overall["doa_mae_deg"]["mean"] == pytest.approx(3.0)
    assert overall["doa_accuracy_pct"]["mean"] == pytest.approx(100.0)
    # 3 deg off is no confusion, and every item is located: none falls in the mislocated mean.
    assert overall["doa_front_back_pct"]["mean"] == 0.0 and overall["doa_mae_resolved_deg"]["mean"] == pytest.approx(3.0)
    assert overall["si_snri_located_db"]["mean"] == pytest.approx(overall["si_snri_db"]["mean"])
    assert overall["si_snri_mislocated_db"]["mean"] is None and overall["si_snri_mislocated_db"]["n"] == 0
    assert set(summary["metrics"]["by_num_sources"]) == {"2"}
    assert set(summary["metrics"]["by_condition"]) == {"anechoic"}
    # Every mixture of this set has its own target clip: the by-clip interval is the item one.
    assert overall["si_snri_db"]["clips"] == 5
    assert overall["si_snri_db"]["ci95_clips_low"] == pytest.approx(overall["si_snri_db"]["ci95_low"])
    bins = summary["metrics"]["by_separation"]
    assert sum(c["n"] for c in bins["si_snri_db"]) == 5
    assert len(bins["doa_mae_deg"]) == len(bins["bins_deg"]) - 1
    items = pd.read_csv(tmp_path / "res" / "items.csv")
    assert items["mixture_id"].tolist() == load_dataset(data).mixture_ids
    assert items["target_clip_id"].tolist() == load_dataset(data).manifest["target_clip_id"].tolist()
    np.testing.assert_allclose(items["si_snri_db"], results.items["si_snri_db"], rtol=1e-5)
    for figure in ("fig2_si_snri_by_separation", "fig3_doa_mae_by_separation", "fig4_mae_vs_si_snri",
                   "fig5_azimuth_polar"):
        for fmt in ("png", "pdf"):
            assert (tmp_path / "res" / "figures" / f"{figure}.{fmt}").stat().st_size > 1000


def test_parallel_scoring_equals_serial(data, good, tmp_path):
    serial = evaluate(good, data, tmp_path / "a", workers=1, progress=False, figures=False)
    parallel = evaluate(good, data, tmp_path / "b", workers=2, progress=False, figures=False)
    pd.testing.assert_frame_equal(serial.items, parallel.items)


class _KillsItsWorker(ItemJob):
    """A job whose unpickling ends the worker process at once, as the OOM killer would."""

    def __reduce__(self):
        return os._exit, (1,)


def test_a_dead_worker_is_a_one_line_error():
    job = _KillsItsWorker("m0", Path("mix.flac"), Path("target.flac"), "0" * 64, "0" * 64, 8000, 16000, Path("est.wav"), None, 0.0, True)
    with pytest.raises(LusebenchError, match="worker process died") as error:
        _run_jobs([job, job], workers=2, progress=False)
    assert "\n" not in str(error.value)
    assert error.value.__suppress_context__


def test_mixture_reference_scores_zero_improvement(data, tmp_path):
    submission = write_reference("mixture", data, tmp_path / "mix")
    overall = evaluate(submission, data, workers=1, progress=False, figures=False).summary["metrics"]["overall"]
    for key in ("si_snri_db", "sdri_db", "bss_sdri_db"):
        assert overall[key]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert "doa_mae_deg" not in overall  # a single-task system is scored on its task alone
    assert (submission / "results" / "results.json").is_file()


def test_oracle_reference_scores_the_ceiling(data, tmp_path):
    submission = write_reference("oracle", data, tmp_path / "oracle")
    overall = evaluate(submission, data, workers=1, progress=False, figures=False).summary["metrics"]["overall"]
    assert overall["si_snr_db"]["mean"] == pytest.approx(100.0)
    assert overall["doa_mae_deg"]["mean"] == 0.0 and overall["doa_accuracy_pct"]["mean"] == 100.0
    assert overall["itd_error_us"]["mean"] == 0.0 and overall["ild_error_db"]["mean"] == 0.0


@pytest.mark.parametrize("audio_format", ["flac", "wav"])
def test_oracle_reference_holds_the_references_samples_in_no_larger_files(audio_format, tmp_path):
    """Regression (issue 22): the oracle wrote float64 WAV, 2.56 MB per 10 s file (2.4 GB for test-3src)."""
    import soundfile as sf

    data = make_dataset(tmp_path / "data", num_items=3, num_sources=2, seconds=0.5, audio_format=audio_format)
    submission = write_reference("oracle", data, tmp_path / "oracle", progress=False)
    manifest = load_dataset(data).manifest
    for row in manifest.itertuples():
        reference = data / row.target_path
        (written,) = (submission / "audio").glob(f"{row.mixture_id}.*")
        assert written.stat().st_size <= reference.stat().st_size + (36 if audio_format == "wav" else 0)
        assert sf.info(written).subtype == sf.info(reference).subtype
        np.testing.assert_array_equal(sf.read(written, dtype="float64")[0], sf.read(reference, dtype="float64")[0])
    overall = evaluate(submission, data, workers=1, progress=False, figures=False).summary["metrics"]["overall"]
    assert overall["si_snr_db"]["mean"] == pytest.approx(100.0)


def test_random_reference_is_uniform(tmp_path):
    data = make_dataset(tmp_path / "data", num_items=400, num_sources=2, seconds=0.01)
    submission = write_reference("random", data, tmp_path / "random", seed=1)
    overall = evaluate(submission, data, workers=1, progress=False, figures=False).summary["metrics"]["overall"]
    assert overall["doa_mae_deg"]["mean"] == pytest.approx(90.0, abs=8.0)
    assert overall["doa_accuracy_pct"]["mean"] == pytest.approx(2.8, abs=2.5)
    assert "si_snri_db" not in overall


def test_likelihood_submission_scores_like_csv(data, tmp_path):
    submission = make_submission(data, tmp_path / "lik", tasks=("localization",), doa_format="likelihood")
    items = evaluate(submission, data, workers=1, progress=False, figures=False).items
    assert items["doa_error_deg"].max() <= 0.5  # the one-hot bin is the rounded true azimuth
    assert "si_snri_db" not in items


@pytest.mark.parametrize("problem", MALFORMATIONS)
def test_each_malformation_is_rejected_with_its_name(data, good, tmp_path, problem):
    submission = shutil.copytree(good, tmp_path / "sub", ignore=shutil.ignore_patterns("results"))
    expected = malform(submission, problem)
    with pytest.raises(SubmissionError) as error:
        evaluate(submission, data, workers=1, progress=False)
    assert expected in str(error.value)
    assert not (submission / "results").exists()


def test_every_problem_is_listed_at_once(data, good, tmp_path):
    submission = shutil.copytree(good, tmp_path / "sub", ignore=shutil.ignore_patterns("results"))
    expected = [malform(submission, p) for p in ("nan", "bad_doa_csv", "no_system")]
    with pytest.raises(SubmissionError) as error:
        check(submission, data, workers=1, progress=False)
    for fragment in expected:
        assert fragment in str(error.value)


def test_azimuths_are_wrapped(data, tmp_path):
    submission = make_submission(data, tmp_path / "wrap", tasks=("localization",), doa_error_deg=-720.0)
    items = evaluate(submission, data, workers=1, progress=False, figures=False).items
    assert items["doa_pred_deg"].between(0.0, 360.0, inclusive="left").all()
    np.testing.assert_allclose(items["doa_error_deg"], 0.0, atol=1e-9)


def test_cli_evaluate_check_reference_and_figures(data, tmp_path, capsys):
    assert main(["reference", "oracle", "--data", str(data), "--out", str(tmp_path / "o")]) == 0
    assert main(["evaluate", str(tmp_path / "o"), "--data", str(data), "--check-only", "--workers", "1"]) == 0
    assert not (tmp_path / "o" / "results").exists()
    assert main(["evaluate", str(tmp_path / "o"), "--data", str(data), "--workers", "1", "--no-figures"]) == 0
    assert main(["reference", "mixture", "--data", str(data), "--out", str(tmp_path / "m")]) == 0
    assert main(["evaluate", str(tmp_path / "m"), "--data", str(data), "--workers", "1", "--no-figures"]) == 0
    assert main(["figures", str(tmp_path / "o" / "results"), str(tmp_path / "m" / "results"),
                 "--labels", "oracle", "mixture", "--out", str(tmp_path / "figs")]) == 0
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(
        f"{stem}.{fmt}" for stem in ("fig2_si_snri_by_separation", "fig3_doa_mae_by_separation", "fig4_mae_vs_si_snri",
                                     "fig5_azimuth_polar")
        for fmt in ("png", "pdf")
    )
    assert load_results(tmp_path / "o" / "results").name == "reference-oracle"
    (tmp_path / "m" / "audio" / f"{load_dataset(data).mixture_ids[0]}.flac").unlink()
    assert main(["evaluate", str(tmp_path / "m"), "--data", str(data), "--workers", "1", "--out", str(tmp_path / "bad")]) == 2
    assert "audio missing for mixture id" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_evaluate_help_documents_the_format(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = capsys.readouterr().out
    for needle in ("system.json", "audio/<mixture_id>.flac", "doa.csv", "doa_likelihood.npy", "[0, 360)"):
        assert needle in text


def test_a_submission_made_for_another_set_is_refused_in_one_line(data, tmp_path, capsys, caplog):
    """Regression (issue 22): ids say split, sources and index, not the seed, so a submission made for
    the seed-1 set was scored against the seed-0 set without a word."""
    other = make_dataset(tmp_path / "seed1", num_items=5, num_sources=2, seconds=0.5, seed=1)
    assert load_dataset(other).mixture_ids == load_dataset(data).mixture_ids  # the same ids...
    assert main(["reference", "oracle", "--data", str(other), "--out", str(tmp_path / "o")]) == 0
    recorded = json.loads((tmp_path / "o" / "set.json").read_text())["fingerprint"]
    assert recorded == load_dataset(other).fingerprint  # ...but another fingerprint
    for extra in (["--check-only"], []):
        capsys.readouterr()
        assert main(["evaluate", str(tmp_path / "o"), "--data", str(data), "--workers", "1", *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "answers another set" in err and recorded[:12] in err
    assert not (tmp_path / "o" / "results").exists()
    # A submission from elsewhere, without set.json, is scored on trust with a warning.
    foreign = make_submission(data, tmp_path / "foreign", tasks=("localization",))
    evaluate(foreign, data, workers=1, progress=False, figures=False)
    assert "has no set.json" in caplog.text


def test_figures_refuse_results_of_two_sets_unless_allowed(data, tmp_path, capsys):
    other = make_dataset(tmp_path / "seed1", num_items=5, num_sources=2, seconds=0.5, seed=1)
    for name, folder in (("a", data), ("b", other)):
        assert main(["reference", "oracle", "--data", str(folder), "--out", str(tmp_path / name)]) == 0
        assert main(["evaluate", str(tmp_path / name), "--data", str(folder), "--workers", "1", "--no-figures"]) == 0
    capsys.readouterr()
    both = [str(tmp_path / "a" / "results"), str(tmp_path / "b" / "results")]
    assert main(["figures", *both, "--out", str(tmp_path / "figs")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--allow-mixed" in err and "2 test sets" in err
    assert not (tmp_path / "figs").exists()
    assert main(["figures", *both, "--allow-mixed", "--out", str(tmp_path / "figs")]) == 0


def test_long_legend_labels_do_not_overlap(data, good, tmp_path):
    """Regression (issue 22): three run names shared a legend row and were printed over each other."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from lusebench.benchmark.figures import _bars_by_separation

    results = evaluate(good, data, tmp_path / "r", workers=1, progress=False, figures=False)
    labels = ["mlp-gcc (small preset, minicaps+gmcaps-2000, 1,500 steps, CPU, cfg abc1787)",
              "mlp-gcc (small preset, no query pairs, select on loss, minicaps, 1,750 steps, CPU, cfg 32ad4b9)", "x"]
    figure = _bars_by_separation([results] * 3, labels, "doa_mae_deg", "MAE")
    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # places the legend's texts
    renderer = canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in figure.axes[0].get_legend().get_texts()]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_a_gzipped_item_table_is_read_and_bounded_as_it_unpacks(data, good, tmp_path, monkeypatch):
    import gzip

    from lusebench.benchmark import results as results_module

    folder = evaluate(good, data, tmp_path / "r", workers=1, progress=False, figures=False).folder
    plain = load_results(folder).items
    table = (folder / "items.csv").read_bytes()
    (folder / "items.csv.gz").write_bytes(gzip.compress(table))
    (folder / "items.csv").unlink()
    pd.testing.assert_frame_equal(load_results(folder).items, plain)
    bound = (folder / "items.csv.gz").stat().st_size + 1
    assert len(table) > bound  # the packed file is within the bound, what it unpacks to is not
    monkeypatch.setattr(results_module, "MAX_ITEMS_BYTES", bound)
    with pytest.raises(LusebenchError, match=f"unpacks to more than {bound} bytes"):
        load_results(folder)
