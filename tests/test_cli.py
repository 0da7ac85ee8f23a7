import pytest

from lusebench import __version__
from lusebench.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_command_is_rejected(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2


def test_help_shows_every_default_marks_required_options_and_describes_every_command(capsys):
    import argparse

    from lusebench.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, command in commands.items():
        assert command.description, f"{name} has no description"
        text = " ".join(command.format_help().split())
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.dest} has no help"
            if action.option_strings and action.nargs != 0:
                helped = " ".join(command._get_formatter()._expand_help(action).split())
                assert "default" in helped or "required" in helped, f"{name} {action.option_strings[0]}: {helped}"
                assert helped.count("(required)") + helped.count("(default") <= 1, f"{name}: said twice: {helped}"
        if name == "infer":
            assert "--checkpoint CHECKPOINT a checkpoint written by train-baseline (required)" in text


def test_verbose_is_accepted_after_the_subcommand_too(tmp_path):
    from lusebench.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["systems", "-v"]).verbose is True
    assert parser.parse_args(["-v", "systems"]).verbose is True
    assert parser.parse_args(["systems"]).verbose is False


def _stated_defaults(command: str) -> dict[str, str]:
    """What each option's --help says its default is, by flag."""
    import argparse
    import re

    from lusebench.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    stated = {}
    for action in sub._actions:
        if action.option_strings and action.help:
            helped = " ".join(sub._get_formatter()._expand_help(action).split())
            found = re.search(r"\(default:? (.*?)\)(?=;|$|\s)", helped)
            if found:
                stated[action.option_strings[0]] = found.group(1)
    return stated


def test_help_defaults_are_the_configs_defaults():
    """Regression (issue 22): --help said "(default: none)" for values a preset sets, and the
    description gave the paper's plateau rule for every preset."""
    import inspect

    from lusebench.baselines.train import TrainConfig
    from lusebench.benchmark.evaluate import evaluate
    from lusebench.replicate import ReplicateConfig
    from lusebench.simulation.config import SimulationConfig

    simulate = _stated_defaults("simulate")
    config = SimulationConfig()
    for flag, field in (("--sources", "num_sources"), ("--num", "num_mixtures"), ("--seed", "seed"),
                        ("--duration", "duration_s"), ("--sample-rate", "sample_rate")):
        assert float(simulate[flag]) == getattr(config, field), flag
    assert simulate["--split"] == config.split and simulate["--corpus"].split(";")[0] == config.corpus

    train = _stated_defaults("train-baseline")
    fields = {"--batch-size": "batch_size", "--epoch-size": "epoch_mixtures", "--lr": "lr",
              "--warmup-steps": "warmup_steps", "--workers": "num_workers", "--max-epochs": "max_epochs",
              "--select-on": "select_on", "--query-pairs": "query_pairs"}
    for flag, field in fields.items():
        text = train[flag]
        assert text.startswith("the preset's: "), flag
        for part in text.removeprefix("the preset's: ").split(", "):
            preset, value = part.split(" ")
            expected = getattr(TrainConfig.for_preset(preset, system="luseel"), field)
            shown = {"none": None, "on": True, "off": False}.get(value, value)
            if isinstance(expected, (int, float)) and not isinstance(expected, bool):
                shown = float(shown)
            assert shown == expected, f"{flag} {preset}: help {value}, config {expected}"
    assert int(train["--sources"]) == TrainConfig().num_sources and int(train["--seed"]) == TrainConfig().seed
    assert train["--doa-label"] == TrainConfig().doa_label and train["--preset"] == TrainConfig().preset

    replicate = _stated_defaults("replicate")
    assert int(replicate["--sources"]) == ReplicateConfig().num_sources == TrainConfig().num_sources
    assert replicate["--preset"] == ReplicateConfig().preset == TrainConfig().preset  # one default per concept
    workers = inspect.signature(evaluate).parameters["workers"].default
    assert int(replicate["--eval-workers"]) == ReplicateConfig().eval_workers == workers
    assert int(_stated_defaults("evaluate")["--workers"]) == workers == int(_stated_defaults("demo")["--workers"])
    assert train["--corpus"] == TrainConfig().corpus and replicate["--corpus"] == ReplicateConfig().corpus


