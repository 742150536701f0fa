"""Section 4.1: crops, flips, mean image, PCA lighting, ten-crop (synthetic data, fast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from replication.data import augment as A


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def position_images(n: int, size: int) -> np.ndarray:
    """uint8 NHWC images whose pixels say where they are: R = row, G = column, B = image id."""
    images = np.zeros((n, size, size, 3), dtype=np.uint8)
    images[..., 0] = np.arange(size)[None, :, None]
    images[..., 1] = np.arange(size)[None, None, :]
    images[..., 2] = np.arange(n)[:, None, None]
    return images


def plain_augmenter(size: int, crop: int, **kwargs) -> A.BatchAugmenter:
    """No mean, no lighting: outputs are the raw pixel values of the window."""
    kwargs.setdefault("lighting_std", 0)
    return A.BatchAugmenter(torch.zeros(3, size, size), None, None, crop, **kwargs)


# ---------------------------------------------------------------------------
# Crops and flips
# ---------------------------------------------------------------------------


def decode_windows(out: torch.Tensor, size: int, crop: int):
    """Check each output is a (maybe mirrored) window of its own image; return (tops, lefts, flips)."""
    out = out.round().long()
    n = out.shape[0]
    steps = torch.arange(crop)
    tops, lefts, flips = [], [], []
    for i in range(n):
        rows, cols, ident = out[i]
        assert (ident == i).all(), "crop came from another image (labels would not match)"
        top = int(rows[0, 0])
        assert (rows == (top + steps)[:, None]).all(), "rows are not a contiguous window"
        first = cols[0]
        assert (cols == first[None, :]).all()
        if torch.equal(first, first[0] + steps):
            flipped, left = False, int(first[0])
        else:
            assert torch.equal(first, first[0] - steps), "columns are neither a window nor its mirror"
            flipped, left = True, int(first[-1])
        assert 0 <= top and top + crop <= size and 0 <= left and left + crop <= size, "window leaves the image"
        tops.append(top), lefts.append(left), flips.append(flipped)
    return tops, lefts, flips


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_random_crops_are_windows_of_their_own_image(layout):
    size, crop, n = 32, 28, 200
    images = position_images(n, size)
    batch = images if layout == "nhwc" else np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    out = plain_augmenter(size, crop)(batch, seeded(1))
    assert out.shape == (n, 3, crop, crop) and out.dtype == torch.float32 and out.is_contiguous()
    tops, lefts, flips = decode_windows(out, size, crop)
    # Every offset of the 5x5 range and both mirror states occur; each image its own draw.
    assert set(tops) == set(range(size - crop + 1)) and set(lefts) == set(range(size - crop + 1))
    assert 0.3 < np.mean(flips) < 0.7


def test_crops_match_the_drawn_offsets_and_flip_false_never_mirrors():
    size, crop, n = 16, 14, 64
    images = position_images(n, size)
    out = plain_augmenter(size, crop)(images, seeded(5))
    tops, lefts, flips = A.draw_crops(n, size, size, crop, seeded(5))
    assert decode_windows(out, size, crop) == (tops.tolist(), lefts.tolist(), flips.tolist())
    _, _, no_flips = decode_windows(plain_augmenter(size, crop, flip=False)(images, seeded(5)), size, crop)
    assert not any(no_flips)


def test_crop_equal_to_image_size_only_flips():
    images = position_images(8, 12)
    tops, lefts, _ = decode_windows(plain_augmenter(12, 12)(images, seeded(0)), 12, 12)
    assert set(tops) == {0} and set(lefts) == {0}


def test_same_generator_state_same_batch():
    images = np.random.default_rng(0).integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)
    aug = A.BatchAugmenter(torch.rand(3, 16, 16) * 255, torch.tensor([300.0, 20.0, 3.0]), torch.eye(3), 14)
    assert torch.equal(aug(images, seeded(3)), aug(images, seeded(3)))
    assert not torch.equal(aug(images, seeded(3)), aug(images, seeded(4)))


def test_mean_subtraction_crops_and_mirrors_the_mean_with_the_image():
    size, crop, n = 20, 17, 24
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    mean = torch.from_numpy(rng.uniform(0, 255, (3, size, size)).astype(np.float32))
    aug = A.BatchAugmenter(mean, None, None, crop, lighting_std=None, scale=4.0)
    out = aug(images, seeded(2))
    tops, lefts, flips = A.draw_crops(n, size, size, crop, seeded(2))
    full = torch.from_numpy(images).permute(0, 3, 1, 2).float() - mean
    for i in range(n):
        t, l = int(tops[i]), int(lefts[i])
        expected = full[i, :, t : t + crop, l : l + crop]
        expected = expected.flip(-1) if flips[i] else expected
        torch.testing.assert_close(out[i], expected / 4.0)


def test_layouts_and_memory_formats_give_the_same_values(tmp_path):
    size, crop, n = 12, 10, 16
    rng = np.random.default_rng(4)
    nhwc = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    nchw = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
    np.save(tmp_path / "images.npy", nhwc)
    mapped = np.load(tmp_path / "images.npy", mmap_mode="r")  # read-only, as the data cache serves it
    mean = torch.from_numpy(rng.uniform(0, 255, (3, size, size)).astype(np.float32))
    eig = (torch.tensor([400.0, 40.0, 4.0]), torch.eye(3))
    plain = A.BatchAugmenter(mean, *eig, crop, eigen_scale="sqrt")
    reference = plain(nhwc, seeded(1))
    for batch in (nchw, torch.from_numpy(nhwc), torch.from_numpy(nchw), mapped):
        assert torch.equal(plain(batch, seeded(1)), reference)
        assert torch.equal(plain.center(batch), plain.center(nhwc))
    channels_last = A.BatchAugmenter(mean, *eig, crop, eigen_scale="sqrt", channels_last=True)
    out = channels_last(nhwc, seeded(1))
    assert out.is_contiguous(memory_format=torch.channels_last) and torch.equal(out, reference)
    assert channels_last.center(nhwc).is_contiguous(memory_format=torch.channels_last)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="does not fit"):
        plain_augmenter(16, 17)
    with pytest.raises(ValueError, match="do not match the mean image"):
        plain_augmenter(16, 14)(position_images(2, 18), seeded())
    with pytest.raises(ValueError, match="eigvals"):
        A.BatchAugmenter(torch.zeros(3, 8, 8), None, None, 6)
    with pytest.raises(TypeError, match="torch.Generator"):
        plain_augmenter(16, 14)(position_images(2, 16), None)
    with pytest.raises(ValueError, match="eigen_scale"):
        A.BatchAugmenter(torch.zeros(3, 8, 8), torch.ones(3), torch.eye(3), 6, eigen_scale="std")


def test_crop_for_size_keeps_the_paper_ratio():
    assert [A.crop_for_size(s) for s in (256, 128, 32, 64)] == [224, 112, 28, 56]


# ---------------------------------------------------------------------------
# Ten-crop and centre
# ---------------------------------------------------------------------------


def test_ten_crop_gives_corners_centre_and_mirrors():
    size, crop, n = 11, 8, 3
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    mean = torch.from_numpy(rng.uniform(0, 255, (3, size, size)).astype(np.float32))
    aug = A.BatchAugmenter(mean, None, None, crop, lighting_std=0)
    views = aug.ten_crop(images)
    assert views.shape == (10, n, 3, crop, crop)
    full = torch.from_numpy(images).permute(0, 3, 1, 2).float() - mean
    c, e = crop, size - crop  # e = 3: corners at 0 and 3, centre at round(1.5) = 2 (torchvision)
    manual = [
        full[:, :, 0:c, 0:c],
        full[:, :, 0:c, e : e + c],
        full[:, :, e : e + c, 0:c],
        full[:, :, e : e + c, e : e + c],
        full[:, :, 2 : 2 + c, 2 : 2 + c],
    ]
    manual += [m.flip(-1) for m in manual]
    for view, expected in zip(views, manual):
        assert torch.equal(view, expected)
    assert torch.equal(aug.center(images), manual[4])
    for view, expected in zip(aug.iter_ten_crop(images), manual, strict=True):
        assert torch.equal(view, expected)


def test_ten_crop_views_are_torchvisions_views():
    """Same ten views as torchvision.transforms.TenCrop (which orders the mirrors differently:
    it crops the mirrored image, so its mirrored top-left is our mirrored top-right)."""
    from torchvision import transforms

    image = torch.arange(3 * 8 * 8, dtype=torch.uint8).reshape(3, 8, 8)  # every value distinct
    aug = A.BatchAugmenter(torch.zeros(3, 8, 8), None, None, 6, lighting_std=0)  # an even margin: one centre
    ours = aug.ten_crop(image.permute(1, 2, 0)[None].numpy())[:, 0]
    theirs = torch.stack(transforms.TenCrop(6)(image.float()))
    assert torch.equal(ours[:5], theirs[:5])
    assert torch.equal(ours[5:][[1, 0, 3, 2, 4]], theirs[5:])


# ---------------------------------------------------------------------------
# Mean image and PCA of the RGB covariance
# ---------------------------------------------------------------------------


def correlated_images(n: int = 64, size: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = np.array([[40.0, 0, 0], [30.0, 15.0, 0], [20.0, 5.0, 8.0]])
    pixels = rng.normal(size=(n, size, size, 3)) @ mixing.T + np.array([120.0, 110.0, 100.0])
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def test_mean_image_and_covariance_match_numpy_in_any_chunking():
    images = correlated_images()
    expected_mean = images.astype(np.float64).mean(0).transpose(2, 0, 1)
    expected_cov = np.cov(images.reshape(-1, 3).astype(np.float64).T, bias=True)
    mean_image = A.compute_mean_image(images).double()
    torch.testing.assert_close(mean_image, torch.from_numpy(expected_mean), rtol=0, atol=1e-4)
    torch.testing.assert_close(A.compute_rgb_covariance(images), torch.from_numpy(expected_cov))
    n_pixels = images.size // 3
    for chunk in (1, 200, 10**9):  # a chunk of one image, of three, everything
        sum_image, sum_rgb, sum_outer, n = A._accumulate_stats(images, pixels_per_chunk=chunk)
        assert n == len(images)
        covariance = A._covariance(sum_rgb, sum_outer, n_pixels)
        torch.testing.assert_close(covariance, torch.from_numpy(expected_cov))
        torch.testing.assert_close(sum_image / n, torch.from_numpy(expected_mean.transpose(1, 2, 0)))


def test_pca_reconstructs_the_covariance():
    images = correlated_images()
    covariance = A.compute_rgb_covariance(images)
    eigvals, eigvecs = A.compute_pca(images)
    assert torch.all(eigvals[:-1] >= eigvals[1:]), "eigenvalues sorted, largest first"
    torch.testing.assert_close(eigvecs.T @ eigvecs, torch.eye(3), atol=1e-5, rtol=0)
    rebuilt = eigvecs.double() @ torch.diag(eigvals.double()) @ eigvecs.double().T
    torch.testing.assert_close(rebuilt, covariance, rtol=1e-5, atol=1e-3)


# ---------------------------------------------------------------------------
# PCA lighting
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("eigen_scale", ["lambda", "lambda_unit", "sqrt"])
def test_lighting_shift_has_the_paper_distribution(eigen_scale):
    n, size = 20000, 2
    eigvals = torch.tensor([900.0, 49.0, 4.0])
    eigvecs, _ = torch.linalg.qr(torch.tensor([[1.0, 0.3, -0.2], [0.5, 1.0, 0.1], [0.2, -0.4, 1.0]]))
    aug = A.BatchAugmenter(torch.zeros(3, size, size), eigvals, eigvecs, size, flip=False, eigen_scale=eigen_scale)
    out = aug(np.zeros((n, size, size, 3), dtype=np.uint8), seeded(7)).double()
    shift = out[:, :, 0, 0]
    assert torch.equal(out, shift[:, :, None, None].expand_as(out)), "one shift for every pixel of an image"
    weights = {"lambda": eigvals.double(), "lambda_unit": eigvals.double() / 255,
               "sqrt": eigvals.double().sqrt()}[eigen_scale]
    alphas = (shift @ eigvecs.double()) / weights  # project onto p_i, divide by l_i
    torch.testing.assert_close(alphas.std(0), torch.full((3,), 0.1, dtype=torch.float64), rtol=0.03, atol=0)
    assert alphas.mean(0).abs().max() < 4 * 0.1 / n**0.5
    correlation = torch.corrcoef(alphas.T) - torch.eye(3, dtype=torch.float64)
    assert correlation.abs().max() < 0.05, "independent draws per axis"
    expected = A.lighting_shift_std(eigvals, 0.1, eigen_scale)
    assert abs(shift.pow(2).mean().sqrt() - expected) < 0.03 * expected


def test_lighting_is_redrawn_per_use_and_off_when_std_is_zero():
    aug = A.BatchAugmenter(torch.zeros(3, 4, 4), torch.ones(3), torch.eye(3), 4, flip=False)
    images = np.zeros((4, 4, 4, 3), dtype=np.uint8)
    g = seeded(0)
    assert not torch.equal(aug(images, g), aug(images, g))
    off = A.BatchAugmenter(torch.zeros(3, 4, 4), torch.ones(3), torch.eye(3), 4, lighting_std=0)
    assert torch.count_nonzero(off(images, g)) == 0


# ---------------------------------------------------------------------------
# The streaming path runs the same maths
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# Real pixels: the committed sample of CIFAR-10 (data/sample/, 300 training images)
# ---------------------------------------------------------------------------


def test_real_cifar_pixels_pca_and_crops(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLICATION_DATA", str(tmp_path))  # the decoded cache goes here
    from replication.data import load_split

    images = np.array(load_split("cifar10-jpeg", "train", progress=False, variant="sample").images)  # writable
    stats = A.compute_dataset_stats(images)
    expected = np.cov(images.reshape(-1, 3).astype(np.float64).T, bias=True)
    torch.testing.assert_close(stats.covariance, torch.from_numpy(expected))
    rebuilt = stats.eigvecs.double() @ torch.diag(stats.eigvals.double()) @ stats.eigvecs.double().T
    torch.testing.assert_close(rebuilt, stats.covariance, rtol=1e-5, atol=1e-2)
    # Natural images: the first axis is brightness (R, G, B all about 1/sqrt(3)) and dominates.
    assert torch.allclose(stats.eigvecs[:, 0], torch.full((3,), 3**-0.5), atol=0.1)
    assert stats.eigvals[0] > 5 * stats.eigvals[1]
    # Section 4.1's lighting: about ten levels with sqrt(lambda) (the 2012 code), hundreds with lambda on
    # the 0..255 scale, a few with lambda on the 0..1 scale (shift = a lambda / 255 levels).
    assert 1 < A.lighting_shift_std(stats.eigvals, 0.1, "sqrt") < 30
    assert A.lighting_shift_std(stats.eigvals, 0.1, "lambda") > 100
    unit = A.lighting_shift_std(stats.eigvals, 0.1, "lambda_unit")
    assert 0.5 < unit < A.lighting_shift_std(stats.eigvals, 0.1, "sqrt")
    assert unit == pytest.approx(A.lighting_shift_std(stats.eigvals / 255**2, 0.1, "lambda") * 255)

    batch = images[:64]
    aug = A.BatchAugmenter.from_stats(stats, A.crop_for_size(32), lighting_std=0)
    out = aug(batch, seeded(11))
    tops, lefts, flips = A.draw_crops(64, 32, 32, 28, seeded(11))
    full = torch.from_numpy(batch).permute(0, 3, 1, 2).float() - stats.mean_image
    for i in range(64):
        t, l = int(tops[i]), int(lefts[i])
        window = full[i, :, t : t + 28, l : l + 28]
        assert torch.equal(out[i], window.flip(-1) if flips[i] else window)
