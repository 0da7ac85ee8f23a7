"""Paper-preset dimensions, GCC-PHAT, losses and text encoders of the baselines."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lusebench.baselines.backbone import BackboneConfig
from lusebench.baselines.localization import DoAConfig, DoADecoder, GccPhatConfig, gcc_phat
from lusebench.baselines.losses import (
    delta_spectrum_loss, doa_label_prior, doa_mse, gaussian_doa_label, neg_si_snr, output_level_db,
)
from lusebench.baselines.systems import build_system
from lusebench.baselines.text import (
    ByteTokenizer,
    CachedTextEncoder,
    TextConfig,
    TextEmbedding,
    TinyT5Encoder,
    load_text_encoder,
)
from lusebench.errors import LusebenchError


@pytest.fixture(scope="module")
def paper_luseel():
    return build_system("luseel", "paper", device="meta")


def test_paper_preset_spectral_sequence_is_1256_tokens():
    config = BackboneConfig()
    assert (config.nfft // 2, config.spectral_rows(), config.spectral_frames(160000)) == (2048, 8, 157)
    assert config.spectral_tokens(160000) == 1256


def test_paper_preset_forward_shapes_on_meta(paper_luseel):
    x = torch.zeros(2, 2, 160000, device="meta")
    text = TextEmbedding(torch.zeros(2, 7, 384, device="meta"), torch.ones(2, 7, dtype=torch.bool, device="meta"))
    _, pooled = paper_luseel.text_adapter(text)
    layers = paper_luseel.backbone(x, pooled, decode=False).spectral_layers
    assert [tuple(layer.shape) for layer in layers] == [(2, 1256, 512)] * 5
    features = paper_luseel.doa_features(x, pooled, layers)
    assert tuple(features.shape) == (2, 888)
    assert tuple(paper_luseel.doa_decoder(features).shape) == (2, 360)


def test_paper_preset_localization_head_matches_paper(paper_luseel):
    convs = paper_luseel.spectral_doa.layer_convs
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(1256, 100, (1,))] * 5
    fdoa = [(m.in_channels, m.out_channels, m.kernel_size) for m in paper_luseel.spectral_doa.fdoa if isinstance(m, nn.Conv1d)]
    assert fdoa == [(500, 512, (1,)), (512, 256, (1,)), (256, 1, (1,))]
    linears = [(m.in_features, m.out_features) for m in paper_luseel.doa_decoder.layers if isinstance(m, nn.Linear)]
    assert linears == [(888, 1024)] + [(1024, 1024)] * 4 + [(1024, 360)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in paper_luseel.doa_decoder.layers) == 5
    assert GccPhatConfig().num_features == 376


def test_paper_preset_backbone_matches_htdemucs_settings(paper_luseel):
    backbone = paper_luseel.backbone
    assert [layer.conv.out_channels for layer in backbone.spec_encoder] == [48, 96, 192, 384]
    assert [layer.conv.out_channels for layer in backbone.time_encoder] == [48, 96, 192, 384]
    assert backbone.spec_encoder[0].conv.in_channels == 4  # 2 ears x (real, imag)
    assert [layer.norm_kv is not None for layer in backbone.spec_layers] == [False, True, False, True, False]
    assert len(backbone.spec_film) == len(backbone.time_film) == 3  # before each self-attention layer
    assert backbone.spec_in.out_features == backbone.time_in.out_features == 512


def test_paper_preset_text_adapter_matches_paper(paper_luseel):
    adapter = paper_luseel.text_adapter
    layers = adapter.layers.layers
    assert len(layers) == 5
    for layer in layers:
        assert (layer.self_attn.embed_dim, layer.self_attn.num_heads) == (512, 2)
        assert (layer.linear1.in_features, layer.linear1.out_features) == (512, 1024)
    d, f = 512, 1024
    per_layer = (4 * d * d + 4 * d) + (2 * d * f + f + d) + 4 * d
    expected = 384 * d + d + 5 * per_layer + 2 * d  # MiniLM width 384 in, final LayerNorm
    assert sum(p.numel() for p in adapter.parameters()) == expected


def _delayed_noise(delay: int, length: int = 16000) -> torch.Tensor:
    source = torch.randn(length + 64, generator=torch.Generator().manual_seed(0))
    left = source[32 : 32 + length]
    right = source[32 - delay : 32 - delay + length]
    return torch.stack([left, right])[None]  # (1, 2, T)


@pytest.mark.parametrize("delay", [5, -7, 0])
def test_gcc_phat_peaks_at_the_interaural_delay(delay):
    config = GccPhatConfig(segments=4)
    features = gcc_phat(_delayed_noise(delay), config)
    assert tuple(features.shape) == (1, 4, 47)
    assert (features.argmax(dim=-1) == config.max_lag + delay).all()


def test_gcc_phat_rejects_a_mono_mixture():
    with pytest.raises(LusebenchError, match="binaural"):
        gcc_phat(torch.zeros(1, 1, 16000), GccPhatConfig())


def test_neg_si_snr_known_value_and_scale_invariance():
    t = torch.arange(16000) / 16000
    reference = torch.sin(2 * math.pi * 100 * t)
    noise = 0.1 * torch.cos(2 * math.pi * 100 * t)  # orthogonal over whole periods
    assert neg_si_snr(reference + noise, reference).item() == pytest.approx(-20.0, abs=1e-3)
    assert neg_si_snr(3 * (reference + noise), reference).item() == pytest.approx(-20.0, abs=1e-3)


def test_delta_spectrum_loss_known_values():
    ones = torch.ones(1, 2, 8000)
    # Constant input: the DFT of a periodic Hann window is n/2 at bin 0, n/4 at bin 1, zero above,
    # the same in every frame (so both delta terms vanish); mean over n/2 + 1 bins.
    single = delta_spectrum_loss(torch.zeros_like(ones), ones, [(512, 128)])
    assert single.item() == pytest.approx((256 + 128) / 257, rel=1e-4)
    expected = sum((n / 2 + n / 4) / (n / 2 + 1) for n in (512, 1024, 2048)) / 3
    assert delta_spectrum_loss(torch.zeros_like(ones), ones).item() == pytest.approx(expected, rel=1e-4)
    x = torch.randn(2, 2, 8000, generator=torch.Generator().manual_seed(1))
    assert delta_spectrum_loss(x, x).item() == 0.0
    # Magnitudes scale linearly, so the loss is |a - 1| times the loss against silence.
    assert delta_spectrum_loss(2.5 * x, x).item() == pytest.approx(1.5 * delta_spectrum_loss(0 * x, x).item(), rel=1e-4)


def test_gaussian_label_peaks_at_true_bin_and_wraps():
    likelihood = gaussian_doa_label(torch.tensor([37.0, 359.0, 0.0]))
    density = gaussian_doa_label(torch.tensor([37.0, 359.0, 0.0]), coding="density")
    peak = 1 / math.sqrt(2 * math.pi * 5)
    assert likelihood[0].argmax().item() == 37 and likelihood[0, 37].item() == pytest.approx(1.0)
    assert torch.allclose(density, likelihood * peak)
    assert density[0, 37].item() == pytest.approx(peak)  # 0.178: the paper's N(theta; d, 5) read literally
    assert likelihood[1, 0].item() == pytest.approx(likelihood[1, 358].item()) and likelihood[1, 0].item() > 0.5
    assert likelihood[2, 359].item() == pytest.approx(likelihood[2, 1].item()) and likelihood[2, 359].item() > 0.5
    assert density.sum(dim=1).tolist() == pytest.approx([1.0] * 3, abs=1e-4)


def test_doa_mse_known_values():
    azimuth = torch.tensor([12.0, 300.0])
    for coding in ("likelihood", "density"):
        assert doa_mse(gaussian_doa_label(azimuth, coding=coding), azimuth, coding=coding).item() == pytest.approx(0.0)
    # Sum of squared normal densities on 1-degree bins: 1 / (2 sigma sqrt(pi)).
    floor = 1 / (2 * math.sqrt(5 * math.pi))
    assert doa_mse(torch.zeros(2, 360), azimuth, coding="density").item() == pytest.approx(floor, rel=1e-4)
    # The likelihood label is the density times sqrt(2 pi sigma^2): its floor is 2 pi sigma^2 larger.
    assert doa_mse(torch.zeros(2, 360), azimuth).item() == pytest.approx(floor * 2 * math.pi * 5, rel=1e-4)


def test_absent_target_loss_is_the_floored_output_level_and_its_label_has_no_peak():
    mixture = torch.randn(3, 2, 4000, generator=torch.Generator().manual_seed(2))
    silent = torch.zeros_like(mixture, requires_grad=True)
    level = output_level_db(silent, mixture)
    # An all-zero output against an all-zero target: the floor, finite, with finite gradients.
    assert level.tolist() == pytest.approx([-60.0] * 3, abs=1e-4)
    level.sum().backward()
    assert torch.isfinite(silent.grad).all()
    levels = output_level_db(torch.stack([mixture[0], 0.1 * mixture[0], 1e-4 * mixture[0]]), mixture[:1].expand(3, -1, -1))
    assert levels.tolist() == pytest.approx([0.0, -20.0, 10 * math.log10(1e-8 + 1e-6)], abs=1e-3)  # quieter: lower
    likelihood = torch.rand(2, 360, generator=torch.Generator().manual_seed(3))
    assert not gaussian_doa_label(torch.tensor([float("nan"), 10.0]))[0].any()
    assert doa_mse(likelihood[:1], torch.tensor([float("nan")])).item() == pytest.approx(likelihood[0].pow(2).sum().item())


def test_doa_decoder_starts_at_the_label_prior_whatever_the_features():
    for coding in ("likelihood", "density"):
        prior = doa_label_prior(coding=coding)
        assert prior == pytest.approx(gaussian_doa_label(torch.tensor([123.0]), coding=coding).mean().item())
        decoder = DoADecoder(16, DoAConfig(decoder_hidden=8, decoder_layers=3), prior).eval()
        with torch.no_grad():
            decoder.layers[-1].weight.zero_()  # leave only the bias: the start every input sees on average
            out = decoder(torch.randn(4, 16))
        assert torch.allclose(out, torch.full_like(out, prior), rtol=1e-5)
    assert doa_label_prior(coding="likelihood") == pytest.approx(math.sqrt(2 * math.pi * 5) / 360, rel=1e-3)
    with pytest.raises(LusebenchError, match="prior"):
        DoADecoder(16, DoAConfig(), 0.0)


def test_byte_tokenizer_offsets_bytes_and_pads_with_zero():
    ids, mask = ByteTokenizer(max_tokens=8)(["ab", "é"])
    assert ids.tolist() == [[98, 99], [196, 170]]
    ids, mask = ByteTokenizer(max_tokens=8)(["abc", "a"])
    assert ids.tolist() == [[98, 99, 100], [98, 0, 0]] and mask.tolist() == [[True] * 3, [True, False, False]]


def test_cache_encodes_each_caption_once():
    encoder = CachedTextEncoder(TinyT5Encoder(seed=0))
    first = encoder.encode(["a dog barks", "rain", "a dog barks"])
    assert encoder.encoded_count == 2
    again = encoder.encode(["rain", "a dog barks"])
    assert encoder.encoded_count == 2
    assert torch.equal(first.tokens[0], first.tokens[2])
    assert torch.equal(again.tokens[1], first.tokens[0])
    assert first.mask.sum(dim=1).tolist() == [11, 4, 11]


def test_cached_embedding_does_not_depend_on_the_batch_it_was_first_seen_in():
    """Regression (issue 12): a caption first encoded beside a longer one differed by ~7e-7 from the
    same caption encoded alone, so a resumed run, whose cache starts empty, lost bit-exactness."""
    alone = CachedTextEncoder(TinyT5Encoder(seed=0)).encode(["rain"]).tokens[0]
    beside = CachedTextEncoder(TinyT5Encoder(seed=0)).encode(["a dog barks beside a busy road", "rain"])
    assert torch.equal(beside.tokens[1, :4], alone)


def test_tiny_t5_is_seeded_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = TinyT5Encoder(seed=0).encode(["x"]), TinyT5Encoder(seed=0).encode(["x"])
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a.tokens, b.tokens)
    assert not torch.equal(a.tokens, TinyT5Encoder(seed=1).encode(["x"]).tokens)


def test_absent_t5_weights_give_one_line_error(tmp_path):
    with pytest.raises(LusebenchError) as info:
        load_text_encoder(TextConfig(encoder="t5", encoder_name=str(tmp_path / "no-t5-here")))
    assert "\n" not in str(info.value) and "not found locally" in str(info.value)


def test_minilm_loads_offline_from_the_wheel(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = load_text_encoder(TextConfig(encoder="minilm"))
    out = encoder.encode(["a dog barking", "a car horn honks twice"])
    assert encoder.width == 384 and out.tokens.shape[0] == 2 and out.tokens.shape[2] == 384
    assert encoder.tokenizer(["a dog barking"])["input_ids"] == [[101, 1037, 3899, 19372, 102]]
    assert out.mask[0].sum().item() == 5 and out.mask[1].sum().item() > 5
    assert (out.tokens[0, 5:] == 0).all()  # padding zeroed
    assert not torch.allclose(out.tokens[0, 1], out.tokens[1, 1])
