import json

from lusebench.cli import main


def test_demo_runs_the_whole_loop(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--num", "6", "--duration", "1", "--workers", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert str(tmp_path / "site" / "index.html") in printed
    scores = {}
    for kind in ("mixture", "oracle", "random"):
        results = json.loads((tmp_path / "submissions" / kind / "results" / "results.json").read_text())
        scores[kind] = results["metrics"]["overall"]
    assert abs(scores["mixture"]["si_snri_db"]["mean"]) < 1e-6
    assert scores["oracle"]["si_snri_db"]["mean"] > 50.0
    assert scores["oracle"]["doa_mae_deg"]["mean"] == 0.0
    board = (tmp_path / "site" / "leaderboard.md").read_text()
    for name in ("reference-oracle", "reference-mixture", "reference-random", "reported in the paper"):
        assert name in board
    assert (tmp_path / "submissions" / "oracle" / "results" / "figures" / "fig4_mae_vs_si_snri.png").stat().st_size > 0
