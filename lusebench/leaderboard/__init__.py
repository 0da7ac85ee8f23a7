"""Leaderboard room: ``results.json`` files -> ranked Markdown tables and a static web page."""

from lusebench.leaderboard.build import Leaderboard, build_leaderboard
from lusebench.leaderboard.paper import PaperTable, load_paper_table
from lusebench.leaderboard.results import ResultsFile, find_results, load_results, parse_results
from lusebench.leaderboard.tables import COLUMNS, Row, Table, build_tables

__all__ = [
    "COLUMNS",
    "Leaderboard",
    "PaperTable",
    "ResultsFile",
    "Row",
    "Table",
    "build_leaderboard",
    "build_tables",
    "find_results",
    "load_paper_table",
    "load_results",
    "parse_results",
]
