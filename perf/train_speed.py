"""Training speed of the five systems: step time, samples/s, peak memory, and whether data keep up.

On CPU (default): the tiny preset's steps/s per system, the small preset's at its batch of 8
(``--preset small``; the minutes to its 2,000-step stopping point follow), seconds per step at the
paper preset with batch 2 (``--preset paper``), and the dynamic-mixing loader's mixtures/s per
worker against what the model consumes. On a GPU (``--device cuda``): the paper preset in bf16 at ``--batch`` for a fixed
number of steps, with DataLoader workers rendering on the fly, and the share of time spent
waiting for data.

    python perf/train_speed.py                                # CPU, tiny preset
    python perf/train_speed.py --preset small --batch 8       # CPU, small preset (the CPU Table 1)
    python perf/train_speed.py --preset paper --batch 2       # CPU, paper preset (slow)
    python perf/train_speed.py --device cuda --preset paper --batch 32 --steps 20 --workers 8
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader

from lusebench.baselines.data import collate
from lusebench.baselines.systems import build_system, parameter_count
from lusebench.baselines.train import batch_loss
from lusebench.simulation.config import SimulationConfig
from lusebench.simulation.dynamic import DynamicMixingDataset

SYSTEMS = ("t-htdemucs", "mlp-gcc", "luseel-extract", "luseel-nogcc", "luseel")
# The corpus the README's figures were measured on (its data wait is what they state).
CORPUS = "minicaps"


def loader_rate(duration_s: float, sources: int, items: int) -> float:
    """Mixtures/s of one dynamic-mixing worker (in this process, one thread)."""
    dataset = DynamicMixingDataset(SimulationConfig(split="train", num_sources=sources, num_mixtures=10_000, duration_s=duration_s, corpus=CORPUS))
    dataset[0]
    start = time.perf_counter()
    for index in range(1, items + 1):
        dataset[index]
    return items / (time.perf_counter() - start)


def bench_system(name: str, preset: str, batch: int, steps: int, device: torch.device, workers: int, sources: int) -> dict:
    torch.manual_seed(0)
    model = build_system(name, preset).to(device)
    seconds = model.config.clip_samples / model.config.sample_rate
    dataset = DynamicMixingDataset(
        SimulationConfig(split="train", num_sources=sources, num_mixtures=batch * (steps + 2), duration_s=seconds, corpus=CORPUS)
    )
    loader = DataLoader(dataset, batch_size=batch, collate_fn=collate, num_workers=workers,
                        pin_memory=device.type == "cuda", generator=torch.Generator())
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, waits = [], []
    fetch = time.perf_counter()
    for i, batch_items in enumerate(loader):
        waited = time.perf_counter() - fetch
        start = time.perf_counter()
        loss = batch_loss(model, batch_items, device)["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= 2:  # the first steps warm up caches, cuDNN and the text encoder
            times.append(time.perf_counter() - start)
            waits.append(waited)
        fetch = time.perf_counter()
    step = sum(times) / len(times)
    wait = sum(waits) / len(waits)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {"system": name, "params": parameter_count(model), "step_s": step, "samples_per_s": batch / (step + wait),
            "data_wait_pct": 100 * wait / (step + wait), "peak_gib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", choices=("tiny", "small", "paper"), default="tiny", help="model size (default tiny)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per system (after 2 warm-up steps)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--sources", type=int, default=3)
    parser.add_argument("--systems", nargs="*", default=list(SYSTEMS))
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    preset = args.preset
    seconds = 10.0 if preset == "paper" else 1.0
    per_worker = loader_rate(seconds, args.sources, 20)
    print(f"dynamic mixing, {args.sources} src x {seconds:g} s: {per_worker:.1f} mixtures/s per worker (one thread)")
    print(f"{'system':15s} {'params':>12s} {'s/step':>8s} {'samples/s':>10s} {'data wait':>10s} {'peak GiB':>9s} "
          f"{'workers needed':>15s} {'min/2000 steps':>15s}")
    for name in args.systems:
        row = bench_system(name, preset, args.batch, args.steps, device, args.workers, args.sources)
        needed = args.batch / row["step_s"] / per_worker
        print(f"{name:15s} {row['params']:12,d} {row['step_s']:8.3f} {row['samples_per_s']:10.1f} "
              f"{row['data_wait_pct']:9.1f}% {row['peak_gib']:9.2f} {needed:15.1f} {2000 * row['step_s'] / 60:15.1f}")
    print(f"(preset {preset}, batch {args.batch}, device {device}, {args.workers} loader workers; "
          "'workers needed' = model consumption / one worker's rendering rate)")


if __name__ == "__main__":
    main()
