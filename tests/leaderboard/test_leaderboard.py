"""Leaderboard without a browser: reading results, tables, ranking, best values, Markdown and HTML."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lusebench.cli import main
from lusebench.errors import LusebenchError
from lusebench.leaderboard import COLUMNS, build_leaderboard, build_tables, find_results, load_paper_table, load_results
from lusebench.leaderboard import build as build_module
from lusebench.leaderboard.paper import PAPER_PROVENANCE, PAPER_TABLE_PATH
from lusebench.leaderboard.results import Stat, parse_results
from lusebench.testing.results import fake_results, write_fake_results

REPO = Path(__file__).resolve().parents[2]
OTHER_FINGERPRINT = "ab" * 32


def _table_cells(paper, count):
    return [
        (row.system_number, row.system, {key: stat.mean for key, stat in row.values.items()})
        for row in paper.rows_by_num_sources[count]
    ]


# ---------------------------------------------------------------- the paper's Table 1


def test_paper_table_holds_the_papers_numbers():
    paper = load_paper_table()
    assert paper.provenance == PAPER_PROVENANCE == "reported in the paper (AudioCaps, 4x A800)"
    assert paper.test_set == "AudioCaps (paper)"
    rows = {row.system_number: row for group in paper.rows_by_num_sources.values() for row in group}
    assert sorted(rows) == list(range(1, 11))
    assert [r.system_number for r in paper.rows_by_num_sources[2]] == [1, 2, 3, 4, 5]
    assert [r.system_number for r in paper.rows_by_num_sources[3]] == [6, 7, 8, 9, 10]
    means = {n: [rows[n].values[c.key].mean for c in COLUMNS] for n in (5, 9)}
    assert means[5] == [20.3, 21.6, 89.9, 7.0]
    assert means[9] == [13.3, 14.2, 75.1, 17.2]
    assert [rows[n].system for n in range(1, 6)] == ["T-HTDemucs", "MLP-GCC", "LuSeeL†", "LuSeeL°", "LuSeeL"]
    # "-" in the paper: T-HTDemucs does no localization, MLP-GCC no extraction.
    assert set(rows[1].values) == {"si_snri_db", "sdri_db"} and rows[1].channels == 1
    assert set(rows[7].values) == {"doa_accuracy_pct", "doa_mae_deg"} and rows[7].gcc_phat
    assert rows[7].values["doa_mae_deg"].mean == 65.7 and rows[6].values["sdri_db"].mean == 7.7
    assert rows[4].tasks == ("extraction", "localization") and not rows[4].gcc_phat


def test_repository_leaderboard_folder_shows_the_packaged_paper_table():
    assert (REPO / "leaderboard" / "paper_table1.json").read_bytes() == PAPER_TABLE_PATH.read_bytes()


def test_unlabelled_paper_table_is_refused(tmp_path):
    data = json.loads(PAPER_TABLE_PATH.read_text())
    data["provenance"] = "measured"
    path = tmp_path / "paper.json"
    path.write_text(json.dumps(data))
    with pytest.raises(LusebenchError, match="provenance"):
        load_paper_table(path)


# ---------------------------------------------------------------- reading results files


def test_results_file_round_trips(tmp_path):
    path = write_fake_results(tmp_path / "a", system="luseel", num_sources=(2, 3), si_snri_db=12.0, figures=["fig2"])
    results = load_results(path)
    assert results.system.name == "luseel" and results.system.tasks == ("extraction", "localization")
    assert results.dataset.num_sources == (2, 3) and results.dataset.condition == "anechoic"
    # The fake shifts each source count's block by (n - 2): the reader must keep them apart.
    assert results.metrics[2]["si_snri_db"].mean == 12.0 and results.metrics[3]["si_snri_db"].mean == 13.0
    assert results.metrics[2]["si_snri_db"].ci95 == 0.5 and results.metrics[2]["si_snri_db"].n == 50
    assert results.created_utc.year == 2026 and results.created_utc.utcoffset().total_seconds() == 0
    assert [f.name for f in results.figures] == ["fig2.png"]


def test_only_the_metrics_of_claimed_tasks_are_read(tmp_path):
    data = fake_results(tasks=["extraction"])
    data["metrics"]["overall"]["doa_mae_deg"] = {"mean": 1.0, "ci95": 0.1, "n": 100}
    results = parse_results(data, tmp_path / "results.json")
    assert set(results.metrics[3]) == {"si_snri_db", "sdri_db"}


@pytest.mark.parametrize("version", [3, 0, "1", None])
def test_unknown_schema_version_is_rejected(tmp_path, version):
    data = fake_results()
    data["schema_version"] = version
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    with pytest.raises(LusebenchError) as error:
        load_results(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    assert f"schema_version {json.dumps(version)}" in message and "reads schema_version 1 and 2" in message


def test_missing_schema_version_is_rejected(tmp_path):
    data = fake_results()
    del data["schema_version"]
    with pytest.raises(LusebenchError, match="no schema_version"):
        parse_results(data, tmp_path / "results.json")


def test_invalid_json_is_rejected_with_its_position(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{"schema_version": 1,\n "system": }')
    with pytest.raises(LusebenchError, match=r"not valid JSON .*line 2") as error:
        load_results(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_every_problem_of_a_malformed_file_is_reported_at_once(tmp_path):
    data = fake_results()
    del data["system"]["name"]
    data["dataset"]["fingerprint"] = "not-a-hash"
    data["system"]["gcc_phat"] = "yes"
    data["metrics"]["by_num_sources"]["3"]["doa_mae_deg"]["mean"] = float("nan")
    with pytest.raises(LusebenchError) as error:
        parse_results(data, tmp_path / "results.json")
    message = str(error.value)
    assert message.startswith(f"malformed results file {tmp_path / 'results.json'}: ") and "\n" not in message
    assert "system.name is missing" in message
    assert "dataset.fingerprint should be 64 lowercase hex digits" in message
    assert "system.gcc_phat should be a boolean" in message
    assert "metrics.by_num_sources.3.doa_mae_deg.mean should be a finite number" in message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["metrics"]["by_num_sources"]["3"].pop("si_snri_db"), "by_num_sources.3.si_snri_db is missing"),
        (lambda d: d["metrics"]["by_num_sources"].pop("2"), "metrics.by_num_sources.2 is missing"),
        (lambda d: d["system"].update(tasks=["separation"]), "system.tasks should be a non-empty list of tasks"),
        (lambda d: d.update(created_utc="yesterday"), "created_utc is not an ISO 8601 time"),
        (lambda d: d.pop("dataset"), "results.dataset is missing"),
        (lambda d: d["dataset"].update(num_sources=[]), "dataset.num_sources should be a non-empty list"),
    ],
)
def test_malformed_fields_are_rejected(tmp_path, edit, expected):
    data = fake_results(num_sources=(2, 3))
    edit(data)
    with pytest.raises(LusebenchError, match=re.escape(expected)):
        parse_results(data, tmp_path / "results.json")


def test_top_level_must_be_an_object(tmp_path):
    with pytest.raises(LusebenchError, match="top level should be a JSON object"):
        parse_results([1, 2], tmp_path / "results.json")


def test_find_results_searches_folders_and_rejects_bad_paths(tmp_path):
    a = write_fake_results(tmp_path / "runs" / "a")
    b = write_fake_results(tmp_path / "runs" / "deep" / "b")
    assert find_results([tmp_path / "runs", a]) == [a.resolve(), b.resolve()]
    with pytest.raises(LusebenchError, match="results path not found"):
        find_results([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(LusebenchError, match="no results.json under"):
        find_results([tmp_path / "empty"])


# ---------------------------------------------------------------- tables


def _load(tmp_path, name, **kwargs):
    return load_results(write_fake_results(tmp_path / name, system=name, **kwargs))


def test_measured_rows_are_ranked_and_best_values_marked(tmp_path):
    entries = [
        _load(tmp_path, "weak", si_snri_db=6.0, sdri_db=14.0, doa_mae_deg=30.0),
        _load(tmp_path, "strong", si_snri_db=12.0, sdri_db=13.0, doa_mae_deg=40.0),
        _load(tmp_path, "locator", tasks=["localization"], doa_accuracy_pct=70.0, doa_mae_deg=10.0),
    ]
    (table,) = build_tables(entries)
    assert [row.system for row in table.rows] == ["strong", "weak", "locator"]
    best = {c.key: [row.system for row in table.rows if table.is_best(row, c)] for c in COLUMNS}
    assert best == {
        "si_snri_db": ["strong"],
        "sdri_db": ["weak"],
        "doa_accuracy_pct": ["locator"],
        "doa_mae_deg": ["locator"],  # lower is better
    }


def test_values_equal_at_display_precision_are_both_best(tmp_path):
    entries = [_load(tmp_path, "a", si_snri_db=12.04), _load(tmp_path, "b", si_snri_db=11.96)]
    (table,) = build_tables(entries)
    assert all(table.is_best(row, COLUMNS[0]) for row in table.rows)


def test_different_test_sets_and_conditions_get_separate_tables(tmp_path):
    entries = [
        _load(tmp_path, "a"),
        _load(tmp_path, "b", fingerprint=OTHER_FINGERPRINT),
        _load(tmp_path, "c", condition="reverberant"),
        _load(tmp_path, "d"),
    ]
    tables = build_tables(entries)
    assert sorted(tuple(sorted(r.system for r in t.rows)) for t in tables) == [("a", "d"), ("b",), ("c",)]
    titles = [table.title for table in tables]
    assert len(set(titles)) == 3 and any(OTHER_FINGERPRINT[:12] in title for title in titles)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["0" * 64, "1" * 64, "f" * 64]), st.sampled_from(["anechoic", "reverberant"]),
                  st.sets(st.integers(2, 4), min_size=1)),
        min_size=1, max_size=8,
    )
)
def test_no_table_mixes_test_sets(tmp_path_factory, specs):
    folder = tmp_path_factory.mktemp("entries")
    entries = [
        parse_results(
            fake_results(f"s{i}", fingerprint=fp, condition=cond, num_sources=sorted(counts)), folder / f"{i}.json"
        )
        for i, (fp, cond, counts) in enumerate(specs)
    ]
    tables = build_tables(entries, load_paper_table())
    placed = []
    for table in tables:
        if table.reported_in_paper:
            assert all(row.results is None for row in table.rows)
            continue
        for row in table.rows:
            dataset = row.results.dataset
            assert (dataset.fingerprint, dataset.condition) == (table.fingerprint, table.condition)
            placed.append((row.system, table.num_sources))
    # Every (system, source count) appears in exactly one table.
    assert sorted(placed) == sorted((f"s{i}", n) for i, (_, _, counts) in enumerate(specs) for n in counts)
    assert [t.num_sources for t in tables] == sorted(t.num_sources for t in tables)


def test_paper_tables_sit_beside_measured_tables_of_the_same_source_count(tmp_path):
    tables = build_tables([_load(tmp_path, "a", num_sources=(3,))], load_paper_table())
    assert [(t.num_sources, bool(t.reported_in_paper)) for t in tables] == [(2, True), (3, True), (3, False)]


# ---------------------------------------------------------------- files written


@pytest.fixture
def board(tmp_path):
    write_fake_results(tmp_path / "res" / "luseel", system="luseel", si_snri_db=12.34, figures=["fig2"])
    write_fake_results(
        tmp_path / "res" / "htdemucs", system="<b>t|htdemucs</b>", tasks=["extraction"], si_snri_db=6.0,
        channels=1, gcc_phat=False, link="javascript:alert(1)",
    )
    return build_leaderboard([tmp_path / "res"], tmp_path / "site")


def test_markdown_shows_paper_and_measured_tables(board):
    text = board.markdown.read_text()
    assert text.count("*reported in the paper (AudioCaps, 4x A800)*") == 2
    assert "| 5 | LuSeeL | Both | ✓ | 2 | **20.3** | **21.6** | **89.9** | **7.0** |" in text
    assert "| 9 | LuSeeL° | Both | ✗ | 2 | **13.3** | **14.2** | 75.1 | 17.2 |" in text
    best_row = "| 1 | luseel | Both | ✓ | 2 | **12.3 ± 0.5** | **11.0 ± 0.5** | **50.0 ± 0.5** | **20.0 ± 0.5** |"
    assert best_row in text
    # A stranger's name is text, never HTML: a viewer rendering the Markdown shows it literally.
    assert "| 2 | &lt;b&gt;t\\|htdemucs&lt;/b&gt; | Extraction | ✗ | 1 | 6.0 ± 0.5 | **11.0 ± 0.5** | - | - |" in text
    assert "<b>" not in text
    assert "lusebench 0.1.0, commit 0123456789ab, test set `" + "0" * 64 + "`, scored 2026-11-28" in text
    assert "javascript:" not in text
    (figure_link,) = re.findall(r"\[fig2\]\(([^)]+)\)", text)
    assert (board.markdown.parent / figure_link).read_bytes()[:4] == b"\x89PNG"


def test_html_is_self_contained_and_escaped(board):
    page = board.html.read_text()
    assert "<script src" not in page and "<link" not in page and "@import" not in page
    # Figures are files beside the page, loaded when their cell is opened, not inlined.
    sources = re.findall(r'src="([^"]+)"', page)
    assert sources and all(src.startswith("figures/") for src in sources) and "base64" not in page
    assert all((board.html.parent / src).read_bytes()[:4] == b"\x89PNG" for src in sources)
    links = re.findall(r'href="([^"]+)"', page)
    assert [link for link in links if not link.startswith("figures/")] == ["https://example.org/fake-system"]  # javascript: dropped
    assert "<b>t|htdemucs</b>" not in page and "&lt;b&gt;t|htdemucs&lt;/b&gt;" in page
    assert page.count('<table class="leaderboard paper"') == 2
    assert page.count('<table class="leaderboard measured"') == 1
    assert page.count("reported in the paper (AudioCaps, 4x A800)") == 2
    assert '<td class="num best" data-sort="12.34">12.3 ± 0.5</td>' in page
    assert '<td class="num" data-sort="">-</td>' in page


def test_written_files_are_world_readable(board):
    assert board.html.stat().st_mode & 0o777 == 0o644 and board.markdown.stat().st_mode & 0o777 == 0o644


def test_no_results_uses_the_entries_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(build_module, "DEFAULT_ENTRIES", tmp_path / "entries")
    tables = build_leaderboard([], tmp_path / "site").tables
    assert [t.reported_in_paper is not None for t in tables] == [True, True]
    write_fake_results(tmp_path / "entries" / "luseel-3src", system="luseel")
    tables = build_leaderboard([], tmp_path / "site").tables
    assert [row.system for row in tables[-1].rows] == ["luseel"]


def test_cli_writes_the_site(tmp_path, capsys):
    results = write_fake_results(tmp_path / "res", system="luseel")
    assert main(["leaderboard", str(results), "--out", str(tmp_path / "site"), "--no-paper"]) == 0
    assert "1 tables written" in capsys.readouterr().out
    assert "AudioCaps (paper)" not in (tmp_path / "site" / "leaderboard.md").read_text()


def test_cli_rejects_a_bad_file_in_one_line(tmp_path, capsys):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({**fake_results(), "schema_version": 7}))
    assert main(["leaderboard", str(path), "--out", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lusebench leaderboard: error: unknown results format" in err
    assert not (tmp_path / "site").exists()


def test_what_the_evaluator_writes_for_unknowns_is_accepted(tmp_path):
    # Pins the evaluator's real output: gcc_phat null (system.json silent), empty link,
    # parameters null, and mean null with n 0 for a metric no item could be scored on.
    data = fake_results(gcc_phat=None, link="")
    data["system"]["parameters"] = None
    data["metrics"]["by_num_sources"]["3"]["doa_mae_deg"] = {"mean": None, "ci95": None, "n": 0}
    results = parse_results(data, tmp_path / "results.json")
    assert results.system.gcc_phat is None and results.system.link == ""
    assert "doa_mae_deg" not in results.metrics[3] and "si_snri_db" in results.metrics[3]
    (table,) = build_tables([results])
    assert table.best(COLUMNS[3]) is None


def test_intervals_show_their_ends_when_asymmetric_and_no_value_reads_minus_zero():
    from lusebench.leaderboard.render import _stat_text, format_fixed

    assert format_fixed(-0.04) == "0.0" and format_fixed(-0.06) == "-0.1" and format_fixed(-1e-12, 2) == "0.00"
    assert _stat_text(Stat(mean=2.1, ci95=0.905, n=1000, low=1.38, high=3.19)) == "2.1 [1.4, 3.2]"
    assert _stat_text(Stat(mean=5.0, ci95=0.5, n=10, low=4.5, high=5.5)) == "5.0 ± 0.5"
    assert _stat_text(Stat(mean=5.0, ci95=0.5, n=10)) == "5.0 ± 0.5"  # a results file from before the ends
    assert _stat_text(Stat(mean=-0.01, ci95=None, n=1)) == "0.0"
    # The interval over target clips follows the item one, in the same notation.
    by_clip = Stat(mean=-1.43, ci95=0.26, n=1000, low=-1.69, high=-1.17, clips_low=-2.5, clips_high=-0.36, clips=33)
    assert _stat_text(by_clip) == "-1.4 ± 0.3 (clips ± 1.1)"
    cut = Stat(mean=2.0, ci95=1.0, n=100, low=1.0, high=3.0, clips_low=0.0, clips_high=5.5, clips=20)
    assert _stat_text(cut) == "2.0 ± 1.0 (clips [0.0, 5.5])"
    assert _stat_text(Stat(mean=5.0, ci95=0.5, n=10, low=4.5, high=5.5, clips_low=3.0, clips_high=7.0, clips=5)) == (
        "5.0 ± 0.5 (clips ± 2.0)"
    )


def test_the_by_clip_interval_is_read_checked_and_shown(tmp_path):
    data = fake_results(num_sources=(2,))
    data["metrics"]["by_num_sources"]["2"]["si_snri_db"].update(ci95_clips_low=8.0, ci95_clips_high=12.0, clips=33)
    stat = parse_results(data, tmp_path / "results.json").metrics[2]["si_snri_db"]
    assert (stat.clips_low, stat.clips_high, stat.clips) == (8.0, 12.0, 33)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "results.json").write_text(json.dumps(data))
    board = build_leaderboard([tmp_path / "a"], tmp_path / "site")
    assert "10.0 ± 0.5 (clips ± 2.0)" in board.markdown.read_text()
    assert "(clips ± 2.0)" in board.html.read_text() and "treats the target clip as the unit" in board.html.read_text()
    data["metrics"]["by_num_sources"]["2"]["si_snri_db"].update(clips=-1, ci95_clips_low="low")
    with pytest.raises(LusebenchError) as error:
        parse_results(data, tmp_path / "results.json")
    assert "si_snri_db.ci95_clips_low should be a finite number" in str(error.value)
    assert "si_snri_db.clips should be a non-negative integer" in str(error.value)


def test_page_states_its_rank_rule(tmp_path):
    from lusebench.leaderboard.tables import RANK_RULE

    board = build_leaderboard([], tmp_path / "site")
    assert RANK_RULE in board.markdown.read_text()
    assert "ranked by SI-SNRi (higher first)" in board.html.read_text()


def test_committed_entries_ship_inside_the_package():
    from lusebench.leaderboard.build import DEFAULT_ENTRIES

    # pyproject's package-data covers lusebench/leaderboard/entries/**, so a wheel carries them.
    assert DEFAULT_ENTRIES.parts[-3:] == ("lusebench", "leaderboard", "entries")
    assert len(list(DEFAULT_ENTRIES.rglob("results.json"))) >= 6


def test_only_regular_png_figures_of_the_entry_are_published(tmp_path):
    # A figure symlinked to /etc/passwd was inlined into index.html.
    entry = write_fake_results(tmp_path / "res" / "a", system="a", figures=["fig2"]).parent
    (entry / "figures" / "fig3.png").symlink_to("/etc/passwd")
    (entry / "figures" / "fig4.png").write_bytes(b"<svg onload=alert(1)>")
    board = build_leaderboard([tmp_path / "res"], tmp_path / "site", include_paper=False)
    page = board.html.read_text()
    assert re.findall(r'src="([^"]+)"', page) == [re.search(r'src="(figures/[0-9a-f]{16}/fig2\.png)"', page)[1]]
    published = sorted(p.name for p in (tmp_path / "site" / "figures").rglob("*") if p.is_file())
    assert published == ["fig2.png"] and "root:" not in page


def test_the_schema_refuses_what_evaluate_refuses(tmp_path):
    data = fake_results()
    data["system"]["channels"] = True  # accepted by evaluate and refused here before one schema served both
    with pytest.raises(LusebenchError, match="system.channels should be 1 or 2"):
        parse_results(data, tmp_path / "results.json")
    deep = tmp_path / "deep" / "results.json"
    deep.parent.mkdir()
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(LusebenchError, match="nested too deeply"):
        build_leaderboard([deep], tmp_path / "site")


# ---------------------------------------------------------------- the tracks beyond Table 1


def test_track_columns_follow_the_papers_where_a_row_has_them(tmp_path):
    v2 = fake_results("joint-system")
    v2["schema_version"] = 2
    for block in (v2["metrics"]["overall"], *v2["metrics"]["by_num_sources"].values()):
        block["joint_success_pct"] = {"mean": 42.0, "ci95": 5.0, "n": 100, "ci95_low": 37.0, "ci95_high": 47.0}
        block["doa_front_back_pct"] = {"mean": 12.5, "ci95": 3.0, "n": 100}
    old = fake_results("old-system")  # schema version 1: no track keys, an empty cell
    one_task = fake_results("extractor", tasks=["extraction"])
    one_task["metrics"]["overall"]["joint_success_pct"] = {"mean": 99.0, "ci95": 1.0, "n": 100}
    paths = []
    for name, doc in (("a", v2), ("b", old), ("c", one_task)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(doc))
        paths.append(tmp_path / name / "results.json")
    board = build_leaderboard(paths, tmp_path / "out")
    measured = [table for table in board.tables if not table.reported_in_paper]
    assert [c.key for c in measured[0].columns] == [c.key for c in COLUMNS] + ["joint_success_pct", "doa_front_back_pct"]
    # The paper's table keeps the paper's four columns.
    assert all(table.columns == COLUMNS for table in board.tables if table.reported_in_paper)
    rows = {row.system: row for row in measured[0].rows}
    assert "joint_success_pct" not in rows["extractor"].values  # a one-task system has no joint score
    assert "joint_success_pct" not in rows["old-system"].values
    markdown = board.markdown.read_text()
    header = next(line for line in markdown.splitlines() if "Joint (%)" in line)
    assert header.index("MAE (deg)") < header.index("Joint (%)") < header.index("Front-back conf. (%)")
    assert "**42.0 ± 5.0**" in markdown
    assert "Joint (%)" in board.html.read_text()


def test_no_two_rows_of_a_table_render_alike(tmp_path):
    """Regression (issue 22): a user's reference-oracle results beside the committed ones made two
    rows named reference-oracle, at ranks 1 and 2, that nothing told apart."""
    paths = [
        write_fake_results(tmp_path / "entries" / "reference-oracle-3src", system="reference-oracle"),
        write_fake_results(tmp_path / "mine" / "results", system="reference-oracle"),
        write_fake_results(tmp_path / "theirs" / "results", system="reference-oracle"),
        write_fake_results(tmp_path / "theirs" / "luseel", system="luseel", si_snri_db=1.0),
    ]
    (table,) = build_tables([load_results(p) for p in paths])
    names = sorted(row.system for row in table.rows)
    assert names == ["luseel", "reference-oracle [mine/results]", "reference-oracle [reference-oracle-3src]",
                     "reference-oracle [theirs/results]"]
    board = build_leaderboard(paths, tmp_path / "site", include_paper=False)
    rows = [line for line in board.markdown.read_text().splitlines() if line.startswith("|") and "reference-oracle" in line]
    assert len(rows) == 3 and len(set(rows)) == 3


def test_results_of_other_sets_are_ranked_apart_and_said_so(tmp_path, caplog):
    paths = [write_fake_results(tmp_path / "a", system="a"),
             write_fake_results(tmp_path / "b", system="b", fingerprint=OTHER_FINGERPRINT)]
    board = build_leaderboard(paths, tmp_path / "site", include_paper=False)
    assert len(board.tables) == 2
    assert "2 different anechoic test sets with 3 sources" in caplog.text and "never together" in caplog.text


def test_figures_take_committed_entries_by_name(tmp_path, capsys):
    """Regression (issue 22): the committed entries had no items.csv, so `figures` refused them."""
    from lusebench.leaderboard.build import DEFAULT_ENTRIES

    names = ["debcaps/reference-oracle-2src", "debcaps/reference-random-2src", "debcaps/small-mlp-gcc-2src"]
    for name in names:
        assert (DEFAULT_ENTRIES / name / "items.csv.gz").is_file() and (DEFAULT_ENTRIES / name / "provenance.json").is_file()
    assert main(["figures", *names, "--out", str(tmp_path / "figs")]) == 0
    assert (tmp_path / "figs" / "fig3_doa_mae_by_separation.png").is_file()
    assert main(["figures", "reference-oracle-2src", "reference-oracle-3src", "--out", str(tmp_path / "mixed")]) == 2
    assert "--allow-mixed" in capsys.readouterr().err


def test_entry_names_never_lead_out_of_the_entries():
    from lusebench.leaderboard.build import DEFAULT_ENTRIES, entry_or_path

    assert entry_or_path(Path("debcaps/small-luseel-2src")) == DEFAULT_ENTRIES / "debcaps" / "small-luseel-2src"
    for name in ("debcaps/../debcaps/small-luseel-2src", "../entries/debcaps", "/debcaps/small-luseel-2src"):
        assert entry_or_path(Path(name)) == Path(name)


def test_every_committed_entry_records_how_it_was_made():
    from lusebench.leaderboard.build import DEFAULT_ENTRIES

    entries = sorted(path.parent for path in DEFAULT_ENTRIES.rglob("results.json"))
    assert entries
    for entry in entries:
        record = json.loads((entry / "provenance.json").read_text())
        assert record["commands"] and all(c.startswith("lusebench ") for c in record["commands"]), entry.name
        assert (entry / "items.csv.gz").is_file(), entry.name
        if "training" in record:
            assert (entry / "metrics.jsonl").is_file() and record["training"]["git_commit"], entry.name


def test_every_trained_entry_names_a_commit_of_this_history():
    """Regression (issue 22): entries recorded commits of a branch rebased before it landed, which
    no clone holds, so nobody could re-run them as recorded. Needs a git checkout (skipped in a wheel)."""
    import shutil
    import subprocess

    from lusebench.leaderboard.build import DEFAULT_ENTRIES

    root = Path(__file__).resolve().parents[2]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    if subprocess.run(["git", "-C", str(root), "rev-parse", "--is-shallow-repository"], capture_output=True,
                      text=True).stdout.strip() == "true":
        pytest.skip("a shallow clone holds no history to check against")
    for path in sorted(DEFAULT_ENTRIES.rglob("provenance.json")):
        record = json.loads(path.read_text())
        for made in [record.get("training", {}), record.get("made_with", {})]:
            commit = made.get("git_commit")
            if commit:
                ancestor = subprocess.run(["git", "-C", str(root), "merge-base", "--is-ancestor", commit, "HEAD"],
                                          capture_output=True)
                assert ancestor.returncode == 0, f"{path.parent.name}: {commit} is not in this history"


# ---------------------------------------------------------------- the unseen-listener track


def test_a_system_scored_on_both_heads_shows_both_side_by_side(tmp_path, caplog):
    from lusebench.leaderboard.tables import UNSEEN_HEAD_COLUMNS, UNSEEN_HEAD_TWINS

    seen, unseen = next(iter(UNSEEN_HEAD_TWINS.items()))
    both = dict(num_sources=(2,), fingerprint=seen)
    paths = [
        write_fake_results(tmp_path / "a-seen", system="a", si_snri_db=8.0, doa_accuracy_pct=60.0, doa_mae_deg=10.0, **both),
        write_fake_results(tmp_path / "a-unseen", system="a", num_sources=(2,), fingerprint=unseen,
                           si_snri_db=5.0, doa_accuracy_pct=30.0, doa_mae_deg=25.0),
        # Scored on the seen-head set only: no unseen-head figures, and no column made up for it.
        write_fake_results(tmp_path / "b-seen", system="b", si_snri_db=9.0, **both),
        # The same figures on another set (not the twin): never paired.
        write_fake_results(tmp_path / "b-other", system="b", num_sources=(2,), fingerprint=OTHER_FINGERPRINT),
    ]
    board = build_leaderboard(paths, tmp_path / "site", include_paper=False)
    tables = {table.fingerprint: table for table in board.tables}
    assert set(tables) == {seen, unseen, OTHER_FINGERPRINT}  # three sets, never ranked together
    table = tables[seen]
    keys = [c.key for c in table.columns]
    assert keys == [c.key for c in COLUMNS] + [c.key for c in UNSEEN_HEAD_COLUMNS]
    rows = {row.system: row for row in table.rows}
    assert [row.system for row in table.rows] == ["b", "a"]  # ranked on the seen-head figures
    assert {k: rows["a"].values[k].mean for k in keys[4:]} == {
        "unseen_head.si_snri_db": 5.0, "unseen_head.doa_accuracy_pct": 30.0, "unseen_head.doa_mae_deg": 25.0}
    assert not any(k.startswith("unseen_head.") for k in rows["b"].values)
    # The twin's own table and the other set's hold their figures only.
    assert all(table.columns == COLUMNS for fp, table in tables.items() if fp != seen)
    markdown = board.markdown.read_text()
    header = next(line for line in markdown.splitlines() if "SI-SNRi unseen head (dB)" in line)
    assert header.index("MAE (deg)") < header.index("SI-SNRi unseen head (dB)") < header.index("MAE unseen head (deg)")
    line_a = next(line for line in markdown.splitlines() if line.startswith("| 2 | a |"))
    line_b = next(line for line in markdown.splitlines() if line.startswith("| 1 | b |"))
    assert line_a.endswith("| **5.0 ± 0.5** | **30.0 ± 0.5** | **25.0 ± 0.5** |")  # the only ones: best
    assert line_b.endswith("| - | - | - |")
    page = board.html.read_text()
    assert "SI-SNRi unseen head (dB)" in page and "Accuracy unseen head (%)" in page and "unseen-head twin" in page
    # The twin is another set by design: no warning that results landed in tables of their own for it.
    assert ", ".join(sorted(fp[:12] for fp in (seen, unseen))) not in caplog.text


def test_two_results_of_one_name_on_a_set_are_not_paired_with_its_twin(tmp_path):
    from lusebench.leaderboard.tables import UNSEEN_HEAD_TWINS

    seen, unseen = next(iter(UNSEEN_HEAD_TWINS.items()))
    entries = [
        _load(tmp_path, "run-1", num_sources=(2,), fingerprint=seen),
        load_results(write_fake_results(tmp_path / "run-2", system="run-1", num_sources=(2,), fingerprint=seen)),
        _load(tmp_path, "twin", num_sources=(2,), fingerprint=unseen),
    ]
    twin = load_results(write_fake_results(tmp_path / "twin-of-run-1", system="run-1", num_sources=(2,), fingerprint=unseen))
    tables = {table.fingerprint: table for table in build_tables([*entries, twin])}
    assert tables[seen].columns == COLUMNS  # which of the two runs the twin's result belongs to is unknown


def test_every_unseen_head_set_of_the_benchmark_has_a_pinned_twin():
    """UNSEEN_HEAD_TWINS cannot be derived from BENCHMARK_SETS: a fingerprint holds each mixture's
    headroom gain, which follows the peak of the mixture as rendered on its head, so it takes the
    rendered set. A set added to BENCHMARK_SETS on the unseen heads without its pinned pair fails here."""
    import dataclasses

    from lusebench.leaderboard.tables import UNSEEN_HEAD_TWINS
    from lusebench.simulation.config import BENCHMARK_SETS, UNSEEN_HEADS

    unseen = {name: spec for name, spec in BENCHMARK_SETS.items() if spec.hrtf == UNSEEN_HEADS}
    assert unseen and set(unseen) == {name for name in BENCHMARK_SETS if name.endswith("-unseen-head")}
    for name, spec in unseen.items():
        # test-Nsrc-unseen-head is test-Nsrc on the unseen heads: the same recipes, another head.
        assert dataclasses.replace(BENCHMARK_SETS[name.removesuffix("-unseen-head")], hrtf=UNSEEN_HEADS) == spec, name
    assert len(UNSEEN_HEAD_TWINS) == len(set(UNSEEN_HEAD_TWINS.values())) == len(unseen)


def test_the_twins_are_the_full_sets_fingerprints():
    """The pinned full-set fingerprints of test-Nsrc and its twin, as the committed entries scored on them record."""
    from lusebench.leaderboard.build import DEFAULT_ENTRIES
    from lusebench.leaderboard.tables import UNSEEN_HEAD_TWINS

    assert UNSEEN_HEAD_TWINS == {
        "4480fe0bb8d9d5dda5fc20f63b5c8bf2f07af42ec724f4b42770a82e8166f3ce":  # test-2src
            "ee4876dfdefd73c0a4dd58aa249d74ef4dc658af193fe35cf515477e55488e44",  # test-2src-unseen-head
        "c905da020fb84ac588218cfa798aab610d95cee500324ed76565e171f2ae72fc":  # test-3src
            "c383c82497bf5db88bda1d64229368bbe870e37b01b2b69f931697a710d746ec",  # test-3src-unseen-head
    }
    named = {}
    for path in DEFAULT_ENTRIES.glob("debcaps/*/results.json"):
        dataset = json.loads(path.read_text())["dataset"]
        named.setdefault(dataset["path"].rsplit("/", 1)[-1], set()).add(dataset["fingerprint"])
    twins = [name for name in named if name.endswith("-unseen-head")]
    assert "test-2src-unseen-head" in twins
    for name in twins:
        (seen,) = named[name.removesuffix("-unseen-head")]
        assert named[name] == {UNSEEN_HEAD_TWINS[seen]}, name
