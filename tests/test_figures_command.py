"""``python -m replication figures``: a stored run's figures as PNGs, from what the run store holds.

The stored run is a real one (``runs.get`` trains a tiny two-tower AlexNet for two epochs on
synthetic images, once for this module), so the artifacts have exactly the format the store
writes: conv1 [towers,K,3,h,w], per-class errors, neighbour indices of seeded queries.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from replication.__main__ import main
from replication.cli import figures as figures_cli
from replication.data.splits import load_data, load_image_splits
from replication.engine import figures, plots, run_figures, runs
from replication.engine.config import TrainConfig

matplotlib.use("Agg")  # no display: the figures are written, never shown

REPO = Path(__file__).resolve().parents[1]
PNGS = {"learning_curves.png", "conv1_kernels.png", "neighbours.png", "per_class_error.png"}


def tiny_config(**overrides) -> TrainConfig:
    values = {"model": {"arch": "alexnet", "input_size": 32, "width": 0.0625, "towers": 2}, "dataset": "synthetic",
              "image_size": 32, "train_per_class": 4, "val_per_class": 2, "batch_size": 20, "epochs": 2, "lr": 0.001,
              "schedule": "fixed", "lr_drop_epochs": (1,), "save_conv1": True, "per_class_error": True,
              "neighbours_k": 6, "neighbour_queries": 5, "neighbour_query_seed": 0}
    return TrainConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> runs.Run:
    """A run trained (seconds) and stored by the library's own writer in a private store."""
    root = tmp_path_factory.mktemp("figures-store")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        for name, folder in (("REPLICATION_STORE", "runs"), ("REPLICATION_CACHE", "cache"),
                             ("REPLICATION_DATA", "data")):
            patch.setenv(name, str(root / folder))
        patch.delenv("REPLICATION_STORE_READONLY", raising=False)
        run = runs.get(tiny_config(), progress=False)
    torch.set_num_threads(previous_threads)
    return run


@pytest.fixture
def store(stored, monkeypatch, tmp_path) -> Path:
    """A private store (REPLICATION_STORE) holding a copy of the module's run, a private data
    root and no mirrors: a test may add runs without the next test seeing them."""
    store = tmp_path / "runs"
    shutil.copytree(stored.path, store / stored.hash)
    monkeypatch.setenv("REPLICATION_STORE", str(store))
    monkeypatch.setenv("REPLICATION_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("REPLICATION_MIRRORS", str(tmp_path / "no-mirrors"))
    return store


def copy_run(run: runs.Run, store: Path, name: str, drop=(), config_changes=None) -> Path:
    """A copy of ``run`` in ``store`` under ``name``, without the artifacts ``drop`` and with its
    config changed, sealed again by the store's own ``seal`` (so it verifies like a stored run)."""
    folder = store / name
    shutil.copytree(run.path, folder)
    for artifact in drop:
        (folder / f"{artifact}.npy").unlink()
    if config_changes:
        record = json.loads((folder / "config.json").read_text())
        record["config"].update(config_changes)
        (folder / "config.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    runs.seal(folder)
    return folder


def assert_png(path: Path, min_side: int = 150) -> None:
    with Image.open(path) as image:
        image.verify()  # a complete, uncorrupted PNG
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) >= min_side and max(image.size) < 5000, image.size


def test_the_command_draws_every_figure_of_a_stored_run(store, stored, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["figures", stored.hash[:6], "--out", str(out)]) == 0
    folder = out / stored.hash
    assert {p.name for p in folder.iterdir()} == PNGS  # no partial files left behind
    for png in PNGS:
        assert_png(folder / png)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[1] for line in lines[:4]] == list(run_figures.FIGURES)  # one line per figure, in order
    assert lines[-1] == f"figures of run {stored.hash} in {folder}"


def test_a_run_folder_path_works_too_and_only_picks_figures(store, stored, tmp_path):
    out = tmp_path / "out"
    assert main(["figures", str(store / stored.hash), "--out", str(out), "--only", "kernels,classes"]) == 0
    assert {p.name for p in (out / stored.hash).iterdir()} == {"conv1_kernels.png", "per_class_error.png"}


def test_conv1_is_drawn_from_the_stored_numpy_array(stored):
    """Regression: plot_conv1_kernels(run.artifact('conv1')) raised AttributeError ('modules')."""
    stored_conv1 = stored.artifact("conv1")
    assert isinstance(stored_conv1, np.ndarray) and stored_conv1.ndim == 5 and stored_conv1.shape[0] == 2
    towers = figures.conv1_kernels(stored_conv1)
    assert len(towers) == 2
    np.testing.assert_array_equal(towers[1].numpy(), stored_conv1[1])
    figure = figures.plot_conv1_kernels(stored_conv1, title="stored")
    drawn = [axis for subfigure in figure.subfigs for axis in subfigure.axes if axis.images]
    assert len(figure.subfigs) == 2 and len(drawn) == stored_conv1.shape[0] * stored_conv1.shape[1]
    assert len(figures.conv1_kernels(stored_conv1[0])) == 1  # one tower's [K,3,h,w]
    with pytest.raises(ValueError, match=r"\[towers,K,3,h,w\]"):
        figures.conv1_kernels(stored_conv1[0, 0])


