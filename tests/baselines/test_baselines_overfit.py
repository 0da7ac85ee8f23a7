"""The optimisation path works: a tiny joint system over-fits one fixed mixture in seconds.

A broken gradient path (a detached branch, a loss sign, a label that cannot be reached, a head
that starts saturated) makes this fail, where shape tests pass.
"""

from __future__ import annotations

import torch

from lusebench.baselines.losses import circular_distance_deg, neg_si_snr
from lusebench.baselines.systems import build_system
from lusebench.simulation.config import SimulationConfig
from lusebench.simulation.dynamic import DynamicMixingDataset


def test_tiny_luseel_overfits_one_mixture_in_extraction_and_direction():
    item = DynamicMixingDataset(SimulationConfig(num_sources=2, split="train", num_mixtures=1, seed=7, duration_s=1.0, corpus="minicaps"))[0]
    # The mixture and its mirror image (ears swapped, azimuth reflected): BatchNorm needs two
    # different items, and the mirror keeps it to one recording.
    mixture = torch.stack([item["mixture"], item["mixture"].flip(0)])
    target = torch.stack([item["target"], item["target"].flip(0)])
    azimuth = torch.tensor([item["azimuth_deg"], (360.0 - item["azimuth_deg"]) % 360.0])
    captions = [item["caption"]] * 2

    torch.manual_seed(0)
    # No dropout, and the result read in training mode: with two items, BatchNorm's running
    # statistics lag far behind the batch's own while the weights move this fast, and they are
    # not what this test is about.
    system = build_system("luseel", "tiny", seed=0, text={"dropout": 0.0}, doa={"dropout": 0.0})
    optimizer = torch.optim.Adam(system.parameters(), lr=1e-2)
    for _ in range(150):
        terms = system.loss(system(mixture, captions), target, azimuth)
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()

    with torch.no_grad():
        out = system(mixture, captions)
    si_snr_db = -neg_si_snr(out.waveform, target).item()
    predicted = out.doa_likelihood.argmax(dim=1).float()
    error = circular_distance_deg(predicted, azimuth)
    assert si_snr_db > 10, si_snr_db
    assert error.max().item() <= 2, (predicted, azimuth)
