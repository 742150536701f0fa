"""Section 6: top-k error, ten-crop averaging, ensembles, Fig. 4 neighbours, Fig. 3 colour statistic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from replication.engine import evaluate as E
from replication.engine import figures as F
from replication.data.augment import BatchAugmenter


class TinyNet(nn.Module):
    """A stand-in for AlexNet: ``features`` (the 'FC7' layer) and ``forward`` (logits)."""

    def __init__(self, crop: int = 6, classes: int = 7, hidden: int = 5, seed: int = 0, dropout: float = 0.0):
        super().__init__()
        torch.manual_seed(seed)
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(3 * crop * crop, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.classifier = nn.Linear(hidden, classes)

    def features(self, x):
        return self.hidden(x / 100.0)

    def forward(self, x):
        return self.classifier(self.features(x))


def toy_data(n: int = 20, size: int = 8, classes: int = 7, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, classes, n)
    mean = torch.from_numpy(images.mean(0).transpose(2, 0, 1).astype(np.float32))
    return images, labels, BatchAugmenter(mean, None, None, crop=6, lighting_std=0)


# ---------------------------------------------------------------------------
# Top-k error on hand-made scores
# ---------------------------------------------------------------------------


HAND_LOGITS = np.array(
    [
        [9.0, 1, 2, 3, 4, 5, 6],  # label 0: top-1 right
        [1.0, 9, 8, 7, 6, 5, 0],  # label 5: rank 5 -> top-5 right, top-1 wrong
        [1.0, 9, 8, 7, 6, 5, 0],  # label 6: rank 7 -> both wrong
        [0.0, 1, 2, 3, 4, 5, 9],  # label 2: rank 5 -> top-5 right
    ]
)
HAND_LABELS = np.array([0, 5, 6, 2])


def test_topk_error_on_hand_made_logits():
    assert E.topk_correct(HAND_LOGITS, HAND_LABELS, 1).tolist() == [True, False, False, False]
    assert E.topk_correct(HAND_LOGITS, HAND_LABELS, 5).tolist() == [True, True, False, True]
    assert E.topk_error(HAND_LOGITS, HAND_LABELS, 1) == 0.75
    assert E.topk_error(HAND_LOGITS, HAND_LABELS, 5) == 0.25
    assert E.topk_error(HAND_LOGITS[:, :3], np.array([0, 1, 1, 2]), 5) == 0.0  # k > classes


def test_results_from_probs_per_class_errors():
    result = E.results_from_probs(HAND_LOGITS, HAND_LABELS)
    assert (result.top1, result.top5, result.n) == (0.75, 0.25, 4)
    np.testing.assert_array_equal(result.per_class_top1, [0, np.nan, 1, np.nan, np.nan, 1, 1])
    np.testing.assert_array_equal(result.per_class_top5, [0, np.nan, 0, np.nan, np.nan, 0, 1])
    assert result.top5_indices[0].tolist() == [0, 6, 5, 4, 3]
    assert result.probs is None and "probs" not in result.to_dict()
    assert result.summary() == {"top1": 0.75, "top5": 0.25, "n": 4, "views": "center"}


# ---------------------------------------------------------------------------
# Running a model: centre, ten-crop, modes, autocast
# ---------------------------------------------------------------------------


def test_center_and_ten_crop_match_a_manual_computation():
    images, labels, aug = toy_data()
    model = TinyNet()
    with torch.no_grad():
        centre = model(aug.center(images)).softmax(1)
        ten = torch.stack([model(v).softmax(1) for v in aug.ten_crop(images)]).mean(0)
    result = E.evaluate(model, images, labels, aug, batch_size=7, keep_probs=True)
    # Not bit-exact: the batch size (7, 6 or all 20) changes how the GEMM kernels block and sum, and
    # float32 rounding of that differs per CPU (AVX2 vs AVX-512) and thread count; probs are in [0, 1].
    np.testing.assert_allclose(result.probs, centre.numpy(), rtol=1e-5, atol=1e-6)
    assert result.top1 == E.topk_error(centre, labels, 1) and result.views == "center"
    ten_crop = E.evaluate(model, images, labels, aug, ten_crop=True, batch_size=6, keep_probs=True)
    np.testing.assert_allclose(ten_crop.probs, ten.numpy(), rtol=1e-5, atol=1e-6)  # batch 6 vs all: as above
    assert ten_crop.top5 == E.topk_error(ten, labels, 5) and ten_crop.views == "ten_crop"


def test_evaluation_uses_eval_mode_and_restores_modes():
    images, labels, aug = toy_data()
    model = TinyNet(dropout=0.9)
    model.train()
    model.classifier.eval()  # a mixed state must come back exactly
    first = E.predict_probs(model, images, aug)
    second = E.predict_probs(model, images, aug)
    np.testing.assert_array_equal(first, second)  # no dropout at test time
    assert model.training and model.hidden[3].training and not model.classifier.training


def test_bf16_autocast_and_channels_last_run_and_agree_roughly():
    images, labels, aug = toy_data()
    model = TinyNet()
    exact = E.predict_probs(model, images, aug)
    approximate = E.predict_probs(model, images, aug, autocast_dtype=torch.bfloat16, channels_last=True)
    assert approximate.dtype == np.float32
    np.testing.assert_allclose(approximate, exact, atol=0.05)


# ---------------------------------------------------------------------------
# Ensembles
# ---------------------------------------------------------------------------


def test_ensemble_averages_softmax_outputs():
    a = np.array([[0.9, 0.1], [0.2, 0.8]])
    b = np.array([[0.3, 0.7], [0.4, 0.6]])
    np.testing.assert_allclose(E.ensemble_probs([a, b]), [[0.6, 0.4], [0.3, 0.7]], rtol=1e-6)
    np.testing.assert_allclose(E.ensemble_probs([a, b], weights=[3, 1]), 0.75 * a + 0.25 * b, rtol=1e-6)

    images, labels, aug = toy_data()
    members = [E.predict_probs(TinyNet(seed=s), images, aug) for s in range(3)]
    # the mean is taken in float64 and returned as float32
    np.testing.assert_allclose(E.ensemble_probs(members), np.mean(members, 0), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------
# Fig. 4: features and nearest neighbours
# ---------------------------------------------------------------------------


def test_extract_features_is_model_features_of_the_centre_view():
    images, _, aug = toy_data()
    model = TinyNet()
    with torch.no_grad():
        expected = model.features(aug.center(images)).numpy()
    # batches of 6 vs all 20 at once: the GEMM sums in another order (float32 rounding differs per CPU);
    # atol for ReLU outputs near 0, which have no relative scale (the features are of order 0.1..1)
    np.testing.assert_allclose(F.extract_features(model, images, aug, batch_size=6), expected, rtol=1e-5, atol=1e-6)
    out = np.zeros((len(images), 5), dtype=np.float32)
    assert F.extract_features(model, images, aug, batch_size=6, out=out) is out
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert F.extract_features(model, images, aug, dtype=np.float16).dtype == np.float16


def test_nearest_neighbours_agree_with_brute_force_across_chunks():
    rng = np.random.default_rng(0)
    database, queries = rng.normal(size=(53, 9)), rng.normal(size=(11, 9))
    queries[0] = database[17]  # an exact match is its own nearest neighbour at distance 0
    brute = np.linalg.norm(queries[:, None, :] - database[None, :, :], axis=2)
    expected = np.argsort(brute, axis=1, kind="stable")[:, :4]
    found = F.nearest_neighbours(queries, database, k=4, chunk_size=7, query_chunk_size=5, dtype=torch.float64)
    np.testing.assert_array_equal(found.indices, expected)
    np.testing.assert_allclose(found.distances, np.take_along_axis(brute, expected, 1), rtol=1e-5, atol=1e-6)
    assert found.indices[0, 0] == 17 and found.distances[0, 0] == pytest.approx(0, abs=1e-6)
    float32 = F.nearest_neighbours(queries.astype(np.float32), database.astype(np.float32), k=4, chunk_size=10)
    np.testing.assert_array_equal(float32.indices, expected)


# ---------------------------------------------------------------------------
# Fig. 3: conv1 colour statistic
# ---------------------------------------------------------------------------


def test_colour_statistic_on_hand_made_kernels():
    rng = np.random.default_rng(0)
    grey = np.repeat(rng.normal(size=(1, 1, 5, 5)), 3, axis=1)  # R = G = B everywhere
    opponent = np.stack([np.ones((5, 5)), -np.ones((5, 5)), np.zeros((5, 5))])[None]  # all colour
    random = rng.normal(size=(1, 3, 5, 5))
    constant = np.full((1, 3, 5, 5), 0.3)
    stats = F.kernel_colour_statistic(torch.from_numpy(np.concatenate([grey, opponent, random, constant])))
    assert stats[0] == pytest.approx(0, abs=1e-12)
    assert stats[1] == pytest.approx(1)
    assert 0.5 < stats[2] < 1
    assert stats[3] == 0
    with pytest.raises(ValueError):
        F.kernel_colour_statistic(torch.zeros(4, 1, 3, 3))


class TwoTowers(nn.Module):
    def __init__(self):
        super().__init__()
        grey = torch.randn(4, 1, 3, 3).expand(4, 3, 3, 3).clone()
        self.tower_weights = [grey, torch.randn(4, 3, 3, 3)]

    def conv1_weights(self):
        return self.tower_weights


def test_conv1_statistics_per_tower_and_plot():
    towers = F.conv1_colour_statistics(TwoTowers())
    assert len(towers) == 2 and np.allclose(towers[0], 0) and (towers[1] > 0.3).all()
    single = F.conv1_colour_statistics(nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 2, 3)))
    assert len(single) == 1 and single[0].shape == (6,)

    figure = F.plot_conv1_kernels(TwoTowers(), ncols=3, title="conv1")
    images = [ax for sub in figure.subfigs for ax in sub.axes if ax.images]
    assert len(images) == 8 and len(figure.subfigs) == 2
