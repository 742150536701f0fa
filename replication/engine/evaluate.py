"""Section 6: how the paper measures a trained network.

* Top-1 and top-5 error rates (Table 1, Table 2), from the centre patch or from ten
  patches (four corners, centre, and their reflections) whose softmax outputs are
  averaged (Section 4.1).
* Ensembles: "averaging the predictions of" several CNNs (Section 6): the mean of
  their softmax outputs.
* Test-time dropout left on (an evaluation mistake some tutorials make), measured.

The figures' measurements (Fig. 3's kernels, Fig. 4's neighbours) are in ``figures``.

Every function that runs a model puts it in eval mode (dropout off, Section 4.2)
under ``torch.inference_mode()`` and restores each module's previous mode after.
Results are plain dataclasses of floats and numpy arrays.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from replication.data.augment import BatchAugmenter, as_nchw_uint8

__all__ = [
    "EvalResult",
    "eval_mode",
    "topk_correct",
    "topk_error",
    "results_from_probs",
    "predict_probs",
    "evaluate",
    "ensemble_probs",
    "ensemble_subset_effects",
    "topk_artifacts",
]


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


@dataclass
class EvalResult:
    """Error rates of one evaluation (fractions in [0, 1], not percent).

    ``per_class_top1[c]`` is the top-1 error over the images of class ``c`` (NaN for a
    class with no images). ``top5_indices`` are the five highest-scoring classes per
    image, best first. ``probs`` (the averaged softmax, [N,C]) is kept only on request.
    """

    top1: float
    top5: float
    n: int
    views: str  # "center", "ten_crop", "ensemble(center)", ...
    per_class_top1: np.ndarray
    per_class_top5: np.ndarray
    top5_indices: np.ndarray
    probs: np.ndarray | None = field(default=None, repr=False)

    def summary(self) -> dict[str, float | int | str]:
        """The scalar part, JSON-ready."""
        return {"top1": self.top1, "top5": self.top5, "n": self.n, "views": self.views}

    def to_dict(self) -> dict:
        """Everything, arrays as numpy (``probs`` omitted when not kept)."""
        out = asdict(self)
        if out["probs"] is None:
            del out["probs"]
        return out


# ---------------------------------------------------------------------------
# Top-k error
# ---------------------------------------------------------------------------


def topk_correct(scores, labels, k: int) -> np.ndarray:
    """Whether each label is among the ``k`` highest scores of its row: bool [N].

    ``scores`` [N,C] may be logits or probabilities (the ranking is the same). ``k``
    larger than C counts every prediction correct.
    """
    scores = torch.as_tensor(np.asarray(scores) if not isinstance(scores, Tensor) else scores)
    labels = torch.as_tensor(np.asarray(labels) if not isinstance(labels, Tensor) else labels).long()
    k = min(int(k), scores.shape[1])
    top = scores.topk(k, dim=1).indices
    return (top == labels.to(top.device)[:, None]).any(1).cpu().numpy()


def topk_error(scores, labels, k: int = 1) -> float:
    """Fraction of rows whose label is not among the ``k`` highest scores (Section 6)."""
    return float(1.0 - topk_correct(scores, labels, k).mean())


def _per_class_error(correct: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    wrong = np.bincount(labels, weights=~correct, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, wrong / counts, np.nan)


def results_from_probs(probs, labels, views: str = "center", keep_probs: bool = False) -> EvalResult:
    """Top-1/top-5 error, overall and per class, from scores [N,C] and labels [N]."""
    probs = np.asarray(probs, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
        raise ValueError(f"scores {probs.shape} and labels {labels.shape} disagree")
    num_classes = probs.shape[1]
    correct1 = topk_correct(probs, labels, 1)
    correct5 = topk_correct(probs, labels, 5)
    top5 = torch.from_numpy(probs).topk(min(5, num_classes), dim=1).indices.numpy()
    return EvalResult(
        top1=float(1.0 - correct1.mean()) if len(labels) else float("nan"),
        top5=float(1.0 - correct5.mean()) if len(labels) else float("nan"),
        n=int(len(labels)),
        views=views,
        per_class_top1=_per_class_error(correct1, labels, num_classes),
        per_class_top5=_per_class_error(correct5, labels, num_classes),
        top5_indices=top5,
        probs=probs if keep_probs else None,
    )


# ---------------------------------------------------------------------------
# Running a model
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def eval_mode(model: nn.Module, keep_dropout: bool = False):
    """``model.eval()`` inside, each submodule's own previous mode restored after. ``keep_dropout``
    leaves the dropout layers training (the test-time mistake the dropout errata arm measures)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    if keep_dropout:
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.train()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _batches(images, batch_size: int, device: torch.device) -> Iterable[Tensor]:
    """uint8 NCHW batches on ``device`` from a numpy array (memory map ok) or tensor."""
    for start in range(0, len(images), batch_size):
        yield as_nchw_uint8(images[start : start + batch_size]).to(device, non_blocking=True)


def _forward(fn, x: Tensor, device: torch.device, autocast_dtype, channels_last: bool) -> Tensor:
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with _autocast(device, autocast_dtype):
        return fn(x).float()


