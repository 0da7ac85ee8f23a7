"""Train-split vs val-split metrics of a checkpoint: does a system learn the task, or its clips?
And does it follow its query?

Renders (once) 200 fresh mixtures of the train clips and of the val clips of the corpus the
checkpoint trained on, at its clip length, and prints the validation metrics of ``lusebench train-baseline``
(SI-SNRi, DoA MAE) on each. A train-split figure far above the val-split one means the model
learned its training clips and captions rather than the task (docs/small-preset.md).

The ``swapped`` figures ask the model for the first interferer and still score the target. A system
that follows its query scores far below its own figures there (the perfect extractor's swapped
SI-SNRi is minus infinity); one that ignores the query scores the same.

    python scripts/train_val_gap.py runs/table1-small/runs/luseel-extract/last.pt --sources 2
    python scripts/train_val_gap.py CHECKPOINT --set data/test-2src   # any rendered set instead
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from lusebench.baselines.data import RenderedSet, collate
from lusebench.baselines.systems import system_from_checkpoint_dict
from lusebench.baselines.train import load_checkpoint, validate
from lusebench.simulation.config import BENCHMARK_SETS, SimulationConfig
from lusebench.simulation.writer import simulate


def report(name: str, model: torch.nn.Module, folder: Path) -> None:
    loader = DataLoader(RenderedSet(folder), batch_size=8, collate_fn=collate)
    own = validate(model, loader, torch.device("cpu"))
    swapped = validate(model, loader, torch.device("cpu"), swap_query=True)
    figures = [f"{key} {own[key]:.2f} (swapped {swapped[key]:.2f})" for key in ("si_snri_db", "doa_mae_deg") if key in own]
    print(f"{name}: " + ", ".join(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--sources", type=int, default=2)
    parser.add_argument("--num", type=int, default=200)
    parser.add_argument("--data", type=Path, default=Path("data/gap"), help="where the two sets are rendered")
    parser.add_argument("--set", type=Path, help="score this rendered set (at the checkpoint's clip length) instead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    checkpoint = load_checkpoint(args.checkpoint)
    model = system_from_checkpoint_dict(checkpoint["model"])
    if args.set is not None:
        report(str(args.set), model, args.set)
        return
    seconds = model.config.clip_samples / model.config.sample_rate
    seeds = {"train": 777, "val": BENCHMARK_SETS[f"val-{args.sources}src"].seed}
    for split, seed in seeds.items():
        folder = args.data / f"{split}-{args.sources}src-{model.config.clip_samples}"
        simulate(SimulationConfig(num_sources=args.sources, split=split, num_mixtures=args.num, seed=seed,
                                  duration_s=seconds, corpus=checkpoint["train_config"]["corpus"]), folder, progress=False)
        report(f"{split:5s} split", model, folder)


if __name__ == "__main__":
    main()
