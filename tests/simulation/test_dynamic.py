import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lusebench.errors import LusebenchError
from lusebench.simulation.config import SimulationConfig
from lusebench.simulation.dynamic import DynamicMixingDataset


def _config(corpus_spec, **kw):
    return SimulationConfig(split="train", num_sources=2, num_mixtures=8, seed=5, duration_s=0.5, corpus=corpus_spec, **kw)


def test_stream_is_a_function_of_seed_epoch_and_index(corpus_spec):
    a, b = DynamicMixingDataset(_config(corpus_spec)), DynamicMixingDataset(_config(corpus_spec))
    torch.testing.assert_close(a[3]["mixture"], b[3]["mixture"], rtol=0, atol=0)
    assert not torch.equal(a[3]["mixture"], a[4]["mixture"])
    before = a[3]["mixture"]
    a.set_epoch(1)
    assert not torch.equal(before, a[3]["mixture"])
    item = a[0]
    assert item["mixture"].shape == (2, 8000) and item["target"].shape == (2, 8000)
    assert 0 <= item["azimuth_deg"] < 360 and isinstance(item["caption"], str)


def test_worker_count_does_not_change_the_epoch(corpus_spec):
    dataset = DynamicMixingDataset(_config(corpus_spec))

    def epoch(workers):
        loader = DataLoader(dataset, batch_size=4, num_workers=workers, shuffle=False)
        return torch.cat([batch["mixture"] for batch in loader])

    single, parallel = epoch(0), epoch(2)
    torch.testing.assert_close(single, parallel, rtol=0, atol=0)
    ids = [dataset[i]["mixture_id"] for i in range(len(dataset))]
    assert len(set(ids)) == len(ids)
    assert len({tuple(np.round(single[i, 0, :50].numpy(), 6)) for i in range(len(single))}) == len(single)


def test_query_pairs_serve_each_mixture_for_its_target_and_its_interferer(corpus_spec):
    paired = DynamicMixingDataset(_config(corpus_spec), query_pairs=True)
    single = DynamicMixingDataset(_config(corpus_spec))
    first, second = paired[2], paired[3]
    # Item 2k asks for mixture k's target, exactly as the unpaired stream's item k.
    torch.testing.assert_close(first["mixture"], single[1]["mixture"], rtol=0, atol=0)
    torch.testing.assert_close(first["target"], single[1]["target"], rtol=0, atol=0)
    assert first["caption"] == single[1]["caption"] and first["azimuth_deg"] == single[1]["azimuth_deg"]
    # Item 2k + 1: the same mixture, the interferer's caption, image and direction.
    torch.testing.assert_close(second["mixture"], first["mixture"], rtol=0, atol=0)
    assert second["caption"] != first["caption"] and second["azimuth_deg"] != first["azimuth_deg"]
    # Each names the other as its "interferer" (the query-swap check asks for that one).
    assert (first["interferer_caption"], second["interferer_caption"]) == (second["caption"], first["caption"])
    # Two sources: the two images are the whole mixture.
    torch.testing.assert_close(first["target"] + second["target"], first["mixture"], rtol=0, atol=1e-6)
    assert first["mixture_id"] != second["mixture_id"]
    # The pair's second item is the same when asked for alone (nothing rides on the cache).
    alone = DynamicMixingDataset(_config(corpus_spec), query_pairs=True)[3]
    torch.testing.assert_close(alone["target"], second["target"], rtol=0, atol=0)
    assert alone["caption"] == second["caption"]


def test_several_heads_draw_one_per_mixture_over_the_one_head_recipes(corpus_spec):
    from lusebench.simulation.heads import HEADS

    one = DynamicMixingDataset(_config(corpus_spec))
    many = DynamicMixingDataset(_config(corpus_spec, hrtf="kemar,fabian"))
    files = {HEADS[name].file: name for name in many.heads}
    drawn = []
    for index in range(len(many)):
        item, twin = many[index], one[index]
        drawn.append(files[many._last[1].hrtf.split("#")[0]])
        # The recipe's draws are the one-head run's: same clips, azimuths and query; only the head differs.
        assert many._last[1].clip_ids == one._last[1].clip_ids and item["azimuth_deg"] == twin["azimuth_deg"]
        assert item["caption"] == twin["caption"]
    assert set(drawn) == {"kemar", "fabian"}  # 8 mixtures, 2 heads: both drawn with this seed
    assert drawn == [DynamicMixingDataset(_config(corpus_spec, hrtf="kemar,fabian")).head(
        [5, 0, 0, i]) for i in range(len(many))]
    for bad in ("kemar,,fabian", "kemar,kemar", "kemar,nohead"):
        with pytest.raises(LusebenchError):
            DynamicMixingDataset(_config(corpus_spec, hrtf=bad))


