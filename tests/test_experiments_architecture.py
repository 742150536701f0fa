"""Notebook 01's measurements: the paper's net counted on the meta device, judged by the registered rules."""

from __future__ import annotations

from replication import claims, models
from replication.claims import NOT_REPRODUCED, REPRODUCED
from replication.experiments import architecture


def test_architecture_measurements_and_statuses():
    measured = architecture.measure_architecture()
    assert list(measured) == [c.id for c in claims.claims_for("01_architecture")]
    values = {cid: item["measurement"]["value"] for cid, item in measured.items()}
    assert values["arch.params"] == 60_965_224
    assert values["arch.neurons"] == 658_272
    assert values["arch.neurons_per_layer"][0] == 290_400  # 55 x 55 x 96, not the printed 253,440
    assert values["arch.cross_tower_layers"] == ["conv3", "fc6", "fc7", "fc8"]
    statuses = {cid: claims.verdict(cid, item["measurement"]) for cid, item in measured.items()}
    assert statuses.pop("arch.neurons_per_layer") == NOT_REPRODUCED  # the paper's erratum
    assert set(statuses.values()) == {REPRODUCED}


def test_fig2_constants_agree_with_the_models_module():
    assert claims.FIG2_NEURONS == models.PAPER_FIG2["neurons"]
    assert [s[0] for s in claims.FIG2_OUTPUT_SHAPES[:5]] == models.PAPER_FIG2["feature_maps"]


def test_conv1_sides_explain_224_vs_227():
    sides = [row["conv1 output"][0] for row in architecture.conv1_output_sides()]
    assert sides == [54, 55, 55]
