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
