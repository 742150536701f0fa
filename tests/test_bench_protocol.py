"""What a protocol run costs (`replication.bench.protocol`, `make cost`, notebook 00's cost table).

The timings themselves are machine facts and never checked; what is checked is the arithmetic from a
step's seconds to a run's minutes, the records' names and round trip, and which stored runs the table
sets beside a record.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from replication.__main__ import main
from replication.bench import protocol as cost
from replication.experiments.protocol import recipes_for


def test_a_run_shape_comes_from_the_registry_counts_and_the_recipe():
    shapes = {r.key: cost.run_shape(r) for r in recipes_for("cpu")}
    # Imagenette: 9,469 training images in batches of 128; 3,925 val images plus the training-error images
    assert shapes["imagenette"]["steps_per_epoch"] == 74
    assert shapes["cifar"]["steps_per_epoch"] == 391  # 50,000 / 128, the last batch partial
    nette = next(r for r in recipes_for("cpu") if r.key == "imagenette")
    assert shapes["imagenette"]["eval_images_per_epoch"] == 3925 + nette.train_eval_images
    assert all(s["epochs"] == 30 for s in shapes.values())


def test_run_minutes_multiplies_steps_epochs_and_evaluations_out():
    shape = {"steps_per_epoch": 100, "epochs": 30, "eval_images_per_epoch": 2000}
    got = cost.run_minutes(shape, seconds_per_step=0.2, eval_seconds_per_image=0.001)
    assert got["train_minutes_per_run"] == pytest.approx(100 * 30 * 0.2 / 60)  # 10 min
    assert got["minutes_per_run"] == pytest.approx(10 + 2000 * 30 * 0.001 / 60)  # plus 1 min


def _record(kernels="native", capability="AVX512", cpu="AMD EPYC", threads=2):
    return {"version": cost.RECORD_VERSION, "profile": "cpu", "cpu": cpu, "cpu_count": 2,
            "cpu_capability": capability, "kernels": kernels, "native_bf16": True, "threads": threads,
            "torch": "x", "load_average_start": 0.1, "load_average_end": 0.2, "measured_at": "2026-12-02",
            "recipes": [{"recipe": "imagenette", "label": "Imagenette", "precision": "fp32", "steps_per_epoch": 74,
                         "epochs": 30, "eval_images_per_epoch": 4925, "train_images": 9469, "batch_size": 128,
                         "rows": [{"arm": arm, "precision": p, "steps_timed": 12, "seconds_per_step": s,
                                   "eval_seconds_per_image": 0.001, **cost.run_minutes(
                                       {"steps_per_epoch": 74, "epochs": 30, "eval_images_per_epoch": 4925},
                                       s, 0.001)}
                                  for arm, p, s in (("baseline", "fp32", 0.3), ("baseline", "bf16", 0.15),
                                                    ("one_tower", "fp32", 0.2))]}]}


def test_records_are_named_by_cpu_kernels_and_threads_and_round_trip(tmp_path):
    native = _record()
    pinned = _record(kernels="pinned (ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2)", capability="AVX2")
    assert cost.record_name(native) == "amd-epyc_avx512_2t.json"
    assert cost.record_name(pinned) == "amd-epyc_avx2-pinned_2t.json"
    for record in (native, pinned):
        cost.save(record, tmp_path)
    assert cost.load_records(tmp_path) == [pinned, native]  # sorted by file name
    assert "AVX2 (pinned)" in cost.kernels_label(pinned) and "bf16 emulated" in cost.kernels_label(pinned)


def test_a_damaged_or_older_record_is_refused_with_the_command_that_rewrites_it(tmp_path):
    (tmp_path / "cut.json").write_text('{"version": 1, "recipes": [')
    with pytest.raises(ValueError, match="cut.json.*make cost"):
        cost.load_records(tmp_path)
    (tmp_path / "cut.json").write_text(json.dumps({"version": 0}))
    with pytest.raises(ValueError, match="version 0.*make cost"):
        cost.load_records(tmp_path)


def _run(cpu="AMD EPYC", capability="AVX512", threads=2, precision="fp32", wall=900.0):
    return SimpleNamespace(config=SimpleNamespace(precision=precision),
                           summary={"wall_seconds": wall, "train_seconds": wall - 120, "hardware": {"cpu": cpu, "cpu_capability": capability,
                                                                        "torch_threads": threads}})


def test_the_cost_table_sets_only_runs_of_the_same_machine_kernels_and_threads_beside_a_record():
    runs = {"imagenette": [_run(wall=600), _run(wall=720), _run(threads=1, wall=5000),
                           _run(cpu="Intel Xeon", wall=5000), _run(capability="AVX2", wall=5000)]}
    table = cost.cost_table([_record(), _record(kernels="pinned (...)", capability="AVX2")], runs)
    native = table.xs(("imagenette", "fp32"), level=("recipe", "precision")).iloc[0]
    # the medians of 8 and 10 minutes of training, 10 and 12 with the evaluations
    assert native["stored runs here: training / with evaluations, min (median)"] == "9 / 11 (2 runs)"
    assert native["training min / run"] == f"{74 * 30 * 0.3 / 60:.0f}"
    bf16 = table.xs(("imagenette", "bf16"), level=("recipe", "precision"))
    assert (bf16["stored runs here: training / with evaluations, min (median)"] == "—").all()  # no stored run trained in bf16
    pinned = table.xs("AVX2 (pinned), bf16 emulated", level="kernels")
    assert (pinned["stored runs here: training / with evaluations, min (median)"] == "—").all()  # a pinned measurement matches no run


def test_no_record_yet_says_how_to_make_one():
    assert "make cost" in cost.cost_table([]).iloc[0, 0]


def test_bench_protocol_part_times_the_smoke_recipes_and_writes_its_record(tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        code = main(["bench", "--only", "protocol", "--quick", "--profile", "smoke", "--threads", "1",
                     "--record-dir", str(tmp_path)])
    finally:
        torch.set_num_threads(before)
    assert code == 0
    assert torch.get_num_threads() == before
    (path,) = tmp_path.glob("*.json")
    (record,) = cost.load_records(tmp_path)
    assert path.name == cost.record_name(record)
    assert record["profile"] == "smoke" and record["threads"] == 1
    assert {e["recipe"] for e in record["recipes"]} == {r.key for r in recipes_for("smoke")}
    for entry, recipe in zip(record["recipes"], recipes_for("smoke")):
        # the baseline in each precision, then every arm of the recipe's net in the recipe's precision
        assert [(row["arm"], row["precision"]) for row in entry["rows"]] == cost.settings(recipe)
        assert all(row["seconds_per_step"] > 0 and row["minutes_per_run"] > row["train_minutes_per_run"]
                   for row in entry["rows"])
    assert "record written to" in capsys.readouterr().out


def test_the_timed_steps_are_full_batches_and_counted_from_the_images_trained(monkeypatch):
    """An epoch of random images shorter than a round's steps would end early and make a step look cheap:
    the split holds every round's full batches, and the count comes from the images the trainer saw."""
    recipe = next(r for r in recipes_for("smoke") if r.key == "cifar")
    seen = []
    original = cost.Trainer.run_epoch

    def spy(self, epoch, **kwargs):
        row = original(self, epoch, **kwargs)
        seen.append((kwargs.get("max_steps"), row["images"], self.config.batch_size))
        return row

    monkeypatch.setattr(cost.Trainer, "run_epoch", spy)
    (row,) = cost.time_recipe(recipe, steps=5, warmup=1, rounds=2, precisions=("fp32",), arms=False)
    assert row["steps_timed"] == 5
    assert all(images == steps * batch for steps, images, batch in seen)