def predict_probs(
    model: nn.Module,
    images,
    augmenter: BatchAugmenter,
    *,
    ten_crop: bool = False,
    batch_size: int = 256,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    device: torch.device | str | None = None,
    keep_dropout: bool = False,
) -> np.ndarray:
    """Softmax outputs [N,C] (float32) from the centre view, or averaged over the ten views.

    ``images`` is uint8 [N,H,W,3] or [N,3,H,W] (numpy, memory map, or tensor), at the
    size of the augmenter's mean image. ``device`` defaults to the model's. ``keep_dropout``:
    dropout stays on (drawn from torch's global generator), as in code that forgets eval mode.
    """
    device = torch.device(device) if device is not None else _model_device(model)
    chunks = []
    with eval_mode(model, keep_dropout), torch.inference_mode():
        for batch in _batches(images, batch_size, device):
            if ten_crop:  # Section 4.1: softmax averaged over the ten patches
                iterate = getattr(augmenter, "iter_ten_crop", None)  # one view at a time when offered
                views = iterate(batch) if iterate is not None else augmenter.ten_crop(batch)
                probs = sum(_forward(model, v, device, autocast_dtype, channels_last).softmax(1) for v in views) / 10
            else:
                logits = _forward(model, augmenter.center(batch), device, autocast_dtype, channels_last)
                probs = logits.softmax(1)
            chunks.append(probs.cpu().numpy())
    if not chunks:
        raise ValueError("no images to evaluate")
    return np.concatenate(chunks)


def evaluate(
    model: nn.Module,
    images,
    labels,
    augmenter: BatchAugmenter,
    *,
    ten_crop: bool = False,
    batch_size: int = 256,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    device: torch.device | str | None = None,
    keep_probs: bool = False,
) -> EvalResult:
    """Top-1/top-5 error of ``model`` on uint8 ``images`` (centre view or ten views)."""
    probs = predict_probs(
        model,
        images,
        augmenter,
        ten_crop=ten_crop,
        batch_size=batch_size,
        autocast_dtype=autocast_dtype,
        channels_last=channels_last,
        device=device,
    )
    return results_from_probs(probs, labels, "ten_crop" if ten_crop else "center", keep_probs)


def ensemble_probs(member_probs: Sequence, weights: Sequence[float] | None = None) -> np.ndarray:
    """The paper's ensemble prediction: the (weighted) mean of the members' softmax outputs."""
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in member_probs])
    weights = np.ones(len(stacked)) if weights is None else np.asarray(weights, dtype=np.float64)
    return (np.tensordot(weights, stacked, axes=1) / weights.sum()).astype(np.float32)


def topk_artifacts(probs: np.ndarray, k: int, labels: np.ndarray) -> dict[str, np.ndarray]:
    """The ``k`` largest softmax outputs per image (classes int16, values float16) and the labels.

    Enough to average members into an ensemble (``ensemble_from_topk``) at a
    few hundred kB a run instead of the full [N, classes] matrix.
    """
    probs = torch.from_numpy(np.asarray(probs, dtype=np.float32))
    top = probs.topk(min(int(k), probs.shape[1]), dim=1)
    return {"val_topk_classes": top.indices.numpy().astype(np.int16),
            "val_topk_probs": top.values.numpy().astype(np.float16),
            "val_labels": np.asarray(labels).astype(np.int16)}


def ensemble_effects(member_probs: Sequence, labels, k: int = 1) -> tuple[float, list[float]]:
    """``(full, leave_one_out)``: the top-``k`` error of all members averaged minus their mean
    error, and the same for each ensemble that leaves one member out (fractions; the jackknife of
    ``claims.ensemble_measurement``)."""
    n = len(member_probs)
    full = ensemble_subset_effects(member_probs, labels, n, k)
    return float(full[0]), [float(v) for v in ensemble_subset_effects(member_probs, labels, n - 1, k)]


def ensemble_subset_effects(member_probs: Sequence, labels, size: int, k: int = 1, max_subsets: int = 252,
                            seed: int = 0) -> np.ndarray:
    """How much averaging ``size`` nets lowers the top-``k`` error (Section 6, Table 2), per subset.

    For each subset of ``size`` members (every subset when there are at most ``max_subsets``,
    else that many drawn by ``seed``): the error of the subset's averaged softmax outputs minus
    the mean error of its members, as fractions. Their spread over subsets is the bootstrap over
    member subsets that gives the ensemble claim its interval; one subset (``size`` equal to the
    number of members) has none.
    """
    members = [np.asarray(p, dtype=np.float32) for p in member_probs]
    if not 1 < size <= len(members):
        raise ValueError(f"an ensemble of {size} needs 2..{len(members)} members")
    labels = np.asarray(labels)
    single = np.array([topk_error(p, labels, k) for p in members])
    subsets = list(itertools.combinations(range(len(members)), size))
    if len(subsets) > max_subsets:
        pick = np.random.default_rng(seed).choice(len(subsets), size=max_subsets, replace=False)
        subsets = [subsets[i] for i in sorted(pick)]
    return np.array([topk_error(ensemble_probs([members[i] for i in subset]), labels, k)
                     - single[list(subset)].mean() for subset in subsets])