def _debcaps(**kw):
    return SimulationConfig(split="train", num_sources=2, num_mixtures=400, seed=5, duration_s=0.5, corpus="debcaps", **kw)


def test_absent_queries_ask_for_an_unrelated_clip_over_the_present_mixture():
    from lusebench.baselines.losses import gaussian_doa_label
    from lusebench.simulation.corpus import open_corpus
    from lusebench.simulation.recipe import caption_words

    absent = DynamicMixingDataset(_debcaps(), absent_share=0.25)
    drawn = [i for i in range(len(absent)) if absent.absent(i)]
    assert abs(len(drawn) / len(absent) - 0.25) < 0.05  # 95 of 400 with this seed
    assert drawn == [i for i in range(len(absent)) if DynamicMixingDataset(_debcaps(), absent_share=0.25).absent(i)]
    absent.set_epoch(1)
    assert drawn != [i for i in range(len(absent)) if absent.absent(i)]  # each epoch draws its own
    absent.set_epoch(0)
    present = DynamicMixingDataset(_debcaps())
    assert not any(present.absent(i) for i in range(len(present)))
    corpus = open_corpus("debcaps")
    for index in drawn[:3]:
        item, twin = absent[index], present[index]
        recipe = absent._last[1]
        # The mixture a share-0 run draws at this index; only the query differs.
        torch.testing.assert_close(item["mixture"], twin["mixture"], rtol=0, atol=0)
        assert item["caption"] != twin["caption"] and item["mixture_id"].endswith("/absent")
        query = corpus.clip(recipe.query_clip_id)
        assert item["caption"] in query.captions and recipe.query_clip_id not in recipe.clip_ids
        sources = [corpus.clip(clip_id) for clip_id in recipe.clip_ids]
        assert all(query.category != source.category for source in sources)
        assert not caption_words(item["caption"]) & set().union(*(caption_words(c) for c in recipe.captions))
        assert not item["target"].any() and np.isnan(item["azimuth_deg"])
        assert not gaussian_doa_label(torch.tensor([item["azimuth_deg"]])).any()  # no direction, no peak
        again = DynamicMixingDataset(_debcaps(), absent_share=0.25)[index]
        assert again["caption"] == item["caption"]
        torch.testing.assert_close(again["mixture"], item["mixture"], rtol=0, atol=0)
    # A present item of the absent stream is the share-0 stream's item.
    kept = next(i for i in range(len(absent)) if i not in drawn)
    assert absent[kept]["caption"] == present[kept]["caption"] and absent[kept]["azimuth_deg"] == present[kept]["azimuth_deg"]


def test_with_query_pairs_an_absent_item_replaces_its_own_query_alone():
    paired = DynamicMixingDataset(_debcaps(), query_pairs=True, absent_share=0.25)
    plain = DynamicMixingDataset(_debcaps(), query_pairs=True)
    # A pair with exactly one absent item, either way round.
    for index in (i for i in range(len(paired)) if paired.absent(i) and not paired.absent(i ^ 1)):
        partner = index ^ 1
        item, other = paired[index], paired[partner]
        torch.testing.assert_close(item["mixture"], other["mixture"], rtol=0, atol=0)
        assert np.isnan(item["azimuth_deg"]) and not item["target"].any()
        # The partner is the share-0 stream's item: its caption, target and direction.
        twin = plain[partner]
        assert other["caption"] == twin["caption"] and other["azimuth_deg"] == twin["azimuth_deg"]
        torch.testing.assert_close(other["target"], twin["target"], rtol=0, atol=0)
        break
    else:
        raise AssertionError("no pair with one absent item")
    for share in (-0.1, 0.6, float("nan")):
        with pytest.raises(LusebenchError, match="--absent-share must lie in"):
            DynamicMixingDataset(_debcaps(), absent_share=share)
