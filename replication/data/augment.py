"""Section 4.1: data augmentation and the paper's preprocessing.

Krizhevsky, Sutskever and Hinton (2012) reduce overfitting with two label-preserving
transformations, both cheap enough to run while the GPU trains:

1. *Translations and horizontal reflections.* Training uses random 224x224 patches
   of the 256x256 images, and their mirror images. At test time the network sees
   ten patches, the four corners and the centre plus their reflections, and the
   softmax outputs are averaged (ten-crop testing). Smaller images use the same
   ratio: 28 of 32, 112 of 128 (``crop_for_size``).
2. *PCA lighting.* With ``p_i, lambda_i`` the eigenvectors and eigenvalues of the 3x3
   covariance of the RGB pixel values over the training set, each training image
   gets the shift ``[p1 p2 p3][a1 l1, a2 l2, a3 l3]^T`` added to every pixel, with
   ``a_i ~ N(0, 0.1)`` drawn once per image each time the image is used.

The only preprocessing (Section 2) is subtracting the mean activity over the
training set from each pixel: here the per-pixel mean *image*, at full size, so a
crop subtracts the mean crop at the same offset (and mirrors it with the image).
Pixels stay on the 0..255 scale, minus the mean, as in the paper; ``scale``
divides the result when an optimiser prefers smaller inputs.

``BatchAugmenter`` works on whole uint8 batches, a batch at a time, with tensor ops
on whatever device the batch lives on: in memory (CIFAR-10, Tiny ImageNet,
Imagenette) or decoded from disk by DataLoader workers (ImageNet). Every image gets
its own crop offset, flip and lighting draw, all taken from an explicit
``torch.Generator`` so that a resumed run repeats them.

Dataset statistics (mean image, RGB covariance and its eigen-decomposition) come
from one chunked, exact float64 pass (``compute_dataset_stats``; CIFAR-10's 50k
training images take about 3 s on two cores).

Eigen-scale caveat (``eigen_scale``): the paper's text multiplies ``a_i`` by the
eigenvalue ``lambda_i`` without naming the pixel scale, while the 2012 code used
``sqrt(lambda_i)`` (``'sqrt'``, the per-axis standard deviation). Three readings:

- ``'lambda'``: the text on the 0..255 scale. CIFAR-10's eigenvalues are about
  (11173, 815, 172): the brightness axis moves with a standard deviation of about
  1100 levels, far beyond the pixel range;
- ``'lambda_unit'``: the text on the 0..1 scale, where the formula gives a
  plausible jitter (the reading of later reimplementations, e.g. fb.resnet.torch):
  eigenvalues of pixels/255, the shift converted back to levels, ``a_i lambda_i / 255``;
  about 4.4 levels on CIFAR-10. The paper's form the claims use;
- ``'sqrt'``: the 2012 code, about 10.6 levels on CIFAR-10.

``lighting_shift_std`` reports the size so a caller can see what it chose.

Speed (one torch thread, thread CPU time, 128-image batches, uint8 NHWC numpy in):
32->28 about 1100 training batches/s, 128->112 about 60; the centre crop 2500 and
150. Gathering every image's window with one ``gather`` beat per-image slicing,
unfold + indexing and gathering from NHWC (see ``crop_batch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch
from torch import Tensor


EigenScale = Literal["lambda", "lambda_unit", "sqrt"]

PAPER_IMAGE_SIZE = 256
PAPER_CROP_SIZE = 224
PAPER_LIGHTING_STD = 0.1

__all__ = [
    "PAPER_IMAGE_SIZE",
    "PAPER_CROP_SIZE",
    "PAPER_LIGHTING_STD",
    "crop_for_size",
    "as_nchw_uint8",
    "compute_mean_image",
    "compute_rgb_covariance",
    "compute_pca",
    "pca_from_covariance",
    "DatasetStats",
    "compute_dataset_stats",
    "draw_crops",
    "crop_batch",
    "ten_crop_offsets",
    "draw_alphas",
    "lighting_shift",
    "lighting_shift_std",
    "BatchAugmenter",
]


def crop_for_size(image_size: int) -> int:
    """The paper's crop ratio 224/256 at another image size: 256->224, 128->112, 32->28."""
    return int(round(image_size * PAPER_CROP_SIZE / PAPER_IMAGE_SIZE))