def _fixed_sets_corpus() -> str:
    """The corpus the fixed test and val sets (test-Nsrc, val-Nsrc and their twins) are drawn from."""
    import re

    from lusebench.simulation.config import BENCHMARK_SETS

    corpora = {fixed.corpus for name, fixed in BENCHMARK_SETS.items() if re.fullmatch(r"(test|val)-\d+src(-.+)?", name)}
    assert len(corpora) == 1, corpora
    return corpora.pop()


@pytest.mark.parametrize("preset", ["paper", "small", "tiny"])
def test_train_baseline_trains_on_the_fixed_sets_corpus_by_default(preset, monkeypatch, tmp_path):
    """Regression (issue 28): train-baseline trained on minicaps unless told otherwise, while every fixed
    set it is scored on is drawn from debcaps."""
    import lusebench.baselines.train as training

    asked = []
    monkeypatch.setattr(training, "train", lambda config, out, **kwargs: asked.append(config) or out / "best.pt")
    assert main(["train-baseline", "--system", "luseel", "--preset", preset, "--out", str(tmp_path / "run")]) == 0
    assert asked[0].corpus == _fixed_sets_corpus()
    assert main(["train-baseline", "--system", "luseel", "--preset", preset, "--corpus", "minicaps",
                 "--out", str(tmp_path / "run")]) == 0
    assert asked[1].corpus == "minicaps"  # still there by name


def test_simulate_and_replicate_draw_from_the_fixed_sets_corpus_by_default(monkeypatch, tmp_path):
    import lusebench.replicate as replication
    from lusebench.simulation import writer

    rendered, replicated = [], []
    monkeypatch.setattr(writer, "simulate", lambda config, out, **kwargs: rendered.append(config))
    monkeypatch.setattr(replication, "replicate", lambda config, out, **kwargs: replicated.append(config) or out)
    assert main(["simulate", "--num", "2", "--out", str(tmp_path / "set")]) == 0
    assert main(["replicate", "--out", str(tmp_path / "table")]) == 0
    assert rendered[0].corpus == replicated[0].corpus == _fixed_sets_corpus()


def test_no_help_says_none_for_a_value_that_is_set_elsewhere():
    # "none" is true only where nothing is set: no preset value, no file, no limit.
    assert [flag for flag, text in _stated_defaults("train-baseline").items() if text == "none"] == ["--text-model"]
    assert [flag for flag, text in _stated_defaults("replicate").items() if text == "none"] == ["--test-data"]


def test_leaderboard_results_are_optional_in_its_help(capsys):
    with pytest.raises(SystemExit):
        main(["leaderboard", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: every committed entry" in text and "(required)" not in text


@pytest.mark.parametrize("quiet", [False, True])
def test_no_progress_silences_the_loading_weights_bar(quiet):
    """Regression (issue 22): transformers drew its "Loading weights" bar under --no-progress."""
    import os
    import subprocess
    import sys

    from transformers import core_model_loading
    from transformers.utils import logging as transformers_logging

    # from_pretrained draws the bar with transformers' own tqdm, which reads the switch when
    # transformers is imported: drawing one with it stands for loading a model, without torch's and
    # the model's seconds of import that made this test time out on a loaded machine.
    assert core_model_loading.tqdm is transformers_logging.tqdm
    code = ("from lusebench.cli import _no_library_progress_bars; _no_library_progress_bars()\n" if quiet else "")
    code += "from transformers.utils.logging import tqdm; list(tqdm(range(3), desc='Loading weights'))"
    # Without the switch an in-process `main(... --no-progress)` of another test left in os.environ.
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert ("Loading weights" in run.stderr) != quiet