def test_fig4_shows_the_stored_neighbours_images(stored):
    """The query and neighbour cells hold the dataset rows the stored indices name, in order."""
    train, val = load_data(stored.config)
    figure, _ = run_figures.draw_neighbours(stored, run_figures.RunData(stored), queries=2)
    k = stored.artifact("neighbours").shape[1]
    cells = [axis.images[0].get_array() for axis in figure.axes]
    assert len(cells) == 2 * (k + 1)
    query, neighbours = stored.artifact("neighbour_queries")[1], stored.artifact("neighbours")[1]
    np.testing.assert_array_equal(cells[k + 1], val.images[query].numpy())
    for column in range(k):
        np.testing.assert_array_equal(cells[k + 2 + column], train.images[neighbours[column]].numpy())


def test_a_missing_artifact_is_a_one_line_note(store, stored, tmp_path, capsys):
    bare = copy_run(stored, store, "00bare" + stored.hash[6:], drop=("conv1", "per_class_error", "neighbours"))
    out = tmp_path / "out"
    assert main(["figures", str(bare), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err and captured.err == ""
    notes = {line.split()[1]: line for line in captured.out.splitlines() if "not drawn" in line}
    assert set(notes) == {"kernels", "neighbours", "classes"}
    assert "conv1" in notes["kernels"] and "save_conv1" in notes["kernels"]
    assert "per_class_error: true" in notes["classes"] and "neighbours_k" in notes["neighbours"]
    assert {p.name for p in (out / stored.hash).iterdir()} == {"learning_curves.png"}


def test_fig4_without_its_dataset_is_an_error_naming_where_it_looked(store, stored, tmp_path, capsys):
    """A run of a real dataset stores indices only: without the data, Fig. 4 fails with the data
    package's message (where it looked, how to get it); the other figures are still drawn."""
    elsewhere = copy_run(stored, store, "00data" + stored.hash[6:],
                         config_changes={"dataset": "imagenette2-128", "data_variant": "mirror"})
    out = tmp_path / "out"
    assert main(["figures", str(elsewhere), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    error = captured.err[captured.err.index("neighbours error:"):]
    assert "'imagenette2-128'" in error and str(tmp_path / "data") in error and "To get it" in error
    assert "class names unknown" in captured.out
    assert {p.name for p in (out / stored.hash).iterdir()} == PNGS - {"neighbours.png"}


def test_an_unknown_run_is_an_error_naming_the_store(store, capsys):
    assert main(["figures", "feedbeef"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: no run 'feedbeef' in the run store") and str(store) in error
    assert len(error.strip().splitlines()) == 1


def test_an_ambiguous_prefix_lists_the_runs(store, stored):
    copy_run(stored, store, stored.hash[:4] + "0" * 12)
    with pytest.raises(runs.UnknownRunError, match="is the start of 2 runs") as raised:
        runs.find(stored.hash[:4])
    assert stored.hash in str(raised.value)


def test_lr_drops_are_read_from_the_metrics(stored):
    assert plots.lr_drop_epochs(stored.history) == [2]  # lr_drop_epochs=(1,): epoch 2 trains at lr/10
    rows = [{"epoch": 1, "lr": 0.01}, {"epoch": 2, "lr": 0.01}, {"epoch": 3, "lr": 0.001}, {"epoch": 4, "lr": 1e-4}]
    assert plots.lr_drop_epochs(rows) == [3, 4]


def test_per_class_errors_leave_out_classes_without_images():
    errors = np.array([0.2, np.nan, 0.5, 0.1])
    figure = plots.plot_per_class_errors(errors, ["a", "b", "c", "d"])
    axis = figure.axes[0]
    top_down = sorted(axis.get_yticklabels(), key=lambda tick: -tick.get_position()[1])
    assert [tick.get_text() for tick in top_down] == ["c", "a", "d"]  # hardest at the top
    assert "1 class without validation images" in axis.get_title()


def test_image_splits_hold_the_rows_load_data_holds(tmp_path, monkeypatch):
    """Fig. 4's indices are rows of load_data's splits; load_image_splits must hold the same rows
    (here the committed Imagenette sample, with per-class subsets)."""
    monkeypatch.setenv("REPLICATION_DATA", str(tmp_path / "data"))
    config = TrainConfig(model={"arch": "alexnet"}, dataset="imagenette2-128", data_variant="sample",
                         train_per_class=3, val_per_class=2, subset_seed=1)
    (train, val), (mapped_train, mapped_val) = load_data(config), load_image_splits(config)
    np.testing.assert_array_equal(train.images.numpy(), mapped_train.images)
    np.testing.assert_array_equal(val.images.numpy(), mapped_val.images)
    np.testing.assert_array_equal(val.labels.numpy(), mapped_val.labels)
    assert mapped_val.class_names == train.class_names


def test_the_cli_lists_the_engines_figures():
    assert figures_cli.FIGURES == run_figures.FIGURES


def test_help_runs_as_a_command():
    done = subprocess.run([sys.executable, "-m", "replication", "figures", "--help"], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    for word in ("RUN", "--out", "--only", "curves,kernels,neighbours,classes", "save_conv1", "neighbours_k"):
        assert word in done.stdout