# ---------------------------------------------------------------------------
# Layout helpers
# ---------------------------------------------------------------------------


def _as_tensor(images) -> Tensor:
    """A torch view of a numpy array or tensor; copies read-only (mmap) numpy arrays."""
    if isinstance(images, Tensor):
        return images
    array = np.asarray(images)
    if not array.flags.writeable:  # e.g. a slice of a read-only memory map
        array = np.array(array)
    return torch.from_numpy(array)


def _is_nhwc(shape: Sequence[int]) -> bool:
    """NHWC when the last axis has 3 channels and axis 1 does not (3x3 images count as NHWC)."""
    if len(shape) != 4:
        raise ValueError(f"expected a batch of images [N,H,W,3] or [N,3,H,W], got shape {tuple(shape)}")
    if shape[-1] == 3:
        return True
    if shape[1] == 3:
        return False
    raise ValueError(f"no RGB axis of size 3 in batch shape {tuple(shape)}")


def as_nchw_uint8(batch, contiguous: bool = False) -> Tensor:
    """A batch of images as an NCHW tensor, dtype unchanged.

    Accepts numpy arrays or tensors in NHWC (the data module's layout) or NCHW. A
    view when possible; ``contiguous=True`` copies NHWC data into dense NCHW (through
    numpy on the CPU, which transposes uint8 about twice as fast as torch).
    """
    if contiguous and isinstance(batch, np.ndarray) and _is_nhwc(batch.shape):
        return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))
    x = _as_tensor(batch)
    if _is_nhwc(x.shape):
        if contiguous and x.device.type == "cpu" and not x.requires_grad:
            return torch.from_numpy(np.ascontiguousarray(x.numpy().transpose(0, 3, 1, 2)))
        x = x.permute(0, 3, 1, 2)
    return x.contiguous() if contiguous else x


# ---------------------------------------------------------------------------
# Dataset statistics: mean image and RGB covariance (computed once per dataset)
# ---------------------------------------------------------------------------


