"""Issue 12: a checkpoint cannot run code, no command loses or mixes a run, bad arguments write nothing."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lusebench.baselines.text import minilm_path
from lusebench.baselines.train import TrainConfig, train
from lusebench.cli import main
from lusebench.simulation.config import SimulationConfig
from lusebench.simulation.writer import simulate


@pytest.fixture(scope="module")
def val(tmp_path_factory) -> Path:
    """Four 1 s two-source val mixtures (the tiny preset's clip length)."""
    out = tmp_path_factory.mktemp("val") / "val-2src"
    simulate(SimulationConfig(split="val", num_sources=2, num_mixtures=4, seed=4, duration_s=1.0, corpus="minicaps"), out, progress=False)
    return out


def _train_args(out: Path, val: Path | None, *extra: str) -> list[str]:
    """A tiny mlp-gcc run (the fastest system): 4 steps of batch 2 per epoch."""
    args = ["train-baseline", "--system", "mlp-gcc", "--preset", "tiny", "--sources", "2", "--batch-size", "2",
            "--epoch-size", "8", "--corpus", "minicaps", "--out", str(out), "--no-progress", *extra]
    return args if val is None else [*args, "--val-data", str(val)]


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def _files(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Each file's bytes and modification time."""
    return {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in folder.iterdir() if path.is_file()}


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]["state_dict"]


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    differ = [key for key in a if not torch.equal(a[key], b[key])]
    assert not differ, f"{len(differ)} of {len(a)} tensors differ, e.g. {differ[0]}"


class _Marker:
    """Unpickling this creates ``path``: a stand-in for a checkpoint that runs a shell command."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@pytest.fixture
def crafted(tmp_path) -> tuple[Path, Path]:
    """A run folder whose last.pt would create a marker file if unpickled, and the marker's path."""
    marker, run = tmp_path / "pwned", tmp_path / "run"
    run.mkdir()
    torch.save({"train_schema_version": 1, "model": _Marker(marker)}, run / "last.pt")
    return run / "last.pt", marker


def test_crafted_checkpoint_does_not_run_in_infer(crafted, val, tmp_path, capsys):
    checkpoint, marker = crafted
    error = _one_line_error(capsys, ["infer", "--checkpoint", str(checkpoint), "--data", str(val),
                                     "--out", str(tmp_path / "submission"), "--no-progress"])
    assert "refused" in error
    assert not marker.exists() and not (tmp_path / "submission").exists()


def test_crafted_checkpoint_does_not_run_on_resume(crafted, val, capsys):
    checkpoint, marker = crafted
    assert "refused" in _one_line_error(capsys, _train_args(checkpoint.parent, val, "--resume"))
    assert not marker.exists()
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["last.pt"]


def test_rerun_into_a_run_folder_is_refused_and_force_starts_over(val, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_train_args(run, val, "--max-epochs", "1")) == 0
    before = (run / "last.pt").read_bytes()
    assert "--force" in _one_line_error(capsys, _train_args(run, val, "--max-epochs", "1"))
    assert (run / "last.pt").read_bytes() == before
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    assert main(_train_args(run, val, "--max-epochs", "1", "--force", "--seed", "1")) == 0
    assert (run / "last.pt").read_bytes() != before
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # started over, not appended


@pytest.mark.parametrize("limit", [["--max-steps", "1"], ["--max-epochs", "1"]])
def test_resume_of_a_finished_run_leaves_it_alone(limit, val, tmp_path, caplog):
    """Regression (issue 12): --resume of a finished run trained one more step and overwrote last.pt."""
    caplog.set_level(logging.INFO, logger="lusebench")
    run = tmp_path / "run"
    assert main(_train_args(run, val, *limit)) == 0
    before = _files(run)
    assert main(_train_args(run, val, *limit, "--resume")) == 0
    assert "is complete" in caplog.text
    assert _files(run) == before


def test_resume_of_a_run_ended_by_its_stop_rule_leaves_it_alone(val, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="lusebench")
    # At lr 1e-30 (0 is refused) no float32 weight moves, so the second epoch's validation loss
    # is no better than the first's, and stop_after=1 ends the run there, well before max_epochs.
    config = TrainConfig.for_preset("tiny", system="mlp-gcc", num_sources=2, batch_size=2, epoch_mixtures=4,
                                    corpus="minicaps", lr=1e-30, stop_after=1, max_epochs=5)
    train(config, tmp_path / "run", val_data=val, progress=False)
    stopped = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert stopped["epoch"] == 2
    before = (tmp_path / "run" / "last.pt").stat().st_mtime_ns
    train(config, tmp_path / "run", resume=True, val_data=val, progress=False)
    assert "is complete (no better validation loss for 1 epochs)" in caplog.text
    assert (tmp_path / "run" / "last.pt").stat().st_mtime_ns == before


# 12 epochs of 4 steps: enough captions recur for the old batch-dependent caption cache to give
# other weights after a resume from epoch 2 on (from epoch 1, by chance, it did not).
EPOCHS = ["--max-epochs", "12"]


@pytest.fixture(scope="module")
def straight(val, tmp_path_factory) -> dict[str, torch.Tensor]:
    """Final weights of an uninterrupted run."""
    run = tmp_path_factory.mktemp("straight") / "run"
    assert main(_train_args(run, val, *EPOCHS)) == 0
    return _weights(run / "last.pt")


def test_clean_stop_and_resume_ends_with_the_weights_of_an_uninterrupted_run(straight, val, tmp_path):
    run = tmp_path / "run"
    assert main(_train_args(run, val, *EPOCHS, "--max-steps", "18")) == 0  # mid-epoch 4
    assert torch.load(run / "last.pt", weights_only=True)["position"] == 2
    # As if killed after writing epoch 4's record but before its checkpoint, and in the next record.
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('{"epoch": 4, "step": 20}\n{"epoch": 5, "st')
    assert main(_train_args(run, val, *EPOCHS, "--resume")) == 0
    _assert_identical(straight, _weights(run / "last.pt"))
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    # Every epoch once, in order: the half-written record and the one past the checkpoint are gone.
    # (The run may end before 12 epochs by its stop rule, as the uninterrupted one does.)
    assert epochs == list(range(len(epochs))) and len(epochs) > 5


def test_killed_and_resumed_run_ends_with_the_weights_of_an_uninterrupted_run(straight, val, tmp_path):
    run = tmp_path / "run"
    # One thread, as in this process: the weights must not differ by the thread count's rounding.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "lusebench.cli", *_train_args(run, val, *EPOCHS)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        metrics, deadline = run / "metrics.jsonl", time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
                break
            time.sleep(0.02)
        time.sleep(0.1)  # past the checkpoint, into steps that the kill then loses
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    killed_at = torch.load(run / "last.pt", weights_only=True)["epoch"]
    assert 2 <= killed_at < 12
    assert main(_train_args(run, val, *EPOCHS, "--resume")) == 0
    _assert_identical(straight, _weights(run / "last.pt"))


def _edit_system(checkpoint: Path, name: str, to: Path) -> Path:
    payload = torch.load(checkpoint, weights_only=True)
    payload["train_config"]["system"] = name
    payload["model"]["config"]["name"] = name
    torch.save(payload, to)
    return to


@pytest.mark.parametrize(("name", "message"), [("luseel", "built as another system"), ("luseel-v2", "unknown system")])
def test_checkpoint_naming_another_system_fails_before_infer_writes(name, message, val, tmp_path, capsys):
    """Regression (issue 12): an edited name wrote a submission claiming that system; an unknown
    one wrote every output, then died with KeyError."""
    assert main(_train_args(tmp_path / "run", val, "--max-steps", "1")) == 0
    edited = _edit_system(tmp_path / "run" / "last.pt", name, tmp_path / "edited.pt")
    error = _one_line_error(capsys, ["infer", "--checkpoint", str(edited), "--data", str(val),
                                     "--out", str(tmp_path / "submission"), "--no-progress"])
    assert message in error
    assert not (tmp_path / "submission").exists()


@pytest.fixture(scope="module")
def short_val(tmp_path_factory) -> Path:
    """A val set of 0.5 s mixtures, which the tiny preset's 1 s systems cannot use."""
    out = tmp_path_factory.mktemp("short") / "val"
    simulate(SimulationConfig(split="val", num_sources=2, num_mixtures=2, seed=4, duration_s=0.5, corpus="minicaps"), out, progress=False)
    return out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--batch-size", "-1"], "--batch-size must be at least 1"),
        (["--workers", "-1"], "--workers must be at least 0"),
        (["--device", "tpu9"], "choose cpu, cuda or cuda:N"),
        pytest.param(["--device", "cuda"], "CUDA device", marks=pytest.mark.skipif(
            torch.cuda.is_available(), reason="needs a machine without CUDA")),
        (["--max-steps", "0"], "--max-steps must be at least 1"),
        (["--max-steps", "-5"], "--max-steps must be at least 1"),
        (["--epoch-size", "0"], "--epoch-size must be at least 1"),
        (["--resume", "--force"], "choose one"),
        (["--lr", "0"], "--lr must be a positive number"),
        (["--lr=-1e-3"], "--lr must be a positive number"),
        (["--lr", "nan"], "--lr must be a positive number"),
        (["--warmup-steps=-1"], "--warmup-steps must be 0 or more"),
        (["--text-model", "/nowhere"], "goes with --text-encoder t5"),
        (["--text-encoder", "t5", "--text-model", "/nowhere/t5"], "not found locally"),
        (["--text-encoder", "t5", "--text-model", str(minilm_path())], "not a T5"),
    ],
)
def test_bad_train_arguments_give_one_line_and_write_nothing(extra, message, tmp_path, capsys):
    run = tmp_path / "run"
    # argparse keeps an option's last value, so the case's own --epoch-size wins over the default one.
    assert message in _one_line_error(capsys, _train_args(run, None, *extra))
    assert not run.exists()


def test_out_naming_a_file_or_an_unusable_val_set_writes_nothing(short_val, tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    assert "is a file" in _one_line_error(capsys, _train_args(tmp_path / "file", None))
    assert (tmp_path / "file").read_text() == "mine"
    # A failed check leaves no train_config.json (nor val/) behind in the folder it would create.
    assert "val set" in _one_line_error(capsys, _train_args(tmp_path / "run", short_val))
    assert not (tmp_path / "run").exists()
