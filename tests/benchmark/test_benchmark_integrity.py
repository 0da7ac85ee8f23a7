"""Regressions of issue 12: a submission cannot score what it did not compute, nor make evaluate
read or write outside its folders; strangers' files are bounded before they are decoded."""

import io
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from lusebench.benchmark.evaluate import check, evaluate
from lusebench.benchmark.submission import AUDIO_DIR, SubmissionError
from lusebench.cli import main
from lusebench.errors import LusebenchError
from lusebench.testing.datasets import make_dataset
from lusebench.testing.submissions import make_submission


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), num_items=3, num_sources=2, seconds=0.5, seed=5)


@pytest.fixture
def good(data, tmp_path):
    return make_submission(data, tmp_path / "sub", noise=0.3)


def _targets(data):
    return sorted((data / "audio" / "target").iterdir())


def test_symlinked_audio_files_to_the_references_are_refused(data, good):
    # Today's bug: links to the data folder's targets scored SI-SNRi 101.5 dB.
    for file in (good / AUDIO_DIR).iterdir():
        file.unlink()
    for target in _targets(data):
        (good / AUDIO_DIR / target.name).symlink_to(target)
    with pytest.raises(SubmissionError, match="symlinks are not read"):
        evaluate(good, data, workers=1, progress=False, figures=False)
    assert not (good / "results").exists()


def test_a_symlinked_audio_folder_is_refused(data, good):
    shutil.rmtree(good / AUDIO_DIR)
    (good / AUDIO_DIR).symlink_to(data / "audio" / "target")
    with pytest.raises(SubmissionError, match=r"symlinks are not read .*: audio/"):
        check(good, data, workers=1, progress=False)


def test_byte_identical_copies_of_the_references_are_refused(data, good):
    for file in (good / AUDIO_DIR).iterdir():
        file.unlink()
    for target in _targets(data):
        shutil.copyfile(target, good / AUDIO_DIR / target.name)
    with pytest.raises(SubmissionError, match="a byte copy of the data folder's reference target"):
        evaluate(good, data, workers=1, progress=False, figures=False)


def test_a_reference_that_does_not_match_the_manifest_is_not_scored(data, good, tmp_path):
    # Targets replaced by the mixtures scored 100 dB under the genuine fingerprint.
    altered = shutil.copytree(data, tmp_path / "altered")
    for target in sorted((altered / "audio" / "target").iterdir()):
        shutil.copyfile(altered / "audio" / "mixture" / target.name, target)
    with pytest.raises(LusebenchError, match="does not match its recorded sha256"):
        evaluate(good, altered, workers=1, progress=False, figures=False)


def test_a_long_file_is_refused_from_its_header_before_decoding(data, good, monkeypatch):
    # 2 h of silence compresses to a few hundred KB of FLAC and decoded to 2 GB before the length check.
    first = sorted((good / AUDIO_DIR).iterdir())[0]
    first.unlink()
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros((16000 * 600, 2), dtype=np.float32), 16000, format="FLAC", subtype="PCM_16")
    long_flac = buffer.getvalue()
    (good / AUDIO_DIR / f"{first.stem}.flac").write_bytes(long_flac)
    decoded = []
    read = sf.read
    monkeypatch.setattr(sf, "read", lambda file, **kw: decoded.append(file.getvalue()) or read(file, **kw))
    with pytest.raises(SubmissionError, match="wrong length"):
        check(good, data, workers=1, progress=False)
    assert decoded and long_flac not in decoded


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda d: d.update(description="x" * 200_000), "'description' should be a string of at most"),
        (lambda d: d.update(channels=True), "channels should be 1 or 2"),
        (lambda d: d.update(name="x" * 201), "name should be a non-empty string of at most 200"),
    ],
)
def test_system_json_is_checked_by_the_schema(data, good, edit, expected):
    system = json.loads((good / "system.json").read_text())
    edit(system)
    (good / "system.json").write_text(json.dumps(system))
    with pytest.raises(SubmissionError, match=expected.replace("'description'", "description")):
        check(good, data, workers=1, progress=False)


def test_a_deeply_nested_system_json_is_one_problem(data, good):
    (good / "system.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SubmissionError, match="nested too deeply"):
        check(good, data, workers=1, progress=False)


def test_complex_likelihoods_are_refused(data, tmp_path):
    submission = make_submission(data, tmp_path / "loc", tasks=("localization",), doa_format="likelihood")
    likelihood = np.load(submission / "doa_likelihood.npy").astype(np.complex64)
    np.save(submission / "doa_likelihood.npy", likelihood)
    with pytest.raises(SubmissionError, match="must be a real-valued array"):
        check(submission, data, workers=1, progress=False)


def test_evaluate_never_writes_through_a_symlinked_results_folder(data, good, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (good / "results").symlink_to(elsewhere)
    with pytest.raises(LusebenchError, match="is a symlink"):
        evaluate(good, data, workers=1, progress=False, figures=False)
    assert list(elsewhere.iterdir()) == []


def test_a_second_evaluation_leaves_no_stale_file(data, good):
    evaluate(good, data, workers=1, progress=False, figures=False)
    stale = good / "results" / "figures" / "fig3_mae_by_separation.png"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    evaluate(good, data, workers=1, progress=False, figures=False)
    assert sorted(p.name for p in (good / "results").iterdir()) == ["items.csv", "results.json"]
    assert not [p for p in good.iterdir() if p.name.startswith(".results.")]


@pytest.mark.parametrize("out", ["file", "/proc/lusebench-results", "foreign"])
def test_a_bad_out_fails_before_scoring(data, good, tmp_path, capsys, monkeypatch, out):
    if out == "file":
        out = tmp_path / "results.txt"
        out.write_text("mine")
    elif out == "foreign":
        out = tmp_path / "mine"
        out.mkdir()
        (out / "thesis.tex").write_text("mine")
    monkeypatch.setattr("lusebench.benchmark.evaluate._checked", lambda *a, **k: pytest.fail("scored"))
    assert main(["evaluate", str(good), "--data", str(data), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lusebench evaluate: error: ")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_oracle_reference_still_scores_the_ceiling(data, tmp_path):
    assert main(["reference", "oracle", "--data", str(data), "--out", str(tmp_path / "oracle"), "--no-progress"]) == 0
    results = evaluate(tmp_path / "oracle", data, workers=1, progress=False, figures=False)
    overall = results.summary["metrics"]["overall"]
    assert overall["doa_accuracy_pct"]["mean"] == 100.0 and overall["si_snri_db"]["mean"] > 50.0