def _accumulate_stats(images, pixels_per_chunk: int = 1 << 22):
    """One pass over uint8 NHWC images: per-pixel sums and RGB second moments, in float64.

    Returns (sum_image [H,W,3], sum_rgb [3], sum_outer [3,3], n_images). Works through
    ``pixels_per_chunk`` pixels at a time (memory maps fine) in one reused float64
    buffer. The sums are exact: products of 0..255 values summed over 100k 32x32
    images stay far below 2**53.
    """
    shape = tuple(images.shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"expected uint8 images [N,H,W,3], got shape {shape}")
    n, h, w, _ = shape
    step = max(1, pixels_per_chunk // (h * w))
    buffer = torch.empty((min(step, n), h, w, 3), dtype=torch.float64)
    sum_image = torch.zeros(h, w, 3, dtype=torch.float64)
    sum_outer = torch.zeros(3, 3, dtype=torch.float64)
    for start in range(0, n, step):
        chunk = buffer[: min(step, n - start)]
        chunk.copy_(_as_tensor(images[start : start + step]))
        sum_image += chunk.sum(0)
        pixels = chunk.view(-1, 3)
        sum_outer += pixels.T @ pixels
    return sum_image, sum_image.sum((0, 1)), sum_outer, n


def compute_mean_image(images_uint8_nhwc) -> Tensor:
    """Per-pixel mean over the training set, float32 [3,H,W] on the 0..255 scale (Section 2)."""
    sum_image, _, _, n = _accumulate_stats(images_uint8_nhwc)
    return (sum_image / n).permute(2, 0, 1).to(torch.float32).contiguous()


def _covariance(sum_rgb: Tensor, sum_outer: Tensor, n_pixels: int) -> Tensor:
    mean = sum_rgb / n_pixels
    return sum_outer / n_pixels - torch.outer(mean, mean)


def compute_rgb_covariance(images_uint8_nhwc) -> Tensor:
    """The 3x3 covariance (float64) of RGB values over every pixel of every image, 0..255 scale."""
    _, sum_rgb, sum_outer, n = _accumulate_stats(images_uint8_nhwc)
    h, w = images_uint8_nhwc.shape[1:3]
    return _covariance(sum_rgb, sum_outer, n * h * w)


def pca_from_covariance(covariance: Tensor) -> tuple[Tensor, Tensor]:
    """Eigenvalues (descending, float32 [3]) and eigenvectors (columns, float32 [3,3]).

    ``eigvecs[:, i]`` is ``p_i``; ``eigvecs @ diag(eigvals) @ eigvecs.T`` reconstructs
    the covariance. Signs are fixed so each eigenvector's largest entry is positive.
    """
    values, vectors = torch.linalg.eigh(covariance.to(torch.float64))
    order = torch.argsort(values, descending=True)
    values, vectors = values[order].clamp_min(0.0), vectors[:, order]
    largest = vectors.gather(0, vectors.abs().argmax(0, keepdim=True))
    vectors = vectors * torch.sign(largest)
    return values.to(torch.float32), vectors.to(torch.float32)


def compute_pca(images_uint8_nhwc) -> tuple[Tensor, Tensor]:
    """PCA of the training set's RGB pixel values (Section 4.1): (eigvals [3], eigvecs [3,3])."""
    return pca_from_covariance(compute_rgb_covariance(images_uint8_nhwc))


@dataclass
class DatasetStats:
    """What the preprocessing needs from a training set, computed in one pass."""

    mean_image: Tensor  # float32 [3,H,W], 0..255 scale
    eigvals: Tensor  # float32 [3], descending
    eigvecs: Tensor  # float32 [3,3], columns are eigenvectors
    covariance: Tensor  # float64 [3,3]
    n_images: int

    def to_numpy(self) -> dict[str, np.ndarray]:
        return {
            "mean_image": self.mean_image.numpy(),
            "eigvals": self.eigvals.numpy(),
            "eigvecs": self.eigvecs.numpy(),
            "covariance": self.covariance.numpy(),
            "n_images": np.asarray(self.n_images),
        }

    @classmethod
    def from_numpy(cls, arrays) -> "DatasetStats":
        return cls(
            mean_image=torch.from_numpy(np.array(arrays["mean_image"], dtype=np.float32)),
            eigvals=torch.from_numpy(np.array(arrays["eigvals"], dtype=np.float32)),
            eigvecs=torch.from_numpy(np.array(arrays["eigvecs"], dtype=np.float32)),
            covariance=torch.from_numpy(np.array(arrays["covariance"], dtype=np.float64)),
            n_images=int(arrays["n_images"]),
        )


def compute_dataset_stats(images_uint8_nhwc) -> DatasetStats:
    """Mean image and RGB PCA of uint8 NHWC training images in one chunked float64 pass."""
    sum_image, sum_rgb, sum_outer, n = _accumulate_stats(images_uint8_nhwc)
    h, w = sum_image.shape[:2]
    covariance = _covariance(sum_rgb, sum_outer, n * h * w)
    eigvals, eigvecs = pca_from_covariance(covariance)
    mean_image = (sum_image / n).permute(2, 0, 1).to(torch.float32).contiguous()
    return DatasetStats(mean_image, eigvals, eigvecs, covariance, n)


# ---------------------------------------------------------------------------
# Crops and flips (shared by the batch and the streaming paths)
# ---------------------------------------------------------------------------


def _check_crop(height: int, width: int, crop: int) -> None:
    if not 0 < crop <= min(height, width):
        raise ValueError(f"crop {crop} does not fit images of size {height}x{width}")


def draw_crops(
    n: int, height: int, width: int, crop: int, generator: torch.Generator | None, flip: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Random crop offsets and flips for ``n`` images: (tops [n], lefts [n], flips [n] bool).

    Every image gets its own offset, uniform over the ``(H-crop+1) x (W-crop+1)``
    positions, and a fair coin for the horizontal reflection. Drawn on the
    generator's device (CPU by default) in a fixed order: tops, lefts, flips.
    """
    _check_crop(height, width, crop)
    device = generator.device if generator is not None else "cpu"
    tops = torch.randint(0, height - crop + 1, (n,), generator=generator, device=device)
    lefts = torch.randint(0, width - crop + 1, (n,), generator=generator, device=device)
    if flip:
        flips = torch.randint(0, 2, (n,), generator=generator, device=device).bool()
    else:
        flips = torch.zeros(n, dtype=torch.bool, device=device)
    return tops, lefts, flips


def _window_index(tops: Tensor, lefts: Tensor, flips: Tensor, crop: int, width: int) -> Tensor:
    """Flat pixel index (row * width + column) of each image's window, mirrored where ``flips``: [N, crop*crop]."""
    steps = torch.arange(crop, device=tops.device)
    rows = tops[:, None] + steps  # [N, crop]
    cols = torch.where(flips[:, None], lefts[:, None] + (crop - 1) - steps, lefts[:, None] + steps)
    return (rows[:, :, None] * width + cols[:, None, :]).reshape(len(tops), crop * crop)


def crop_batch(x: Tensor, tops: Tensor, lefts: Tensor, flips: Tensor, crop: int) -> Tensor:
    """Per-image crop windows, mirrored where ``flips``: [N,C,H,W] -> contiguous [N,C,crop,crop].

    One ``gather`` over the flattened pixels; the reflection is folded into the
    column index, so flipped and unflipped images cost the same. Any dtype and
    device; ``x`` may be an expanded view (the mean image broadcast over the batch).
    Dense NCHW input is fastest (measured: gathering from NHWC with its 3-wide inner
    axis is several times slower than transposing first; so is unfold + indexing).
    """
    n, channels, height, width = x.shape
    _check_crop(height, width, crop)
    device = x.device
    index = _window_index(tops.to(device), lefts.to(device), flips.to(device), crop, width)
    flat = x.reshape(n, channels, height * width)
    return flat.gather(2, index[:, None, :].expand(n, channels, crop * crop)).reshape(n, channels, crop, crop)


def ten_crop_offsets(height: int, width: int, crop: int) -> list[tuple[int, int, bool]]:
    """The ten test views as (top, left, flip): corners TL, TR, BL, BR, centre, then mirrors.

    The mirrors are the paper's "horizontal reflections" of the five patches, in the
    same order. ``torchvision.transforms.TenCrop`` gives the same ten views in another
    order (it crops the mirrored image); the centre uses its rounding, which only
    matters for odd margins (the paper's 256->224, 128->112, 32->28 are even).
    """
    _check_crop(height, width, crop)
    bottom, right = height - crop, width - crop
    centre = (int(round(bottom / 2.0)), int(round(right / 2.0)))  # torchvision's rounding
    five = [(0, 0), (0, right), (bottom, 0), (bottom, right), centre]
    return [(t, l, False) for t, l in five] + [(t, l, True) for t, l in five]


# ---------------------------------------------------------------------------
# PCA lighting (shared)
# ---------------------------------------------------------------------------


def draw_alphas(n: int, std: float, generator: torch.Generator | None) -> Tensor:
    """``a_i ~ N(0, std)`` for each of ``n`` images: float32 [n, 3] on the generator's device."""
    device = generator.device if generator is not None else "cpu"
    return torch.randn(n, 3, generator=generator, device=device) * std


def _eigen_weights(eigvals: Tensor, eigen_scale: EigenScale) -> Tensor:
    if eigen_scale == "lambda":
        return eigvals
    if eigen_scale == "lambda_unit":  # lambda of pixels/255, the shift back on the 0..255 scale
        return eigvals / 255.0
    if eigen_scale == "sqrt":
        return eigvals.clamp_min(0).sqrt()
    raise ValueError(f"eigen_scale must be 'lambda' (the paper's text on the 0..255 scale), 'lambda_unit' (on the "
                     f"0..1 scale) or 'sqrt' (the 2012 code), got {eigen_scale!r}")


def lighting_shift(alphas: Tensor, eigvals: Tensor, eigvecs: Tensor, eigen_scale: EigenScale = "lambda") -> Tensor:
    """The RGB shift ``[p1 p2 p3][a1 l1, a2 l2, a3 l3]^T`` per image: [n,3] from alphas [n,3].

    ``l_i`` is ``lambda_i`` (``'lambda'``), ``lambda_i / 255`` (``'lambda_unit'``: the paper's form on
    the 0..1 scale, in levels) or ``sqrt(lambda_i)`` (``'sqrt'``, the 2012 code).
    """
    weights = _eigen_weights(eigvals.to(alphas), eigen_scale)
    return (alphas * weights) @ eigvecs.to(alphas).T


def lighting_shift_std(eigvals: Tensor, std: float = PAPER_LIGHTING_STD, eigen_scale: EigenScale = "lambda") -> float:
    """Typical size (RMS over the three channels) of the lighting shift, in pixel levels."""
    weights = _eigen_weights(torch.as_tensor(eigvals, dtype=torch.float64), eigen_scale)
    return float(std * torch.sqrt((weights**2).sum() / 3))


def _add_lighting(x: Tensor, shift: Tensor) -> Tensor:
    """Adds one RGB shift per image to every pixel of it, in place: x [N,3,H,W], shift [N,3]."""
    return x.add_(shift.to(x)[:, :, None, None])


# ---------------------------------------------------------------------------
# The batch path
# ---------------------------------------------------------------------------


class BatchAugmenter:
    """Section 4.1 on whole uint8 batches: crops, flips, lighting, mean subtraction.

    ``augmenter(batch, generator)`` -> float32 [N,3,crop,crop] for training;
    ``augmenter.center(batch)`` -> [N,3,crop,crop] and ``augmenter.ten_crop(batch)`` ->
    [10,N,3,crop,crop] for testing. ``batch`` is uint8 [N,H,W,3] or [N,3,H,W] (numpy
    or torch, any device); the output lives on the batch's device. Outputs are
    contiguous NCHW, or ``torch.channels_last`` when ``channels_last=True`` (saves a
    layout copy when the model runs channels_last anyway).

    Output pixel = ``(image - mean_image + lighting) / scale`` at the crop position,
    mirrored with the image. ``lighting_std`` 0 or None disables lighting;
    ``flip=False`` disables reflections. ``eigen_scale`` see the module docstring.
    Random draws, in order: tops, lefts, flips (``draw_crops``), then alphas.
    """

    def __init__(
        self,
        mean_image,
        eigvals=None,
        eigvecs=None,
        crop: int = PAPER_CROP_SIZE,
        flip: bool = True,
        lighting_std: float | None = PAPER_LIGHTING_STD,
        scale: float = 1.0,
        eigen_scale: EigenScale = "lambda",
        channels_last: bool = False,
    ):
        mean = torch.as_tensor(mean_image, dtype=torch.float32)
        if mean.ndim != 3:
            raise ValueError(f"mean_image must be [3,H,W] (or [H,W,3]), got shape {tuple(mean.shape)}")
        if mean.shape[0] != 3 and mean.shape[-1] == 3:
            mean = mean.permute(2, 0, 1)
        self.mean_image = mean.contiguous()
        _check_crop(mean.shape[1], mean.shape[2], crop)
        self.crop = int(crop)
        self.flip = bool(flip)
        self.lighting_std = float(lighting_std or 0.0)
        if self.lighting_std and (eigvals is None or eigvecs is None):
            raise ValueError("PCA lighting needs eigvals and eigvecs (or lighting_std=0)")
        self.eigvals = None if eigvals is None else torch.as_tensor(eigvals, dtype=torch.float32)
        self.eigvecs = None if eigvecs is None else torch.as_tensor(eigvecs, dtype=torch.float32)
        self.scale = float(scale)
        _eigen_weights(torch.ones(3), eigen_scale)  # validate early
        self.eigen_scale: EigenScale = eigen_scale
        self.channels_last = bool(channels_last)
        self._mean_on: dict[torch.device, Tensor] = {}

    @classmethod
    def from_stats(cls, stats: DatasetStats, crop: int, **kwargs) -> "BatchAugmenter":
        return cls(stats.mean_image, stats.eigvals, stats.eigvecs, crop, **kwargs)

    def __repr__(self) -> str:
        size = tuple(self.mean_image.shape[1:])
        return (
            f"BatchAugmenter(image={size}, crop={self.crop}, flip={self.flip}, "
            f"lighting_std={self.lighting_std}, eigen_scale={self.eigen_scale!r}, scale={self.scale}, "
            f"channels_last={self.channels_last})"
        )

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.mean_image.shape[1]), int(self.mean_image.shape[2])

    def _mean(self, like: Tensor) -> Tensor:
        """The mean image on ``like``'s device (moved once, then cached)."""
        if like.device not in self._mean_on:
            self._mean_on[like.device] = self.mean_image.to(like.device)
        return self._mean_on[like.device]

    def _prepare(self, batch) -> Tensor:
        x = as_nchw_uint8(batch, contiguous=True)
        if tuple(x.shape[1:]) != tuple(self.mean_image.shape):
            raise ValueError(
                f"batch images {tuple(x.shape[1:])} (as NCHW) do not match the mean image "
                f"{tuple(self.mean_image.shape)}"
            )
        return x

    def _finish_layout(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)

    def _finish(self, x: Tensor) -> Tensor:
        if self.scale != 1.0:
            x = x.div_(self.scale)
        return self._finish_layout(x)

    def __call__(self, batch, generator: torch.Generator, lighting_generator: torch.Generator | None = None) -> Tensor:
        """Training views: a random crop, flip and lighting draw per image. The lighting coefficients
        come from ``lighting_generator`` when given (so that turning lighting off leaves every crop
        and flip as it was: paired arms), else from ``generator`` after the crops."""
        if not isinstance(generator, torch.Generator):
            raise TypeError("BatchAugmenter needs an explicit torch.Generator (so a resumed run repeats its draws)")
        x = self._prepare(batch)
        n, _, height, width = x.shape
        tops, lefts, flips = draw_crops(n, height, width, self.crop, generator, self.flip)
        centred = x.to(torch.float32).sub_(self._mean(x))  # subtract the full-size mean image, then crop
        out = crop_batch(centred, tops, lefts, flips, self.crop)
        if self.lighting_std:
            alphas = draw_alphas(n, self.lighting_std, lighting_generator or generator)
            _add_lighting(out, lighting_shift(alphas, self.eigvals, self.eigvecs, self.eigen_scale))
        return self._finish(out)

    def _window(self, x: Tensor, top: int, left: int, out: Tensor | None = None) -> Tensor:
        """``x - mean`` inside one window, the same for every image: float32 [N,3,crop,crop]."""
        c = self.crop
        window = (slice(None), slice(top, top + c), slice(left, left + c))
        return torch.sub(x[(slice(None),) + window], self._mean(x)[window], out=out)

    def center(self, batch) -> Tensor:
        """The centre crop (Section 6's single-view test), no flip, no lighting: [N,3,crop,crop]."""
        x = self._prepare(batch)
        top, left, _ = ten_crop_offsets(x.shape[2], x.shape[3], self.crop)[4]
        return self._finish(self._window(x, top, left))

    def ten_crop(self, batch) -> Tensor:
        """The ten test views (Section 4.1): contiguous [10,N,3,crop,crop], order of ``ten_crop_offsets``.

        Each view ``[N,3,crop,crop]`` is dense NCHW (``channels_last`` does not apply
        here). ``iter_ten_crop`` yields the same views one at a time (10x less memory).
        """
        x = self._prepare(batch)
        offsets = ten_crop_offsets(x.shape[2], x.shape[3], self.crop)
        out = torch.empty((10, x.shape[0], 3, self.crop, self.crop), dtype=torch.float32, device=x.device)
        for k, (top, left, flip) in enumerate(offsets[:5]):
            self._window(x, top, left, out=out[k])
        out[5:] = out[:5].flip(-1)  # the mirrors of the five patches, same order
        return out.div_(self.scale) if self.scale != 1.0 else out

    def iter_ten_crop(self, batch):
        """The ten views of ``ten_crop``, in its order, one at a time: each [N,3,crop,crop].

        Uses a tenth of the memory (what ``evaluate`` uses); ``channels_last`` applies.
        """
        x = self._prepare(batch)
        for top, left, flip in ten_crop_offsets(x.shape[2], x.shape[3], self.crop):
            view = self._window(x, top, left)
            yield self._finish(view.flip(-1) if flip else view)
