"""Train-split vs val-split metrics of a checkpoint: does a system learn the task, or its clips?

Renders (once) 200 fresh mixtures of the corpus's train clips and of its val clips at the
checkpoint's clip length, and prints the validation metrics of ``lusebench train-baseline``
(SI-SNRi, DoA MAE) on each. A train-split figure far above the val-split one means the model
learned its training clips and captions rather than the task (docs/small-preset.md).

    python scripts/train_val_gap.py runs/table1-small/runs/luseel-extract/last.pt --sources 2
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--sources", type=int, default=2)
    parser.add_argument("--num", type=int, default=200)
    parser.add_argument("--data", type=Path, default=Path("data/gap"), help="where the two sets are rendered")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = system_from_checkpoint_dict(load_checkpoint(args.checkpoint)["model"])
    seconds = model.config.clip_samples / model.config.sample_rate
    seeds = {"train": 777, "val": BENCHMARK_SETS[f"val-{args.sources}src"].seed}
    for split, seed in seeds.items():
        folder = args.data / f"{split}-{args.sources}src-{model.config.clip_samples}"
        simulate(SimulationConfig(num_sources=args.sources, split=split, num_mixtures=args.num, seed=seed,
                                  duration_s=seconds), folder, progress=False)
        metrics = validate(model, DataLoader(RenderedSet(folder), batch_size=8, collate_fn=collate), torch.device("cpu"))
        print(f"{split:5s} split: " + ", ".join(f"{key} {value:.2f}" for key, value in metrics.items()))


if __name__ == "__main__":
    main()
