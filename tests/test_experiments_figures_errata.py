"""Notebooks 09 (Fig. 3's kernels), 10 (Fig. 4's neighbours) and 11 (a retelling's departures, measured):
their statistics on constructed inputs, their rules, their claims on fabricated runs, and what their
plans ask the training queue for. The notebooks themselves run at the smoke profile under nbval."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from replication import claims
from replication.data.splits import Split
from replication.engine import figures
from replication.experiments import errata, kernels, neighbours, paired, protocol

REPO = Path(__file__).resolve().parents[1]
CPU = {"profile": "cpu", "precision": "fp32", "seeds": [0, 1, 2, 3, 4]}


def fabricated(seed: int, arm: str = "baseline", summary=None, **arrays):
    """A stored run as the notebooks read it: config, summary, history (a net that stopped improving: its
    validation error flat over five epochs) and artifacts."""
    history = [{"epoch": e, "val_top1": 0.3} for e in range(1, 6)]
    return SimpleNamespace(config=protocol.CPU_NETTE.config(seed, arm), summary=summary or {}, history=history,
                           hash=f"{arm}-{seed}", artifact=lambda name: arrays[name])


# ---------------------------------------------------------------------------
# The rules
# ---------------------------------------------------------------------------

def share(found: int, seeds: int = 5) -> dict:
    return claims.seed_share_measurement([0.001] * found + [0.5] * (seeds - found), list(range(seeds)), 0.01)


def test_share_of_seeds_holds_every_run_to_four_in_five_and_the_control_to_one_in_five():
    assert share(5)["value"] == 5 and share(3)["p_values"][3] == 0.5
    verdict = lambda cid, m: claims.verdict(cid, m)  # noqa: E731
    assert [verdict("kernels.tower_split", share(n)) for n in range(6)] == [
        claims.NOT_REPRODUCED, claims.NOT_REPRODUCED, claims.INCONCLUSIVE, claims.INCONCLUSIVE,
        claims.REPRODUCED, claims.REPRODUCED]
    assert [verdict("kernels.one_tower_control", share(n)) for n in range(6)] == [
        claims.REPRODUCED, claims.REPRODUCED, claims.INCONCLUSIVE, claims.INCONCLUSIVE,
        claims.NOT_REPRODUCED, claims.NOT_REPRODUCED]
    assert verdict("kernels.tower_split", share(3, seeds=3)) == claims.INCONCLUSIVE  # fewer than five nets
    # the rule judges the p-values at the claim's alpha, not the recorded count
    assert verdict("kernels.tower_split", {**share(0), "p_values": [0.005] * 5}) == claims.REPRODUCED
    with pytest.raises(ValueError, match="per seed"):
        claims.seed_share_measurement([0.1, 0.2], [0], 0.01)


def test_paired_nonzero_reports_a_resolved_change_either_way():
    worse = claims.paired_measurement([41.0, 42.2, 40.9], [40.0, 41.0, 40.1], [0, 1, 2])
    better = claims.paired_measurement([39.0, 40.0, 39.2], [40.0, 41.0, 40.1], [0, 1, 2])
    unresolved = claims.paired_measurement([40.5, 40.2, 41.0], [40.0, 41.0, 40.1], [0, 1, 2])
    for cid in ("errata.fc8_relu", "errata.dropout_at_test_mean"):
        assert claims.verdict(cid, worse) == claims.verdict(cid, better) == claims.REPRODUCED
        assert claims.verdict(cid, unresolved) == claims.INCONCLUSIVE
        assert claims.verdict(cid, claims.paired_measurement([45.0], [40.0], [0])) == claims.INCONCLUSIVE


def test_seeded_above_needs_the_whole_interval_beyond_the_floor():
    cid = "neighbours.not_close_in_l2"
    assert claims.verdict(cid, claims.seeded_measurement([38.0, 41.0, 40.0], [0, 1, 2])) == claims.REPRODUCED
    assert claims.verdict(cid, claims.seeded_measurement([2.0, 3.0, 2.5], [0, 1, 2])) == claims.NOT_REPRODUCED
    assert claims.verdict(cid, claims.seeded_measurement([5.0, 15.0, 9.0], [0, 1, 2])) == claims.INCONCLUSIVE
    assert claims.verdict(cid, claims.seeded_measurement([40.0], [0])) == claims.INCONCLUSIVE


# ---------------------------------------------------------------------------
# Notebook 09: the colour statistic, the split test, the claims
# ---------------------------------------------------------------------------

def kernel_set(rng, count: int, coloured: bool, size: int = 5) -> np.ndarray:
    """[count, 3, size, size]: grey kernels (one pattern in R, G and B, a little noise) or coloured
    ones (each channel its own pattern)."""
    if coloured:
        return rng.normal(size=(count, 3, size, size))
    pattern = rng.normal(size=(count, 1, size, size))
    return np.repeat(pattern, 3, axis=1) + 0.05 * rng.normal(size=(count, 3, size, size))


def test_the_colour_statistic_and_the_split_test_tell_grey_from_coloured_kernels():
    rng = np.random.default_rng(0)
    grey, coloured = kernel_set(rng, 24, False), kernel_set(rng, 24, True)
    assert figures.kernel_colour_statistic(np.repeat(grey[:, :1], 3, axis=1)).max() == pytest.approx(0.0, abs=1e-9)
    assert figures.kernel_colour_statistic(grey).max() < 0.2
    assert figures.kernel_colour_statistic(coloured).min() > 0.6
    split = claims.tower_colour_split(figures.kernel_colour_statistic(grey), figures.kernel_colour_statistic(coloured))
    assert split["split"] == 1 and split["p"] < 1e-6 and split["prob_second_more_coloured"] == 1.0
    assert claims.tower_colour_split(figures.kernel_colour_statistic(coloured),
                                     figures.kernel_colour_statistic(grey))["split"] == -1
    same = claims.tower_colour_split(figures.kernel_colour_statistic(kernel_set(rng, 24, True)),
                                     figures.kernel_colour_statistic(coloured))
    assert same["split"] == 0


def kernel_runs(seeds=range(5)):
    """Two-tower nets whose coloured tower is drawn at random (the renumbering), and one-tower nets
    (half the kernels) whose kernels are all alike: the stored conv1 arrays [towers, K, 3, h, w], 11x11
    as the recipe's conv1, drawn independently of the nets' initialisation (kernels that learned)."""
    rng = np.random.default_rng(1)
    base, control = [], []
    for seed in seeds:
        towers = [kernel_set(rng, 24, False, 11), kernel_set(rng, 24, True, 11)]
        if rng.random() < 0.5:
            towers.reverse()
        base.append(fabricated(seed, conv1=np.stack(towers).astype(np.float32)))
        mixed = np.concatenate([kernel_set(rng, 12, False, 11), kernel_set(rng, 12, True, 11)])[rng.permutation(24)]
        control.append(fabricated(seed, "one_tower", conv1=mixed[None].astype(np.float32)))
    return paired.Arms(protocol.CPU_NETTE, {"baseline": base, "one_tower": control})


def test_the_kernel_claims_on_fabricated_nets():
    arms = kernel_runs()
    got = kernels.claims_of({paired.IMAGENET: arms}, CPU)
    split, control = got["kernels.tower_split"], got["kernels.one_tower_control"]
    assert split["measurement"]["value"] == 5 and split["measurement"]["seeds"] == [0, 1, 2, 3, 4]
    assert set(split["measurement"]["coloured_tower"]) == {1, 2}  # either tower, seed by seed
    assert control["measurement"]["value"] <= 1
    assert claims.verdict("kernels.tower_split", split["measurement"]) == claims.REPRODUCED
    assert claims.verdict("kernels.one_tower_control", control["measurement"]) == claims.REPRODUCED
    halves = kernels.groups(arms.runs["one_tower"][0])
    assert [len(h) for h in halves] == [12, 12]
    table = kernels.split_table(arms)
    assert len(table) == 10 and table["kernels a group"].tolist() == [24] * 5 + [12] * 5


def test_kernels_still_at_their_draw_leave_both_claims_not_evaluated_with_the_share():
    """Nets whose conv1 is its initialisation, rescaled and barely perturbed: the colour test would measure
    the random draw, so neither claim is judged; kernels that moved away (kernel_runs) are judged."""
    rng = np.random.default_rng(2)
    near = {}
    for arm in ("baseline", "one_tower"):
        near[arm] = []
        for seed in range(5):
            start = kernels.initial_conv1(fabricated(seed, arm))
            towers = 2 if arm == "baseline" else 1
            final = 1.3 * start + 0.1 * start.std() * rng.standard_normal(start.shape)
            near[arm].append(fabricated(seed, arm, conv1=final.reshape(towers, -1, *start.shape[1:]).astype(np.float32)))
    arms = paired.Arms(protocol.CPU_NETTE, near)
    assert np.median(kernels.init_share(near["baseline"][0])) > 0.95
    got = kernels.claims_of({paired.IMAGENET: arms}, CPU)
    for claim_id in ("kernels.tower_split", "kernels.one_tower_control"):
        assert got[claim_id]["measurement"] is None
        assert "kept its random initialisation" in got[claim_id]["scale"]["variant"]
        assert claims.verdict(claim_id, None) == claims.NOT_EVALUATED
    moved = kernel_runs()
    assert kernels.median_init_share(moved.runs["baseline"]) < 0.1  # drawn independently of the init
    table = kernels.init_table(arms)
    assert len(table) == 10 and (table["energy along the initial weights, median %"].astype(int) > 95).all()


def test_the_rebuilt_initial_conv1_is_the_one_the_trainer_starts_from():
    from replication.data.splits import synthetic_split
    from replication.engine.trainer import Trainer

    config = protocol.SMOKE_NETTE.config(3).replace(dataset="synthetic")
    trainer = Trainer(config, data=(synthetic_split("train", 2, 128), synthetic_split("val", 1, 128)), device="cpu")
    started = np.concatenate([w.numpy() for w in figures.conv1_kernels(trainer.module)])
    run = SimpleNamespace(config=config, summary={"classes": 10}, hash="x")
    np.testing.assert_array_equal(kernels.initial_conv1(run), started)  # bit for bit: the same draw


def test_fig3_and_the_distributions_draw_from_the_stored_array():
    arms = kernel_runs(seeds=range(2))
    small = fabricated(0, conv1=arms.runs["baseline"][0].artifact("conv1")[:, :6])
    figure = kernels.plot_kernels(small)
    assert len(figure.subfigs) == 2  # one row block per tower
    assert len(kernels.plot_distributions(arms).axes) == 4


# ---------------------------------------------------------------------------
# Notebook 10: pixel distances, ranks, label agreement in a toy feature space
# ---------------------------------------------------------------------------

def test_pixel_distances_are_euclidean_on_the_centre_crop():
    rng = np.random.default_rng(2)
    train = rng.integers(0, 256, size=(7, 8, 8, 3), dtype=np.uint8)
    queries = rng.integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    got = neighbours.pixel_distances(queries, train, crop=6, chunk=3)
    crop = lambda x: x[:, 1:7, 1:7].reshape(len(x), -1).astype(np.float64) / 255  # noqa: E731
    expected = np.sqrt(((crop(queries)[:, None] - crop(train)[None]) ** 2).sum(-1))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
    nearest = neighbours.pixel_neighbours(got, 2)
    np.testing.assert_array_equal(nearest, np.argsort(expected, axis=1)[:, :2])
    ranks = neighbours.rank_percent(got, nearest)
    assert ranks[:, 0].tolist() == [0.0, 0.0, 0.0] and np.allclose(ranks[:, 1], 100 / 7)


def toy_split(rng, per_class: int, name: str) -> Split:
    """Two classes told apart by one faint pixel under loud noise: pixel space barely sees the class,
    a feature that reads the pixel sees nothing else."""
    labels = np.repeat([0, 1], per_class)
    images = rng.integers(0, 256, size=(len(labels), 12, 12, 3)).astype(np.int64)
    images[:, 3, 3] = np.where(labels[:, None] == 1, 160, 96)
    return Split(torch.from_numpy(images.astype(np.uint8)), torch.from_numpy(labels), ["a", "b"], ["a", "b"],
                 "toy", name)


def test_fc7_neighbours_share_the_class_where_pixel_neighbours_do_not(monkeypatch):
    rng = np.random.default_rng(3)
    train, val = toy_split(rng, 40, "train"), toy_split(rng, 10, "val")
    monkeypatch.setattr(neighbours, "images_of", lambda run: (train, val))
    monkeypatch.setattr(neighbours, "_DISTANCES", {})
    queries = figures.spread_queries(val.labels.numpy(), 12, 0)
    runs = []
    for seed in range(3):  # "FC7": the class one-hot plus a little noise, its own per seed
        noise = np.random.default_rng(10 + seed)
        val_feats, train_feats = (np.eye(2)[split.labels.numpy()] + 0.1 * noise.normal(size=(len(split), 2))
                                  for split in (val, train))
        found = figures.nearest_neighbours(val_feats[queries], train_feats, k=6)
        runs.append(fabricated(seed, neighbour_queries=queries, neighbours=found.indices,
                               neighbour_distances=found.distances))
    for run in runs:  # the toy images' crop (a real config would not build a net on 12 px)
        run.config = SimpleNamespace(**{f.name: getattr(run.config, f.name) for f in fields(run.config)}, )
        run.config.crop, run.config.image_size = 10, 12
    arms = paired.Arms(protocol.CPU_NETTE, {"baseline": runs})
    got = neighbours.claims_of({paired.IMAGENET: arms}, CPU)
    agreement = got["neighbours.label_agreement"]["measurement"]
    assert agreement["groups"]["a"] == [100.0] * 3 and max(agreement["groups"]["b"]) < 80.0
    assert claims.verdict("neighbours.label_agreement", agreement) == claims.REPRODUCED
    far = got["neighbours.not_close_in_l2"]["measurement"]
    assert all(20.0 < v < 80.0 for v in far["values"])  # about where a random training image ranks
    assert claims.verdict("neighbours.not_close_in_l2", far) == claims.REPRODUCED
    table = neighbours.numbers_table(arms)
    assert float(table["pixel L2: FC7 nbrs / pixel nbrs"].iloc[0]) >= 1.0
    rows = neighbours.figure_rows(runs[0], count=4, seed=0)
    assert len(set(val.labels.numpy()[queries[rows]].tolist())) == 2  # spread over the classes
    assert len(neighbours.plot_neighbours(runs[0], rows[:2], "pixels").axes) == 2 * 7


def test_what_the_images_give_is_stored_beside_the_run_and_read_back_without_them(tmp_path, monkeypatch):
    """A committed report re-executes without the dataset: the neighbours' numbers and the figure's
    thumbnails are sealed records beside the run; a read-only store refuses to compute a missing one,
    and a changed sheet is refused."""
    from replication.engine import runs as run_store

    rng = np.random.default_rng(4)
    train, val = toy_split(rng, 20, "train"), toy_split(rng, 6, "val")
    monkeypatch.setattr(neighbours, "images_of", lambda run: (train, val))
    monkeypatch.setattr(neighbours, "_DISTANCES", {})
    queries = figures.spread_queries(val.labels.numpy(), 8, 0)
    found = figures.nearest_neighbours(np.eye(2)[val.labels.numpy()][queries], np.eye(2)[train.labels.numpy()], k=3)
    run = fabricated(0, neighbour_queries=queries, neighbours=found.indices)
    run.config = SimpleNamespace(**{f.name: getattr(run.config, f.name) for f in fields(run.config)})
    run.config.crop, run.config.image_size = 10, 12
    run.hash, run.path = "0123456789abcdef", tmp_path / "runs" / "0123456789abcdef"
    monkeypatch.delenv("REPLICATION_STORE_READONLY", raising=False)
    record = neighbours.neighbours_record(run)
    rows = neighbours.figure_rows(run, count=2, seed=0)
    figure = neighbours.plot_neighbours(run, rows, "fc7")
    folder = tmp_path / "runs" / "neighbours"
    assert sorted(p.name for p in folder.iterdir()) == ["0123456789abcdef.fig4.json", "0123456789abcdef.fig4.npz",
                                                        "0123456789abcdef.json"]
    assert record["numbers"]["fc7_agreement"] == 100.0 and len(figure.axes) == 2 * 4

    def no_images(run):
        raise AssertionError("the stored records were not used")

    monkeypatch.setattr(neighbours, "images_of", no_images)
    monkeypatch.setattr(neighbours, "_DISTANCES", {})
    monkeypatch.setenv("REPLICATION_STORE_READONLY", "1")
    assert neighbours.neighbours_record(run) == record
    sheet = neighbours.figure_sheet(run, rows)
    assert sheet["fc7"].shape == (2, 3, neighbours.SHEET_SIZE, neighbours.SHEET_SIZE, 3)
    assert sheet["fc7"].dtype == np.uint8
    with pytest.raises(run_store.RunNotStoredError, match="0123456789abcdef.fig4.json"):
        neighbours.figure_sheet(run, [0, 1, 2])  # other rows: not stored, and not computed here
    (folder / "0123456789abcdef.fig4.npz").write_bytes(b"changed")
    with pytest.raises(run_store.StoreError, match="sha256"):
        neighbours.figure_sheet(run, rows)


# ---------------------------------------------------------------------------
# Notebook 11: the departures' configs and claims
# ---------------------------------------------------------------------------

def test_each_departure_changes_only_what_it_names():
    base = protocol.CPU_NETTE.config(0)
    expected = {"pool_before_lrn": {"pool_before_lrn": True}, "conv5_dropout": {"conv5_dropout": 0.5},
                "fc8_relu": {"fc8_relu": True},
                "torchvision_widths": {"kernels": (64, 192, 384, 256, 256, 4096, 1024), "lrn": None, "towers": 1}}
    assert set(expected) == set(errata.ARMS)
    for arm, delta in expected.items():
        config = protocol.CPU_NETTE.config(0, arm)
        assert config.model == {**base.model, **delta}, arm
        # the arm measures no neighbours or dropout-at-test and stores no predictions; nothing else differs
        assert config.neighbours_k == 0 and config.eval_dropout_draws == 0 and not config.save_val_probs
        unmeasured = {k: getattr(config, k) for k in protocol.FINAL_BASELINE_MEASUREMENTS}
        assert config.replace(model=base.model) == base.replace(save_val_probs=False, **unmeasured), arm
    assert base.eval_dropout_draws == 10 and base.neighbours_k == 6


def errata_runs(seeds=range(3)):
    base, arms = [], {arm: [] for arm in errata.ARMS}
    for seed in seeds:
        base.append(fabricated(seed, summary={
            "val_top1": 0.40 + 0.01 * seed, "ten_crop_top1": 0.38 + 0.01 * seed, "dropout_on_draws": 10,
            "val_top1_dropout_on_one_draw": 0.46 + 0.012 * seed, "val_top1_dropout_on_mean": 0.41 + 0.01 * seed}))
        for shift, arm in zip((0.005, 0.01, 0.03, 0.02), errata.ARMS):
            arms[arm].append(fabricated(seed, arm, summary={"ten_crop_top1": 0.38 + 0.01 * seed + shift
                                                            + 0.002 * (seed % 2)}))
    return paired.Arms(protocol.CPU_NETTE, {"baseline": base, **arms})


def test_the_errata_claims_on_fabricated_runs():
    arms = errata_runs()
    got = errata.claims_of({paired.IMAGENET: arms}, CPU)
    assert list(got) == [c.id for c in claims.claims_for(errata.NOTEBOOK)]
    one = got["errata.dropout_at_test_one_draw"]["measurement"]
    assert one["value"] == pytest.approx(6.2) and one["paired"]
    assert got["errata.dropout_at_test_mean"]["measurement"]["value"] == pytest.approx(1.0)
    assert got["errata.fc8_relu"]["measurement"]["value"] == pytest.approx(3.0 + 0.2 / 3)  # arm minus baseline
    assert "ten passes" not in got["errata.dropout_at_test_mean"]["scale"]["variant"]
    assert "averaged over 10 passes" in got["errata.dropout_at_test_mean"]["scale"]["variant"]
    for cid, entry in got.items():
        assert claims.verdict(cid, entry["measurement"]) == claims.REPRODUCED, cid
    assert len(errata.dropout_at_test_table(arms)) == 3
    stale = paired.Arms(protocol.CPU_NETTE, {**arms.runs, "baseline": [fabricated(0, summary={"val_top1": 0.4})]})
    with pytest.raises(ValueError, match="dropout-at-test"):
        errata.dropout_at_test_claim(stale, "val_top1_dropout_on_mean", CPU)


def test_a_net_whose_loss_stays_at_ln_classes_is_listed_from_the_epoch_it_stayed_there():
    uniform = np.log(10)

    def with_losses(seed, arm, losses):
        run = fabricated(seed, arm)
        run.history = [{"epoch": e, "train_loss": loss, "val_top1": 0.9} for e, loss in enumerate(losses, 1)]
        return run

    dead = with_losses(0, "fc8_relu", [2.4, uniform, uniform * 0.99, uniform, uniform * 1.0005, uniform])
    assert errata.at_chance_since(dead, 10) == 4  # the dip at epoch 3 restarts the count
    assert errata.at_chance_since(with_losses(0, "baseline", [uniform, uniform, 2.0]), 10) is None
    learning = paired.Arms(protocol.CPU_NETTE, {"baseline": [with_losses(0, "baseline", [2.3, 1.5])]})
    assert errata.at_chance_table(learning).iloc[0, 0].startswith("none")
    table = errata.at_chance_table(paired.Arms(protocol.CPU_NETTE, {**learning.runs, "fc8_relu": [dead]}))
    assert list(table.index) == ["fc8_relu, seed 0"] and table.iloc[0]["at ln(classes) since epoch"] == 4
    assert table.iloc[0]["chance %"] == "90.0"


def test_what_a_streamed_recipe_cannot_measure_says_so():
    """ILSVRC at the paper profile is streamed: its baselines store neither neighbours nor dropout-at-test errors."""
    paper = {"profile": "paper", "precision": "fp32", "seeds": [0]}
    with pytest.raises(ValueError, match="streamed"):
        neighbours.plan(paper)
    arms = paired.Arms(protocol.PAPER_IMAGENET, errata_runs(range(1)).runs)
    got = errata.dropout_at_test_claim(arms, "val_top1_dropout_on_mean", paper)
    assert got["measurement"] is None and "streamed" in got["scale"]["variant"]
    assert claims.verdict("errata.dropout_at_test_mean", got["measurement"]) == claims.NOT_EVALUATED
    assert len(errata.dropout_at_test_table(arms)) == 1 and len(kernels.plan(paper)[paired.IMAGENET]) == 2


def test_the_224_arithmetic_is_notebook_01s_and_each_departure_has_one_line():
    sides = errata.input_size_table()["conv1 output"].tolist()
    assert sides == ["54×54×96", "55×55×96", "55×55×96"]
    table = errata.departures_table()
    assert len(table) == len(errata.DEPARTURES) + 1 and table["section"].str.len().min() > 0


# ---------------------------------------------------------------------------
# Registration and plans
# ---------------------------------------------------------------------------

def test_the_notebooks_register_their_claims_with_kinds_and_rules():
    kinds = {c.id: (c.kind, c.rule) for nb in (kernels, neighbours, errata) for c in claims.claims_for(nb.NOTEBOOK)}
    assert kinds["kernels.tower_split"] == ("claim", "share_of_seeds")
    assert kinds["kernels.one_tower_control"] == ("check", "share_of_seeds")
    assert kinds["neighbours.label_agreement"] == ("claim", "paired_direction_only")
    assert kinds["neighbours.not_close_in_l2"] == ("claim", "seeded_above")
    assert {v for k, v in kinds.items() if k.startswith("errata.")} == {("erratum", "paired_nonzero")}
    assert len([k for k in kinds if k.startswith("errata.")]) == 6
    for nb in (kernels, neighbours, errata):
        assert all(c.note for c in claims.claims_for(nb.NOTEBOOK))


def protocol_arms() -> set[str]:
    """The arms `make protocol` trains on Imagenette (the cpu queue), the Makefile's variables expanded."""
    text = (REPO / "Makefile").read_text().replace("\\\n", " ")
    variables = dict(re.findall(r"^([A-Z_]+)\s*:=\s*(.*)$", text, flags=re.M))
    text = re.sub(r"\$\(([A-Z_]+)\)", lambda m: variables.get(m.group(1), m.group(0)), text)
    return {arm for line in text.splitlines() if "--datasets imagenette" in line and "--arms" in line
            for arm in re.split(r"\s+", line.split("--arms", 1)[1].strip().rstrip(")"))}


def test_the_cpu_plans_ask_only_for_what_the_queue_trains_at_the_profile_seeds():
    for module, arms in ((kernels, ["baseline", "one_tower"]), (neighbours, ["baseline"]),
                         (errata, ["baseline", *errata.ARMS])):
        plan = module.plan(CPU)
        assert list(plan) == [paired.IMAGENET] and list(plan[paired.IMAGENET]) == arms, module.NOTEBOOK
        for arm, configs in plan[paired.IMAGENET].items():
            assert [c.seed for c in configs] == CPU["seeds"]
            assert configs == [protocol.CPU_NETTE.config(seed, arm) for seed in CPU["seeds"]]
        assert set(arms) - {"baseline"} <= protocol_arms(), module.NOTEBOOK
