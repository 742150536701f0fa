"""What is measured once a net has finished training (Section 6, Figs. 3 and 4).

Centre-crop and ten-crop errors on the validation split, the arrays the figures need (conv1's
kernels, per-class errors, FC7 neighbours of seeded queries), the complete or top-k softmax outputs
that ensembles average, and the errors with dropout left on at test time (an evaluation mistake
measured by the errata notebook). ``trainer`` is an ``engine.trainer.Trainer``.
"""

from __future__ import annotations

import numpy as np
import torch

from replication.engine import evaluate, figures
from replication.seeds import STREAM_DROPOUT, derive_seed


def final_measurements(trainer, config, is_main: bool) -> tuple[dict, dict[str, np.ndarray]]:
    """``(summary, artifacts)`` of the final net; artifacts only on the main rank."""
    final = trainer.evaluate()
    summary = {"val_top1": final["top1"], "val_top5": final["top5"], "val_loss": final["loss"]}
    result = final["result"]
    if config.ten_crop:
        ten = trainer.evaluate(ten_crop=True)
        summary.update(ten_crop_top1=ten["top1"], ten_crop_top5=ten["top5"])
        result = ten["result"]
    out = artifacts(trainer, result) if is_main else {}
    if config.eval_dropout_draws and is_main and not trainer.streaming:  # the errata's evaluation mistake
        summary.update(dropout_left_on(trainer, config.eval_dropout_draws))
    stored_probs = (ten if config.ten_crop else final)["probs"]
    if config.save_val_topk > 0 and is_main:
        out.update(evaluate.topk_artifacts(stored_probs, config.save_val_topk, trainer.val_split.labels.numpy()))
    if config.save_val_probs and is_main:  # complete predictions, for ensembles (float16: ~0.05% rounding)
        out.update(val_probs=np.asarray(stored_probs).astype(np.float16),
                   val_labels=trainer.val_split.labels.numpy().astype(np.int16))
    return summary, out


def artifacts(trainer, result) -> dict[str, np.ndarray]:
    """The small arrays figures need: conv1 kernels (Fig. 3), per-class errors, neighbours (Fig. 4)."""

    cfg, out = trainer.config, {}
    if cfg.save_conv1:
        out["conv1"] = np.stack([w.numpy() for w in figures.conv1_kernels(trainer.module)])  # [towers, K, 3, h, w]
    if cfg.per_class_error:
        out["per_class_error"] = np.asarray(result.per_class_top1, dtype=np.float64)
    if cfg.neighbours_k > 0 and cfg.neighbour_queries > 0 and not trainer.streaming:
        queries = figures.spread_queries(trainer.val_split.labels.numpy(), cfg.neighbour_queries,
                                         cfg.neighbour_query_seed)
        kwargs = trainer.eval_kwargs()
        query_features = figures.extract_features(trainer.module, trainer.val_split.images[torch.from_numpy(queries)],
                                                   trainer.augmenter, **kwargs)
        train_features = figures.extract_features(trainer.module, trainer.train_split.images, trainer.augmenter, **kwargs)
        neighbours = figures.nearest_neighbours(query_features, train_features, cfg.neighbours_k)
        out["neighbour_queries"] = queries
        out["neighbours"] = neighbours.indices
        out["neighbour_distances"] = neighbours.distances
    return out

def dropout_left_on(trainer, draws: int) -> dict[str, float]:
    """Val error with dropout on at test time: one draw, and the softmax averaged over ``draws``
    (centre crop; the draws from a stream of their own, so the numbers repeat)."""
    labels, probs = trainer.val_split.labels.numpy(), []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(trainer.config.seed, 0, STREAM_DROPOUT, rank=1))
        for _ in range(draws):
            probs.append(evaluate.predict_probs(trainer.module, trainer.val_split.images, trainer.augmenter,
                                                keep_dropout=True, **trainer.eval_kwargs()))
    mean = np.mean(probs, axis=0)
    return {"val_top1_dropout_on_one_draw": evaluate.topk_error(probs[0], labels, 1),
            "val_top5_dropout_on_one_draw": evaluate.topk_error(probs[0], labels, 5),
            "val_top1_dropout_on_mean": evaluate.topk_error(mean, labels, 1),
            "val_top5_dropout_on_mean": evaluate.topk_error(mean, labels, 5),
            "dropout_on_draws": draws}