def test_settings_time_the_baseline_in_each_precision_and_each_applicable_arm_in_the_recipes():
    nette, cifar = (next(r for r in recipes_for("cpu") if r.key == key) for key in ("imagenette", "cifar"))
    assert cost.settings(nette)[:2] == [("baseline", "fp32"), ("baseline", "bf16")]
    assert ("one_tower", "fp32") in cost.settings(nette) and ("one_tower", "bf16") not in cost.settings(nette)
    assert cost.settings(cifar) == [("baseline", "fp32"), ("baseline", "bf16"), ("no_lrn", "fp32"),
                                    ("lrn_scale_only", "fp32")]  # the AlexNet arms skip the conv-local net
    assert cost.settings(nette, arms=False) == [("baseline", "fp32"), ("baseline", "bf16")]


def test_the_arm_table_gives_each_arm_against_the_baseline_of_the_same_rounds():
    table = cost.arm_table([_record()], arms=["baseline", "one_tower"])
    assert list(table.index.get_level_values("arm")) == ["baseline", "one_tower"]
    assert list(table["vs baseline"]) == ["1.00x", f"{0.2 / 0.3:.2f}x"]
    assert "make cost" in cost.arm_table([_record()], arms=["no_such_arm"]).iloc[0, 0]


def test_the_profile_budget_counts_every_planned_protocol_run_once_at_its_arms_cost():
    """Notebook 00's budget: each run the cpu notebooks read, once; a protocol run at its arm's minutes
    (a tuning run at the baseline's, scaled to the images not held out); the rest as they were trained."""
    from replication.experiments import miniature
    from replication.experiments.protocol import ARMS

    recipes = {r.key: r for r in recipes_for("cpu")}
    record = {**_record(), "recipes": [
        {"recipe": key, "precision": "fp32", **cost.run_shape(recipe),
         "rows": [{"arm": arm, "precision": "fp32", "seconds_per_step": 1.0, "eval_seconds_per_image": 0.0,
                   "train_minutes_per_run": 60.0, "minutes_per_run": 60.0}
                  for arm, delta in ARMS.items() if recipe.arch in delta.archs]}
        for key, recipe in recipes.items()]}
    planned = miniature.planned_runs("cpu")
    assert len({id(c) for c in planned.values()}) == len(planned)
    tuning = {key: len(r.tuning_grid) for key, r in recipes.items()}
    nette_arms = [a for a, d in ARMS.items() if "alexnet" in d.archs and a not in ("baseline", "one_tower")]
    cifar_arms = [a for a, d in ARMS.items() if "conv_local" in d.archs]
    # notebook 09 reads the baseline and one_tower at five seeds, every other arm is read at three
    expected = tuning["imagenette"] + 2 * 5 + 3 * len(nette_arms) + tuning["cifar"] + 3 * len(cifar_arms)
    row = miniature.budget_table("cpu", records=[record]).iloc[0]
    assert row["protocol runs"] == expected
    held_out = sum(tuning[k] * r.holdout_per_class * r.classes / cost.run_shape(r)["train_images"]
                   for k, r in recipes.items())
    assert row["their hours (estimated)"] == f"{expected - held_out:.1f}"


def test_busy_cores_reads_the_share_of_non_idle_jiffies(tmp_path, monkeypatch):
    """/proc/stat's first line: user nice system idle iowait ...; two samples a second apart."""
    stat = tmp_path / "stat"
    samples = iter(["cpu 100 0 100 800 0 0 0\n", "cpu 150 0 150 900 0 0 0\n"])  # 100 busy of 200 jiffies
    monkeypatch.setattr(cost.Path, "read_text", lambda self: next(samples))
    monkeypatch.setattr(cost.os, "cpu_count", lambda: 2)
    assert cost.busy_cores(seconds=0.0, stat=stat) == pytest.approx(1.0)  # one of two cores
    monkeypatch.undo()
    assert cost.busy_cores(seconds=0.0, stat=tmp_path / "missing") is None
