"""Training, resume, inference and the whole loop (simulate -> train -> infer -> evaluate -> leaderboard)."""

import json
from pathlib import Path

import pytest
import torch

from lusebench.baselines.infer import infer
from lusebench.baselines.train import TrainConfig, train
from lusebench.cli import main
from lusebench.errors import LusebenchError
from lusebench.simulation.config import SimulationConfig
from lusebench.simulation.writer import simulate

SYSTEMS = ["t-htdemucs", "mlp-gcc", "luseel-extract", "luseel-nogcc", "luseel"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Four 1 s two-source test mixtures from the embedded corpus (the tiny preset's clip length)."""
    out = tmp_path_factory.mktemp("data") / "test-2src"
    simulate(SimulationConfig(num_sources=2, num_mixtures=4, seed=3, duration_s=1.0, corpus="minicaps"), out, progress=False)
    return out


@pytest.fixture(scope="module")
def val(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("val") / "val-2src"
    simulate(SimulationConfig(split="val", num_sources=2, num_mixtures=4, seed=4, duration_s=1.0, corpus="minicaps"), out, progress=False)
    return out


def _tiny(system: str, **overrides) -> TrainConfig:
    base = dict(system=system, num_sources=2, batch_size=2, epoch_mixtures=4, max_epochs=1, corpus="minicaps")
    return TrainConfig.for_preset("tiny", **{**base, **overrides})


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_system_runs_the_whole_loop(system, data, val, tmp_path):
    from lusebench.benchmark.evaluate import evaluate
    from lusebench.leaderboard import build_leaderboard

    best = train(_tiny(system), tmp_path / "run", val_data=val, progress=False)
    assert best.is_file()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 2
    submission = infer(best, data, tmp_path / "submission", progress=False)
    system_json = json.loads((submission / "system.json").read_text())
    results = evaluate(submission, data, workers=1, progress=False, figures=False)
    summary = json.loads((results.folder / "results.json").read_text())
    overall = summary["metrics"]["overall"]
    if "extraction" in system_json["tasks"]:
        assert len(list((submission / "audio").glob("*.flac"))) == 4
        assert overall["si_snri_db"]["n"] == 4
    if "localization" in system_json["tasks"]:
        assert (submission / "doa_likelihood.npy").is_file()
        assert overall["doa_mae_deg"]["n"] == 4
    board = build_leaderboard([results.folder / "results.json"], tmp_path / "site")
    assert system_json["name"] in board.markdown.read_text()
    assert system_json["name"] in board.html.read_text()


def test_a_t5_from_a_local_folder_trains_is_recorded_and_serves_infer(data, val, tmp_path):
    from lusebench.testing.text import make_tiny_t5_folder

    t5 = make_tiny_t5_folder(tmp_path / "my-t5")
    run = tmp_path / "run"
    args = ["train-baseline", "--system", "luseel-extract", "--sources", "2", "--preset", "tiny", "--batch-size", "2",
            "--epoch-size", "4", "--max-epochs", "1", "--corpus", "minicaps", "--val-data", str(val), "--out", str(run), "--no-progress",
            "--text-encoder", "t5", "--text-model", str(t5), "--query-pairs"]
    assert main(args) == 0
    assert json.loads((run / "train_config.json").read_text())["query_pairs"] is True
    text = torch.load(run / "last.pt", weights_only=True)["model"]["config"]["text"]
    assert (text["encoder"], text["encoder_name"]) == ("t5", str(t5))
    submission = infer(run / "best.pt", data, tmp_path / "submission", progress=False)
    assert "text encoder t5" in json.loads((submission / "system.json").read_text())["description"]


def test_a_model_trained_on_1s_clips_scores_a_10s_set(val, tmp_path):
    from lusebench.benchmark.evaluate import evaluate

    long = tmp_path / "test-10s"
    simulate(SimulationConfig(num_sources=2, num_mixtures=2, seed=3, duration_s=10.0, corpus="minicaps"), long, progress=False)
    best = train(_tiny("luseel"), tmp_path / "run", val_data=val, progress=False)
    submission = infer(best, long, tmp_path / "submission", progress=False)
    overall = evaluate(submission, long, workers=1, progress=False, figures=False).summary["metrics"]["overall"]
    assert overall["si_snri_db"]["n"] == 2 and overall["doa_mae_deg"]["n"] == 2


def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(val, tmp_path):
    config = _tiny("luseel", epoch_mixtures=8, max_epochs=2)  # 4 steps per epoch, 8 in all
    train(config, tmp_path / "straight", val_data=val, progress=False)
    # Killed mid-epoch 1 (after step 6), then resumed with the original limits.
    train(_tiny("luseel", epoch_mixtures=8, max_epochs=2, max_steps=6), tmp_path / "resumed", val_data=val, progress=False)
    stopped = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert (stopped["step"], stopped["epoch"], stopped["position"]) == (6, 1, 2)
    train(config, tmp_path / "resumed", resume=True, val_data=val, progress=False)
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)["model"]["state_dict"]
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["model"]["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def _nan_loss(loss):
    """``BaselineSystem.loss`` with a NaN total."""

    def poisoned(self, *args, **kwargs):
        terms = loss(self, *args, **kwargs)
        terms["total"] = terms["total"] * float("nan")
        return terms

    return poisoned


def test_non_finite_loss_stops_the_run(val, tmp_path, monkeypatch):
    from lusebench.baselines import systems

    monkeypatch.setattr(systems.BaselineSystem, "loss", _nan_loss(systems.BaselineSystem.loss))
    with pytest.raises(LusebenchError, match="non-finite loss"):
        train(_tiny("mlp-gcc"), tmp_path / "run", val_data=val, progress=False)


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_bad_inputs_give_one_line_and_exit_2(data, val, tmp_path, capsys):
    assert "no-such" in _one_line_error(capsys, ["train-baseline", "--system", "no-such", "--preset", "tiny", "--out", str(tmp_path / "r")])
    assert "no checkpoint" in _one_line_error(
        capsys, ["train-baseline", "--system", "mlp-gcc", "--preset", "tiny", "--resume", "--out", str(tmp_path / "none")]
    )
    train(_tiny("mlp-gcc"), tmp_path / "run", val_data=val, progress=False)
    assert "mlp-gcc" in _one_line_error(
        capsys, ["train-baseline", "--system", "luseel", "--preset", "tiny", "--resume", "--out", str(tmp_path / "run")]
    )
    assert "manifest" in _one_line_error(
        capsys, ["infer", "--checkpoint", str(tmp_path / "run" / "last.pt"), "--data", str(tmp_path), "--out", str(tmp_path / "s")]
    )
    foreign = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    foreign["train_schema_version"] = 99
    torch.save(foreign, tmp_path / "foreign.pt")
    assert "schema" in _one_line_error(
        capsys, ["infer", "--checkpoint", str(tmp_path / "foreign.pt"), "--data", str(data), "--out", str(tmp_path / "s")]
    )
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert "junk.pt" in _one_line_error(
        capsys, ["infer", "--checkpoint", str(tmp_path / "junk.pt"), "--data", str(data), "--out", str(tmp_path / "s")]
    )


def test_presets_and_explicit_limits():
    tiny = TrainConfig.for_preset("tiny", system="luseel")
    assert (tiny.batch_size, tiny.max_epochs) == (4, 2)
    # Asking for a step count lifts the tiny preset's epoch cap; asking for both keeps both.
    assert TrainConfig.for_preset("tiny", system="luseel", max_steps=30).max_epochs is None
    assert TrainConfig.for_preset("tiny", system="luseel", max_steps=30, max_epochs=1).max_epochs == 1
    paper = TrainConfig.for_preset("paper", system="luseel")
    assert (paper.batch_size, paper.lr, paper.warmup_steps, paper.halve_after, paper.stop_after) == (32, 1e-4, 5000, 6, 10)
    # The paper draws one query per mixture; the small preset asks each mixture twice, unless told not to.
    assert not paper.query_pairs and TrainConfig.for_preset("small", system="luseel").query_pairs
    assert not TrainConfig.for_preset("small", system="luseel", query_pairs=False).query_pairs
    assert (paper.select_on, TrainConfig.for_preset("small", system="luseel").select_on) == ("loss", "metrics")
    with pytest.raises(LusebenchError, match="unknown selection"):
        TrainConfig.for_preset("small", system="luseel", select_on="vibes")


def test_selection_criterion_weighs_1_db_as_10_deg_and_ignores_what_a_system_lacks():
    from lusebench.baselines.train import selection_criterion

    val = {"loss": 39.0, "si_snri_db": 0.5, "doa_mae_deg": 60.0}
    assert selection_criterion(val, "loss") == 39.0
    assert selection_criterion(val, "metrics") == pytest.approx(-0.5 + 6.0)
    # 1 dB better and 10 deg worse: a tie.
    assert selection_criterion({"si_snri_db": 1.5, "doa_mae_deg": 70.0}, "metrics") == pytest.approx(5.5)
    assert selection_criterion({"loss": 1.0, "si_snri_db": 0.3}, "metrics") == pytest.approx(-0.3)
    assert selection_criterion({"loss": 1.0, "doa_mae_deg": 45.0}, "metrics") == pytest.approx(4.5)
    # The small preset's DoA loss rose while its MAE fell (docs/small-preset.md): metrics pick the later one.
    early, late = {"loss": 39.1, "si_snri_db": -0.12, "doa_mae_deg": 74.1}, {"loss": 44.4, "si_snri_db": 0.45, "doa_mae_deg": 55.7}
    assert selection_criterion(late, "metrics") < selection_criterion(early, "metrics")
    assert selection_criterion(late, "loss") > selection_criterion(early, "loss")
    with pytest.raises(LusebenchError, match="unknown preset"):
        TrainConfig.for_preset("huge", system="luseel")


class _Oracle(torch.nn.Module):
    """Returns exactly the source its query names (the target, or the rest of the mixture) and a
    one-hot likelihood at that source's azimuth; with ``blind`` it ignores the query."""

    def __init__(self, dataset, blind: bool = False) -> None:
        super().__init__()
        self.items = [dataset[i] for i in range(len(dataset))]
        self.azimuths = [list(dataset.manifest["azimuths_deg"].iloc[i]) for i in range(len(dataset))]
        self.blind = blind

    def forward(self, mixture, captions):
        from lusebench.baselines.systems import SystemOutput

        waves, likelihoods = [], []
        for mix, caption in zip(mixture, captions):
            index = next(i for i, item in enumerate(self.items) if torch.equal(item["mixture"], mix))
            own = self.blind or caption == self.items[index]["caption"]
            waves.append(self.items[index]["target"] if own else mix - self.items[index]["target"])
            likelihood = torch.zeros(360)
            likelihood[round(self.azimuths[index][0 if own else 1]) % 360] = 1.0
            likelihoods.append(likelihood)
        return SystemOutput(torch.stack(waves), torch.stack(likelihoods), ())

    def loss(self, output, target, azimuth, mixture=None, absent=None, level_match=False):
        return {"total": torch.zeros(())}


def test_the_query_swap_check_tells_a_query_follower_from_a_query_blind_system(val):
    from torch.utils.data import DataLoader

    from lusebench.baselines.data import RenderedSet, collate
    from lusebench.baselines.train import validate

    dataset = RenderedSet(val)
    loader = DataLoader(dataset, batch_size=2, collate_fn=collate)
    separations = dataset.manifest["angular_separation_deg"].to_numpy()
    cpu = torch.device("cpu")
    own, swapped = validate(_Oracle(dataset), loader, cpu), validate(_Oracle(dataset), loader, cpu, swap_query=True)
    assert own["si_snri_db"] > 30 and swapped["si_snri_db"] < -10
    assert own["doa_mae_deg"] < 0.5
    # Asked for the interferer, it points there: its error against the target is the separation.
    assert swapped["doa_mae_deg"] == pytest.approx(separations.mean(), abs=0.5)
    blind, blind_swapped = validate(_Oracle(dataset, blind=True), loader, cpu), validate(
        _Oracle(dataset, blind=True), loader, cpu, swap_query=True
    )
    assert blind == blind_swapped
    # A foreign set whose manifest has no second caption still serves infer, but not this check.
    dataset.manifest = dataset.manifest.drop(columns=["captions"])
    assert dataset[0]["interferer_caption"] is None
    with pytest.raises(LusebenchError, match="query-swap check needs"):
        validate(_Oracle(dataset), DataLoader(dataset, batch_size=2, collate_fn=collate), cpu, swap_query=True)


def _ddp_rank(rank: int, world: int, port: int, system: str, out: str, val: str, nan_on_rank: int | None, results) -> None:
    """One torchrun-like rank: the environment torchrun sets, then train()."""
    import os

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from lusebench.baselines import systems

    if rank == nan_on_rank:
        systems.BaselineSystem.loss = _nan_loss(systems.BaselineSystem.loss)
    try:
        # 10 mixtures over 2 ranks of batch 2: 2 steps each, the 10th mixture left out on both.
        train(_tiny(system, epoch_mixtures=10), Path(out), val_data=Path(val), progress=False)
        results.put((rank, "ok"))
    except Exception as error:  # reported to the test, which would otherwise wait for a dead rank
        results.put((rank, f"{type(error).__name__}: {error}"))


def _run_ranks(world: int, out: Path, val: Path, system: str = "luseel", nan_on_rank: int | None = None) -> dict[int, str]:
    import multiprocessing
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    ranks = [context.Process(target=_ddp_rank, args=(r, world, port, system, str(out), str(val), nan_on_rank, results))
             for r in range(world)]
    for process in ranks:
        process.start()
    outcome = dict(results.get(timeout=120) for _ in ranks)
    for process in ranks:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
    return outcome


def test_ddp_on_two_cpu_ranks_trains_and_stops_together_on_a_non_finite_loss(val, tmp_path):
    assert _run_ranks(2, tmp_path / "run", val) == {0: "ok", 1: "ok"}
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())
    assert record["step"] == 2  # one line: only rank 0 writes
    assert (tmp_path / "run" / "best.pt").is_file()
    # A NaN on rank 1 alone stops both ranks with the message; neither waits forever in backward.
    stopped = _run_ranks(2, tmp_path / "nan", val, nan_on_rank=1)
    assert all("LusebenchError: non-finite loss on at least one rank" in message for message in stopped.values())


def test_a_run_stopped_before_its_first_epoch_ends_leaves_a_best_checkpoint_infer_takes(data, val, tmp_path, capsys):
    """Regression (issue 22): a short run wrote no best.pt but printed that last.pt was the best
    checkpoint, and the README's `infer --checkpoint .../best.pt` then failed."""
    run = tmp_path / "run"
    # 8 mixtures of batch 2 per epoch: 3 steps end inside the first epoch.
    assert main(["train-baseline", "--system", "mlp-gcc", "--preset", "tiny", "--sources", "2", "--batch-size", "2",
                 "--epoch-size", "8", "--max-steps", "3", "--corpus", "minicaps", "--val-data", str(val), "--out", str(run),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {run / 'best.pt'}" in printed
    assert torch.load(run / "best.pt", weights_only=True)["step"] == 3
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["command"].startswith("lusebench train-baseline --system mlp-gcc") and "--max-steps 3" in provenance["command"]
    assert main(["infer", "--checkpoint", str(run / "best.pt"), "--data", str(data), "--out", str(tmp_path / "s"),
                 "--no-progress"]) == 0
    assert (tmp_path / "s" / "doa.csv").is_file()


def test_run_names_say_what_differs(data, val, tmp_path):
    """Regression (issue 22): a 120-step run was named like the committed 1,500-step entry."""
    names = {}
    for label, overrides in (("a", {}), ("b", {"max_epochs": 2}), ("c", {"query_pairs": True}), ("d", {"lr": 5e-4})):
        best = train(_tiny("mlp-gcc", **overrides), tmp_path / label, val_data=val, progress=False)
        infer(best, data, tmp_path / f"{label}-sub", progress=False)
        names[label] = json.loads((tmp_path / f"{label}-sub" / "system.json").read_text())["name"]
    assert len(set(names.values())) == 4
    assert names["a"].startswith("mlp-gcc (tiny preset, batch size 2, epoch size 4, minicaps, 2 steps, CPU, cfg ")
    assert "query pairs" in names["c"] and "lr 0.0005" in names["d"]  # b differs from a by its hash alone


def _with_doa_logits(payload: dict, logits: torch.Tensor) -> dict:
    """The checkpoint with its DoA decoder's output fixed at ``sigmoid(logits)`` whatever the input."""
    state = payload["model"]["state_dict"]
    weights = [key for key in state if key.startswith("doa_decoder.layers.") and key.endswith(".weight")]
    last = max(weights, key=lambda key: int(key.split(".")[2]))
    state[last].zero_()
    state[last.replace(".weight", ".bias")].copy_(logits)
    return payload


def test_a_run_trained_with_absent_queries_says_absent_where_its_likelihood_is_flat(data, val, tmp_path):
    import pandas as pd

    from lusebench.benchmark.evaluate import evaluate

    best = train(_tiny("mlp-gcc", absent_share=0.5), tmp_path / "run", val_data=val, progress=False)
    payload = torch.load(best, weights_only=True)
    assert payload["absent_threshold"] == 0.5  # half the likelihood label's peak of 1
    peaked = torch.full((360,), -6.0)
    peaked[90] = 4.0  # 0.98 at 90 deg, 0.0025 elsewhere
    answers = {}
    for name, logits in (("flat", torch.full((360,), -2.0)), ("peaked", peaked)):  # flat: 0.12 everywhere
        torch.save(_with_doa_logits(payload, logits), tmp_path / f"{name}.pt")
        submission = infer(tmp_path / f"{name}.pt", data, tmp_path / name, progress=False)
        assert json.loads((submission / "system.json").read_text())["absent_threshold"] == 0.5
        answers[name] = pd.read_csv(submission / "doa.csv", keep_default_na=False)["azimuth_deg"].tolist()
    assert answers == {"flat": [""] * 4, "peaked": [90.0] * 4}
    results = evaluate(tmp_path / "flat", data, workers=1, progress=False, figures=False)
    overall = json.loads((results.folder / "results.json").read_text())["metrics"]["overall"]
    assert overall["false_absent_pct"]["mean"] == 100.0  # every target of this set is present
    assert "absent queries 50%" in json.loads((tmp_path / "flat" / "system.json").read_text())["name"]

    # Trained without absent queries (or before them: no key at all), the same flat likelihood is answered.
    plain = torch.load(train(_tiny("mlp-gcc"), tmp_path / "plain", val_data=val, progress=False), weights_only=True)
    assert plain["absent_threshold"] is None
    del plain["absent_threshold"]
    torch.save(_with_doa_logits(plain, torch.full((360,), -2.0)), tmp_path / "old.pt")
    submission = infer(tmp_path / "old.pt", data, tmp_path / "old", progress=False)
    assert "absent_threshold" not in json.loads((submission / "system.json").read_text())
    assert pd.read_csv(submission / "doa.csv")["azimuth_deg"].notna().all()


def test_infer_absent_threshold_overrides_the_checkpoints(data, val, tmp_path):
    import numpy as np
    import pandas as pd

    best = train(_tiny("mlp-gcc", absent_share=0.5), tmp_path / "run", val_data=val, progress=False)
    # none: every mixture answered, no threshold stated, and a name that says so.
    raw = infer(best, data, tmp_path / "none", progress=False, absent_threshold=None)
    system = json.loads((raw / "system.json").read_text())
    assert "absent_threshold" not in system and "never absent" in system["name"]
    assert pd.read_csv(raw / "doa.csv")["azimuth_deg"].notna().all()
    peaks = np.load(raw / "doa_likelihood.npy").max(axis=-1)
    assert np.unique(peaks).size == 4  # the tiny model's peaks differ by mixture, or this test says nothing
    low = np.sort(peaks)
    threshold = float((low[1] + low[2]) / 2)  # two mixtures under it, two over
    sub = infer(best, data, tmp_path / "chosen", progress=False, absent_threshold=threshold)
    system = json.loads((sub / "system.json").read_text())
    assert system["absent_threshold"] == threshold and f"absent under {threshold:g}" in system["name"]
    azimuths = pd.read_csv(sub / "doa.csv", keep_default_na=False)["azimuth_deg"].tolist()
    assert [cell == "" for cell in azimuths] == (peaks < threshold).tolist()
    assert np.array_equal(np.load(sub / "doa_likelihood.npy"), np.load(raw / "doa_likelihood.npy"))
    # The checkpoint's own threshold given explicitly is the default: same file, same name.
    infer(best, data, tmp_path / "stored", progress=False)
    infer(best, data, tmp_path / "same", progress=False, absent_threshold=0.5)
    assert (tmp_path / "stored" / "system.json").read_bytes() == (tmp_path / "same" / "system.json").read_bytes()


@pytest.mark.parametrize("value", ["0", "-0.5", "nan", "inf", "x", ""])
def test_a_bad_absent_threshold_is_one_line_and_writes_nothing(value, data, tmp_path, capsys):
    out = tmp_path / "sub"
    # Checked before the checkpoint is read: this one does not exist.
    err = _one_line_error(capsys, ["infer", "--checkpoint", str(tmp_path / "none.pt"), "--data", str(data),
                                   "--out", str(out), "--absent-threshold", value])
    assert "--absent-threshold must be a positive number or none" in err and not out.exists()


@pytest.mark.parametrize("value", ["0.3", "none"])
def test_an_absent_threshold_for_a_system_without_localization_is_one_line(value, data, val, tmp_path, capsys):
    best = train(_tiny("luseel-extract"), tmp_path / "run", val_data=val, progress=False)
    out = tmp_path / "sub"
    err = _one_line_error(capsys, ["infer", "--checkpoint", str(best), "--data", str(data), "--out", str(out),
                                   "--absent-threshold", value])
    assert "does not localize" in err and not out.exists()


@pytest.mark.parametrize("share", ["-0.1", "0.6", "nan"])
def test_a_bad_absent_share_is_one_line_and_writes_nothing(share, val, tmp_path, capsys):
    out = tmp_path / "run"
    err = _one_line_error(capsys, ["train-baseline", "--system", "mlp-gcc", "--preset", "tiny", "--sources", "2",
                                   "--absent-share", share, "--val-data", str(val), "--out", str(out)])
    assert "--absent-share must lie in [0, 0.5]" in err and not out.exists()
