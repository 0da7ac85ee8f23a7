"""Read a dataset folder through its documented files only (docs/dataset-format.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lusebench.errors import LusebenchError
from lusebench.fingerprint import dataset_fingerprint
from lusebench.io import read_regular_file
from lusebench.schema import load_json, read_manifest

# The test condition is the simulation's `room` (manifest column and config field); sets written
# before rooms existed have neither and are anechoic.
DEFAULT_CONDITION = "anechoic"
CONFIG_MAX_BYTES = 1 << 20
# A --recipes file lists mixture ids, one a line: 1,000 recipes take ~27 KB.
MAX_RECIPES_FILE_BYTES = 16 << 20


@dataclass(frozen=True)
class Dataset:
    """A dataset folder as the benchmark sees it.

    Attributes:
        path: the folder.
        manifest: one row per mixture, in manifest order, with a ``condition`` column added.
        fingerprint: the set's identity (lusebench/fingerprint.py): its recipes, asset checksums and
            protocol version, not its audio bytes.
    """

    path: Path
    manifest: pd.DataFrame
    fingerprint: str

    @property
    def mixture_ids(self) -> list[str]:
        return self.manifest["mixture_id"].tolist()

    @property
    def absent(self) -> list[bool]:
        """Per mixture, in manifest order: is its target absent (a set without the column has none)."""
        if "target_absent" not in self.manifest.columns:
            return [False] * len(self.manifest)
        return self.manifest["target_absent"].fillna(False).astype(bool).tolist()

    @property
    def sample_rate(self) -> int:
        return int(self.manifest["sample_rate"].iloc[0])

    def describe(self) -> dict:
        """The ``dataset`` block of results.json."""
        manifest = self.manifest
        conditions = sorted(manifest["condition"].unique())
        absent = sum(self.absent)
        return ({"num_absent_items": absent} if absent else {}) | {
            "path": str(self.path),
            "fingerprint": self.fingerprint,
            "split": ",".join(sorted(manifest["split"].unique())),
            "num_items": len(manifest),
            "num_sources": sorted(int(n) for n in manifest["num_sources"].unique()),
            "condition": ",".join(conditions),
            "sample_rate": self.sample_rate,
            **self._coverage(),
        }

    def _coverage(self) -> dict:
        """A fixed AudioCaps set's ``coverage`` block: the recipes scored of the set's, or nothing."""
        manifest = self.manifest
        if not {"recipe_set", "recipe_set_size"} <= set(manifest.columns):
            return {}
        return {"coverage": {"recipe_set": str(manifest["recipe_set"].iloc[0]), "recipes": len(manifest),
                             "of": int(manifest["recipe_set_size"].iloc[0])}}

    def restrict(self, mixture_ids: list[str], source: str) -> Dataset:
        """The set cut to ``mixture_ids`` (manifest order kept), with the fingerprint of what remains.

        Raises:
            LusebenchError: an id is not in the set (named with ``source``), or none is given.
        """
        wanted = set(mixture_ids)
        unknown = sorted(wanted - set(self.mixture_ids))
        if unknown:
            raise LusebenchError(
                f"{source} names {len(unknown)} recipe(s) that {self.path} does not hold, e.g. {unknown[0]!r}: "
                "list only recipes both sets hold (comm -12 A/recipes.txt B/recipes.txt)"
            )
        if not wanted:
            raise LusebenchError(f"{source} lists no recipe")
        manifest = self.manifest[self.manifest["mixture_id"].isin(wanted)].reset_index(drop=True)
        return Dataset(path=self.path, manifest=manifest, fingerprint=dataset_fingerprint(manifest))


def read_recipe_ids(path: Path) -> list[str]:
    """The mixture ids of a recipes file: one a line, blank lines and ``#`` comments left out.

    Raises:
        LusebenchError: the file cannot be read, is too large or is not UTF-8 text.
    """
    try:
        text = read_regular_file(path, max_bytes=MAX_RECIPES_FILE_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise LusebenchError(f"{path} is not UTF-8 text (one mixture id a line)") from None
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def load_dataset(path: Path) -> Dataset:
    """Read ``manifest.parquet`` (and ``config.json`` when present) of a dataset folder.

    Raises:
        LusebenchError: when the folder or manifest is missing, or the manifest fails its schema
            (lusebench/schema.py: columns, types, ranges, ids and paths that stay in the folder).
    """
    path = Path(path)
    manifest_path = path / "manifest.parquet"
    if not (manifest_path.exists() or manifest_path.is_symlink()):
        raise LusebenchError(f"not a dataset folder (no manifest.parquet): {path}")
    manifest = read_manifest(manifest_path, path)
    fingerprint = dataset_fingerprint(manifest)
    if "room" in manifest.columns:
        manifest = manifest.assign(condition=manifest["room"].astype(str))
    else:
        config_path = path / "config.json"
        config = load_json(config_path, CONFIG_MAX_BYTES) if config_path.exists() else {}
        room = config.get("room", DEFAULT_CONDITION) if isinstance(config, dict) else None
        if not isinstance(room, str):
            raise LusebenchError(f"{config_path}: room should be a string")
        manifest = manifest.assign(condition=room)
    return Dataset(path=path, manifest=manifest.reset_index(drop=True), fingerprint=fingerprint)
