"""Cost of one training item for each of the five systems: parameters, FLOPs, time and peak memory.

Per system, in fresh subprocesses (one for time and FLOPs, one for memory): trainable and
frozen-text-encoder parameter counts, FLOPs per item of the forward pass and of forward+backward
(``FlopCounterMode``), the median wall time of forward+backward (the loss included, no optimizer
step) after one warm-up step, and the memory resident before a step against its peak during it.
On CPU (default) one 10 s binaural item at the paper preset, float32, one thread; on a GPU
(``--device cuda``) bf16 autocast at ``--batch`` (default 32), reported as samples/s.

    python perf/baselines_cost.py                              # CPU, paper preset, batch 1
    python perf/baselines_cost.py --systems mlp-gcc --repeats 5
    python perf/baselines_cost.py --device cuda --batch 32
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from lusebench.baselines.systems import SYSTEMS, BaselineSystem, build_system, parameter_count
from lusebench.baselines.train import batch_loss

CAPTION = "a dog barks twice while rain falls on a tin roof"
SLOW_STEP_S = 60.0  # a warm-up slower than this gets one timed repeat, to keep the run short
# A fixed glibc mmap threshold stops malloc from keeping freed tensor memory in its heap (its
# default threshold grows with every large free), so resident memory falls back after each step
# and the peak of the timed step is its own, not the warm-up's.
MEMORY_CHILD_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}

def synthetic_batch(model: BaselineSystem, batch: int) -> dict[str, Any]:
    """Noise mixtures and targets of the model's clip length: cost does not depend on the audio."""
    generator = torch.Generator().manual_seed(0)
    shape = (batch, 2, model.config.clip_samples)
    return {
        "mixture": 0.1 * torch.randn(shape, generator=generator),
        "target": 0.1 * torch.randn(shape, generator=generator),
        "azimuth_deg": torch.full((batch,), 30.0),
        "caption": [CAPTION] * batch,
    }


def train_step(model: BaselineSystem, batch: dict[str, Any], device: torch.device) -> float:
    """Seconds of one forward+backward; gradients are freed after, as ``zero_grad`` does in training."""
    start = time.perf_counter()
    batch_loss(model, batch, device)["total"].backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    return seconds


def flops_per_item(model: BaselineSystem, batch: dict[str, Any], device: torch.device) -> tuple[int, int]:
    """(forward, forward+backward) FLOPs per item; FFTs and elementwise ops are not counted."""
    items = len(batch["caption"])
    with FlopCounterMode(display=False) as counter:
        loss = batch_loss(model, batch, device)["total"]
        forward = counter.get_total_flops()
        loss.backward()
    model.zero_grad(set_to_none=True)
    return forward // items, counter.get_total_flops() // items


def text_encoder_cost(model: BaselineSystem) -> tuple[int, int]:
    """(parameters, FLOPs per caption) of the frozen encoder; training caches its outputs per caption."""
    encoder = model.text_encoder.encoder
    with FlopCounterMode(display=False) as counter:
        encoder.encode([CAPTION])
    # Every encoder lusebench loads (MiniLM, T5, tiny T5) keeps its torch module in ``.model``.
    return sum(p.numel() for p in encoder.model.parameters()), counter.get_total_flops()


def _proc_status_kib(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE).group(1))


def memory_marks(device: torch.device) -> Callable[[], tuple[int, int]]:
    """Starts a peak-memory window; the returned function gives (bytes at start, peak bytes since).

    CPU: the process's resident set (VmRSS) and its high-water mark (VmHWM), reset by writing 5 to
    /proc/self/clear_refs; this counts everything torch and its libraries touch, workspaces
    included, which tracemalloc (Python objects only) does not see. GPU: the caching allocator's
    allocated bytes, which leave out its cached but free blocks.
    """
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        return lambda: (start, torch.cuda.max_memory_allocated(device))
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    start = _proc_status_kib("VmRSS") * 1024
    return lambda: (start, _proc_status_kib("VmHWM") * 1024)


def warmed_up(
    name: str, preset: str, device: torch.device, batch_size: int
) -> tuple[BaselineSystem, dict[str, Any], float]:
    """The system in training mode and its input batch, after one step (and its seconds)."""
    model = build_system(name, preset).to(device).train()
    if batch_size == 1:
        # Train-mode BatchNorm (DoA decoder) needs two items; with running statistics it costs the same.
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.eval()
    batch = synthetic_batch(model, batch_size)
    warm_s = train_step(model, batch, device)  # also encodes and caches the caption
    return model, batch, warm_s


