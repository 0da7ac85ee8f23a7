"""The five systems at the tiny preset: shapes, gradients, FiLM, checkpoints, bad input."""

from __future__ import annotations

import io
import json

import pytest
import torch

from lusebench.baselines.systems import (
    SYSTEMS,
    SystemOutput,
    build_system,
    in_mixture_polarity,
    parameter_count,
    system_from_checkpoint_dict,
)
from lusebench.cli import main
from lusebench.errors import LusebenchError

T = 16000
CAPTIONS = ["a dog barks twice", "rain on a tin roof"]


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mixture = torch.randn(2, 2, T, generator=g)
    target = torch.randn(2, 2, T, generator=g)
    return mixture, target, torch.tensor([30.0, 359.0])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", list(SYSTEMS))
def test_tiny_forward_backward_shapes_and_gradients(name, seed):
    # Several seeds (of weights and of dropout): a parameter that gets a gradient only for some
    # initialisations is a defect (the F-DoA encoder's last bias, cancelled by the decoder's
    # BatchNorm, got none for seed 1).
    system = build_system(name, "tiny", seed=seed)
    torch.manual_seed(seed)
    assert parameter_count(system) < 1_000_000
    mixture, target, azimuth = _batch()
    out = system(mixture, CAPTIONS)
    spec = SYSTEMS[name]
    assert (out.waveform is not None) == spec.extraction
    assert (out.doa_likelihood is not None) == spec.localization
    if out.waveform is not None:
        assert out.waveform.shape == (2, 2, T)
    if out.doa_likelihood is not None:
        assert out.doa_likelihood.shape == (2, 360)
        assert ((out.doa_likelihood > 0) & (out.doa_likelihood < 1)).all()
    terms = system.loss(out, target, azimuth)
    expected = {"total"} | ({"neg_si_snr", "delta_spectrum"} if spec.extraction else set())
    expected |= {"doa_mse"} if spec.localization else set()
    assert set(terms) == expected
    terms["total"].backward()
    missing = [n for n, p in system.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


@pytest.mark.parametrize("name", list(SYSTEMS))
def test_different_captions_give_different_outputs(name):
    system = build_system(name, "tiny").eval()
    mixture, _, _ = _batch()
    with torch.no_grad():
        a = system(mixture, ["a dog barks twice"] * 2)
        b = system(mixture, ["rain on a tin roof"] * 2)
    if a.waveform is not None:
        assert (a.waveform - b.waveform).abs().max() > 1e-4
    if a.doa_likelihood is not None:
        # On the logit scale: at the start every bin sits near the label prior (~0.016), where the
        # sigmoid flattens differences.
        assert (torch.logit(a.doa_likelihood) - torch.logit(b.doa_likelihood)).abs().max() > 1e-4


@pytest.mark.parametrize("name", ["luseel", "luseel-nogcc"])
def test_doa_loss_gradient_reaches_the_backbone(name):
    system = build_system(name, "tiny")
    mixture, _, azimuth = _batch()
    out = system(mixture, CAPTIONS)
    system.loss(SystemOutput(None, out.doa_likelihood, out.spectral_layers), None, azimuth)["total"].backward()
    backbone = system.backbone
    assert backbone.spec_encoder[0].conv.weight.grad.abs().sum() > 0
    assert backbone.time_encoder[0].conv.weight.grad.abs().sum() > 0  # through cross-attention
    assert backbone.time_decoder[0].conv.weight.grad is None  # decoders play no part in DoA


def test_total_loss_weights_doa_by_gamma_10():
    system = build_system("luseel", "tiny")
    mixture, target, azimuth = _batch()
    terms = system.loss(system(mixture, CAPTIONS), target, azimuth)
    manual = terms["neg_si_snr"] + terms["delta_spectrum"] + 10 * terms["doa_mse"]
    assert terms["total"].item() == pytest.approx(manual.item())


def test_absent_items_are_trained_to_silence_and_the_rest_keeps_the_paper_loss():
    from lusebench.baselines.losses import output_level_db

    system = build_system("luseel", "tiny")
    mixture, target, azimuth = _batch()
    output = system(mixture, CAPTIONS)
    paper = system.loss(output, target, azimuth)
    none = system.loss(output, target, azimuth, mixture, torch.tensor([False, False]))
    assert {key: value.item() for key, value in none.items()} == {key: value.item() for key, value in paper.items()}
    # Item 1 asks for a sound that is not there: a zero target and no direction.
    target[1], azimuth[1] = 0.0, float("nan")
    absent = torch.tensor([False, True])
    terms = system.loss(output, target, azimuth, mixture, absent)
    assert all(torch.isfinite(value) for value in terms.values())
    present = system.loss(
        SystemOutput(output.waveform[:1], output.doa_likelihood[:1], ()), target[:1], azimuth[:1]
    )
    level = output_level_db(output.waveform[1:], mixture[1:])
    assert terms["absent_level_db"].item() == pytest.approx(level.item())
    extraction = (present["neg_si_snr"] + present["delta_spectrum"] + level.sum()) / 2  # the batch mean of both kinds
    doa = (output.doa_likelihood[1].pow(2).sum() + present["doa_mse"]) / 2  # MSE against an all-zero label
    assert terms["total"].item() == pytest.approx((extraction + 10 * doa).item(), rel=1e-5)
    quieter = SystemOutput(output.waveform * torch.tensor([1.0, 0.1])[:, None, None], output.doa_likelihood, ())
    assert system.loss(quieter, target, azimuth, mixture, absent)["total"] < terms["total"]
    with pytest.raises(LusebenchError, match="mixture"):
        system.loss(output, target, azimuth, None, absent)


def test_outputs_are_in_the_mixtures_polarity_ear_by_ear():
    mixture = torch.ones(1, 2, 4)
    raw = torch.tensor([[[-1.0, -2.0, 0.5, 0.0], [1.0, 1.0, -1.0, 0.0]]], requires_grad=True)
    aligned = in_mixture_polarity(raw, mixture)
    assert aligned.tolist() == [[[1.0, 2.0, -0.5, 0.0], [1.0, 1.0, -1.0, 0.0]]]  # the left ear only
    aligned.sum().backward()
    assert raw.grad.tolist() == [[[-1.0] * 4, [1.0] * 4]]
    assert in_mixture_polarity(torch.zeros(1, 2, 4), mixture).abs().sum() == 0  # silence stays silence
    # T-HTDemucs' raw output is anti-correlated with its input for seed 0 (and LuSeeL's for some ears
    # of seeds 1-2): every built system answers in the mixture's polarity, whatever the seed.
    mixture, _, _ = _batch()
    for name in ("t-htdemucs", "luseel-extract"):
        for seed in range(3):
            waveform = build_system(name, "tiny", seed=seed)(mixture, CAPTIONS).waveform
            assert ((waveform * mixture).sum(-1) >= 0).all(), (name, seed)


@pytest.mark.parametrize("name", ["t-htdemucs", "luseel"])
def test_the_loss_and_its_gradient_ignore_the_outputs_sign_to_the_bit(name):
    # So aligning the polarity leaves training as it was: only the answers' sign changes.
    system = build_system(name, "tiny")
    mixture, target, azimuth = _batch()
    waveform = system(mixture, CAPTIONS).waveform.detach()
    grads = []
    for sign in (1.0, -1.0):
        signed = (sign * waveform).requires_grad_(True)
        terms = system.loss(SystemOutput(signed, None, ()), target, None)
        terms["total"].backward()
        grads.append((sign * signed.grad, {key: value.item() for key, value in terms.items()}))
    assert grads[0][1] == grads[1][1]
    assert torch.equal(grads[0][0], grads[1][0])


def test_level_match_makes_a_quiet_answer_to_a_present_query_cost_what_it_saves_on_an_absent_one():
    # Without it, -SI-SNR cannot tell a present answer 40 dB down from one at the target's level, so
    # silencing every query is free; with it, each dB under the target costs 1.
    from lusebench.baselines.losses import output_level_db

    system = build_system("luseel-extract", "tiny")
    mixture, target, azimuth = _batch()
    with torch.no_grad():
        output = system(mixture, CAPTIONS)
    quiet = SystemOutput(output.waveform * 0.01, None, ())
    blind = [system.loss(o, target, azimuth, mixture)["total"].item() for o in (output, quiet)]
    assert blind[0] == pytest.approx(blind[1], abs=0.5)  # -40 dB changes only the small delta-spectrum term
    matched = [system.loss(o, target, azimuth, mixture, level_match=True) for o in (output, quiet)]
    expected = (output_level_db(output.waveform, mixture) - output_level_db(target, mixture)).abs().mean()
    assert matched[0]["level_error_db"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert matched[1]["total"].item() - blind[1] > matched[0]["total"].item() - blind[0] + 30
    perfect = SystemOutput(target.clone(), None, ())
    assert system.loss(perfect, target, azimuth, mixture, level_match=True)["level_error_db"].item() == pytest.approx(0.0, abs=1e-4)
    # In a batch with an absent item, the present items' level error joins their share of the total.
    absent = torch.tensor([False, True])
    target[1], azimuth[1] = 0.0, float("nan")
    mixed = system.loss(output, target, azimuth, mixture, absent, level_match=True)
    level = (output_level_db(output.waveform[:1], mixture[:1]) - output_level_db(target[:1], mixture[:1])).abs().mean()
    assert mixed["level_error_db"].item() == pytest.approx(level.item(), rel=1e-5)
    plain = system.loss(output, target, azimuth, mixture, absent)
    assert mixed["total"].item() == pytest.approx(plain["total"].item() + level.item() / 2, rel=1e-5)
    with pytest.raises(LusebenchError, match="mixture"):
        system.loss(output, target, azimuth, None, level_match=True)


def test_single_channel_system_runs_each_ear_on_its_own():
    system = build_system("t-htdemucs", "tiny").eval()
    mixture, _, _ = _batch()
    with torch.no_grad():
        both = system(mixture, CAPTIONS).waveform
        left = system(mixture[:, :1], CAPTIONS).waveform
        right = system(mixture[:, 1:], CAPTIONS).waveform
    torch.testing.assert_close(both, torch.cat([left, right], dim=1), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["luseel", "t-htdemucs", "mlp-gcc"])
def test_checkpoint_rebuilds_without_a_config_file(name):
    system = build_system(name, "tiny", seed=3).eval()
    buffer = io.BytesIO()
    torch.save(system.checkpoint_dict(), buffer)
    checkpoint = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    checkpoint["config"] = json.loads(json.dumps(checkpoint["config"]))  # survives JSON (tuples -> lists)
    rebuilt = system_from_checkpoint_dict(checkpoint).eval()
    assert rebuilt.config == system.config
    mixture, _, _ = _batch()
    with torch.no_grad():
        a, b = system(mixture, CAPTIONS), rebuilt(mixture, CAPTIONS)
    for x, y in ((a.waveform, b.waveform), (a.doa_likelihood, b.doa_likelihood)):
        if x is not None:
            torch.testing.assert_close(x, y)


@pytest.mark.parametrize(
    ("built", "named", "message"),
    [
        ("luseel", "luseel-nogcc", "gcc=True"),  # the same parts but GCC-PHAT
        ("luseel-extract", "t-htdemucs", "single_channel=False"),
        ("mlp-gcc", "luseel", "extraction=False"),
        ("luseel", "luseel-v2", "unknown system 'luseel-v2'"),
    ],
)
def test_checkpoint_whose_name_was_edited_is_refused(built, named, message):
    """Regression (issue 12): an edited name loaded and wrote a submission claiming that system."""
    checkpoint = build_system(built, "tiny").checkpoint_dict()
    checkpoint["config"]["name"] = named
    with pytest.raises(LusebenchError, match=message):
        system_from_checkpoint_dict(checkpoint)


def test_build_is_seeded_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = build_system("luseel", "tiny", seed=1), build_system("luseel", "tiny", seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    c = build_system("luseel", "tiny", seed=2)
    assert not torch.equal(a.backbone.spec_in.weight, c.backbone.spec_in.weight)


def test_overrides_change_the_config_and_are_checked():
    system = build_system("luseel-extract", "tiny", backbone={"channels": 4}, clip_samples=8000)
    assert system.backbone.spec_encoder[0].conv.out_channels == 4 and system.config.clip_samples == 8000
    with pytest.raises(LusebenchError, match="unknown field 'channel'"):
        build_system("luseel", "tiny", backbone={"channel": 4})
    with pytest.raises(LusebenchError, match="does not have the field's type"):
        build_system("luseel", "tiny", clip_samples="10s")
    with pytest.raises(LusebenchError, match="is not one of"):
        build_system("luseel", "tiny", text={"encoder": "bert"})
    with pytest.raises(LusebenchError, match="unknown system 'luseal'"):
        build_system("luseal")
    with pytest.raises(LusebenchError, match="must divide"):
        build_system("luseel", "tiny", backbone={"nfft": 1000})


def test_bad_inputs_are_rejected_with_clear_messages():
    system = build_system("luseel", "tiny")
    mixture, target, azimuth = _batch()
    with pytest.raises(LusebenchError, match=r"needs a \(batch, 2, time\) mixture"):
        system(mixture[:, :1], CAPTIONS)
    with pytest.raises(LusebenchError, match="2 mixtures but 1 captions"):
        system(mixture, CAPTIONS[:1])
    with pytest.raises(LusebenchError, match="16000-sample clips only"):
        system(mixture[..., :8000], CAPTIONS)
    with pytest.raises(LusebenchError, match="list of strings"):
        system(mixture, "a dog")
    out = system(mixture, CAPTIONS)
    with pytest.raises(LusebenchError, match="azimuth_deg"):
        system.loss(out, target, None)
    with pytest.raises(LusebenchError, match="target waveform"):
        system.loss(out, target[..., :100], azimuth)
    with pytest.raises(LusebenchError, match="not a lusebench system checkpoint"):
        system_from_checkpoint_dict({"state_dict": {}})


def test_systems_command_lists_all_five(capsys):
    assert main(["systems"]) == 0
    out = capsys.readouterr().out
    for name, paper_name in [("t-htdemucs", "T-HTDemucs"), ("luseel-extract", "LuSeeL†"), ("luseel", "LuSeeL")]:
        assert name in out and paper_name in out
    luseel = next(line for line in out.splitlines() if line.startswith("luseel "))
    assert "both" in luseel and "yes" in luseel