def measure_time(name: str, preset: str, device: torch.device, batch_size: int, repeats: int) -> dict[str, Any]:
    """Parameters, FLOPs and the median step time of one system."""
    model, batch, warm_s = warmed_up(name, preset, device, batch_size)
    times = [train_step(model, batch, device) for _ in range(repeats if warm_s < SLOW_STEP_S else 1)]
    text_params, text_flops = text_encoder_cost(model)
    forward, forward_backward = flops_per_item(model, batch, device)
    return {"system": name, "params": parameter_count(model), "text_params": text_params, "text_flops": text_flops,
            "forward_flops": forward, "train_flops": forward_backward, "step_s": statistics.median(times),
            "repeats": len(times), "batch": batch_size}


def measure_memory(name: str, preset: str, device: torch.device, batch_size: int) -> dict[str, Any]:
    """Memory resident before one step after the warm-up, and its peak during that step."""
    model, batch, _ = warmed_up(name, preset, device, batch_size)
    marks = memory_marks(device)
    train_step(model, batch, device)
    resident, peak = marks()
    return {"resident": resident, "peak": peak}


def run_child(name: str, part: str, args: argparse.Namespace) -> dict[str, Any]:
    """One part of the measurement in a fresh interpreter; its last stdout line is the JSON result.

    Memory and time run apart because the malloc settings that make the RSS peak honest
    (MEMORY_CHILD_ENV) slow a CPU step by ~40% (every large tensor is a fresh mmap).
    """
    command = [sys.executable, __file__, "--child", name, "--part", part, "--device", args.device,
               "--preset", args.preset, "--batch", str(args.batch), "--repeats", str(args.repeats),
               "--threads", str(args.threads)]
    env = {**os.environ, **(MEMORY_CHILD_ENV if part == "memory" else {})}
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def print_header(device: str) -> None:
    speed = "f+b s" if device == "cpu" else "samples/s"
    print(f"{'system':15s} {'params':>12s} {'GFLOP fwd':>10s} {'GFLOP f+b':>10s} {speed:>10s} {'n':>3s} "
          f"{'resident MiB':>13s} {'peak MiB':>9s} {'step MiB':>9s}", flush=True)


def print_row(row: dict[str, Any], device: str) -> None:
    rate = row["step_s"] if device == "cpu" else row["batch"] / row["step_s"]
    print(f"{row['system']:15s} {row['params']:12,d} {row['forward_flops'] / 1e9:10.1f} "
          f"{row['train_flops'] / 1e9:10.1f} {rate:10.2f} {row['repeats']:3d} {row['resident'] / 2**20:13.0f} "
          f"{row['peak'] / 2**20:9.0f} {(row['peak'] - row['resident']) / 2**20:9.0f}", flush=True)


def print_footer(row: dict[str, Any], args: argparse.Namespace) -> None:
    if args.device == "cpu":
        setting = f"float32, {args.threads} thread(s)"
        memory = "process RSS before the step / its high-water mark during it"
    else:
        setting = "bf16 autocast"
        memory = "torch.cuda memory_allocated before the step / max_memory_allocated during it"
    print(f"(preset {args.preset}, batch {args.batch}, device {args.device}, {setting}; FLOPs per item, matmuls, "
          "convolutions and attention only; 'f+b s' = median seconds of forward+backward with the loss, no "
          f"optimizer step, over n repeats after one warm-up; memory = {memory})")
    print(f"frozen text encoder (not trained; training caches its output per caption): {row['text_params']:,} "
          f"params, {row['text_flops'] / 1e9:.3f} GFLOP per caption")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", default="paper", choices=("paper", "tiny"))
    parser.add_argument("--batch", type=int, help="items per step (default 1 on CPU, 32 on a GPU)")
    parser.add_argument("--repeats", type=int, default=3,
                        help=f"timed steps (1 if the warm-up takes over {SLOW_STEP_S:g} s)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--systems", nargs="*", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--part", choices=("time", "memory"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch is None:
        args.batch = 1 if args.device == "cpu" else 32
    if args.child:
        torch.set_num_threads(args.threads)
        device = torch.device(args.device)
        if args.part == "memory":
            result = measure_memory(args.child, args.preset, device, args.batch)
        else:
            result = measure_time(args.child, args.preset, device, args.batch, args.repeats)
        print(json.dumps(result))
        return
    print_header(args.device)
    for name in args.systems:
        row = {**run_child(name, "time", args), **run_child(name, "memory", args)}
        print_row(row, args.device)
    print_footer(row, args)


if __name__ == "__main__":
    main()
