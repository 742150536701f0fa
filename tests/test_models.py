"""Section 3 architecture: counts, map sizes, LRN, init, CIFAR nets, errors.

Every test builds small models (or shapes on the meta device) so the file
runs in seconds on two shared cores; the one full-size model is built once.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from replication.models import (
    PAPER_FIG2,
    PAPER_HIDDEN_NEURONS,
    PAPER_PARAMETERS,
    AlexNet,
    AlexNetConfig,
    ConvLocalNet,
    Fig1Net,
    LocallyConnected2d,
    LocalResponseNorm,
    ModelConfigError,
    apply_paper_init,
    build_model,
    count_parameters,
    hidden_neurons,
    layer_table,
    lrn_reference,
)

HALF_NET_PARAMETERS = 59_798_312  # footnote 2's one-tower net at 227, 1000 classes


pytestmark = pytest.mark.usefixtures("one_thread")


def forward_backward(model: torch.nn.Module, size: int, batch: int = 2) -> torch.Tensor:
    x = torch.randn(batch, 3, size, size)
    logits = model(x)
    assert torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.zeros(batch, dtype=torch.long)).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    return logits


def rows_by_layer(table):
    return {row["layer"]: row for row in table}


# ---------------------------------------------------------------------------
# The paper configuration (Section 3.5, Fig. 2)
# ---------------------------------------------------------------------------


def test_paper_config_counts_and_maps():
    table = layer_table(AlexNetConfig())
    rows = rows_by_layer(table)
    assert sum(r["params"] for r in table) == PAPER_PARAMETERS == 60_965_224
    assert sum(r["neurons"] for r in table if r["hidden"]) == PAPER_HIDDEN_NEURONS == 658_272
    sides = [rows[name]["output_shape"][1] for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "pool5")]
    assert sides == [55, 27, 13, 13, 13, 6]
    assert math.prod(rows["pool5"]["output_shape"]) == 9216
    assert rows["fc6"]["kernel"] == "9216 -> 4096"
    assert rows["fc8"]["output_shape"] == (1000,)
    # Fig. 2's neurons per layer (with the conv1 erratum corrected)
    weighted = [rows[name]["neurons"] for name in PAPER_FIG2["layers"]]
    assert weighted == PAPER_FIG2["neurons_computed"]
    assert PAPER_FIG2["neurons"][0] == 253_440 and weighted[0] == 55 * 55 * 96
    # connectivity of Fig. 2
    assert [rows[n]["inputs_from"] for n in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")] == [
        "image", "own tower", "both towers", "own tower", "own tower", "both towers", "both towers", "both towers"]
    assert rows["conv2"]["kernel"] == "256 x 5x5x48"
    assert rows["conv4"]["kernel"] == "384 x 3x3x192"


def test_layer_table_per_tower_halves_add_up():
    for row in layer_table(AlexNetConfig()):
        if row["per_tower"] is None:
            continue
        assert len(row["per_tower"]) == 2
        assert sum(t["params"] for t in row["per_tower"]) == row["params"]
        assert sum(t["neurons"] for t in row["per_tower"]) == row["neurons"]
    conv1 = rows_by_layer(layer_table(AlexNetConfig()))["conv1"]
    assert conv1["per_tower"][0]["output_shape"] == (48, 55, 55)


@pytest.mark.slow
def test_paper_net_full_size_forward_backward():
    """The real 60,965,224-parameter model at 227 px: one image through and back."""
    torch.manual_seed(0)
    model = AlexNet(AlexNetConfig())
    assert count_parameters(model) == PAPER_PARAMETERS
    logits = forward_backward(model, 227, batch=1)
    assert logits.shape == (1, 1000)
    assert [w.shape for w in model.conv1_weights()] == [(48, 3, 11, 11)] * 2


def test_224_uses_cuda_convnet_ceil_rule():
    config = AlexNetConfig(input_size=224)
    assert config.feature_map_sizes()["conv1"] == 55 and config.fc6_inputs() == 9216
    assert config.conv1_geometry() == (11, 4, 3)  # 3 px of zeros on the bottom/right
    assert sum(r["params"] for r in layer_table(config)) == PAPER_PARAMETERS
    model = AlexNet(config, width=0.0625, num_classes=7)
    assert forward_backward(model, 224, batch=1).shape == (1, 7)


def test_half_net_footnote_2():
    config = AlexNetConfig.half_net()
    assert config.channels() == {"conv1": 48, "conv2": 128, "conv3": 192, "conv4": 192, "conv5": 256, "fc": 4096,
                                 "fc7": 4096}
    table = layer_table(config)
    assert sum(r["params"] for r in table) == HALF_NET_PARAMETERS
    assert all(r["per_tower"] is None for r in table)
    rows = rows_by_layer(table)
    assert rows["conv2"]["kernel"] == "128 x 5x5x48" and rows["conv3"]["kernel"] == "192 x 3x3x128"
    assert hidden_neurons(config) == 354_864
    small = AlexNet(AlexNetConfig.half_net(width=0.125, input_size=32, num_classes=10))
    forward_backward(small, 32)


# ---------------------------------------------------------------------------
# Input-size families
# ---------------------------------------------------------------------------

FAMILIES = [  # input, stem, (conv1, conv2, conv3..5, pool5), FC6 inputs at width 1
    (227, "large", (55, 27, 13, 6), 9216),
    (224, "large", (55, 27, 13, 6), 9216),
    (128, "large", (31, 15, 7, 3), 2304),
    (112, "large", (27, 13, 6, 3), 2304),
    (32, "small", (32, 16, 8, 4), 4096),
    (28, "small", (28, 14, 7, 3), 2304),
    (24, "small", (24, 12, 6, 3), 2304),
]


@pytest.mark.parametrize("size, stem, sides, fc6_in", FAMILIES)
def test_family_map_sizes(size, stem, sides, fc6_in):
    for pooling in ("overlapping", "non_overlapping"):  # same maps either way
        config = AlexNetConfig(input_size=size, pooling=pooling)
        maps = config.feature_map_sizes()
        assert config.conv1_stem == stem
        assert (maps["conv1"], maps["conv2"], maps["conv3"], maps["pool5"]) == sides
        assert config.fc6_inputs() == fc6_in


@pytest.mark.parametrize("size", [227, 112, 32, 28])
def test_family_forward_matches_layer_table(size):
    torch.manual_seed(0)
    model = AlexNet(input_size=size, width=0.0625, num_classes=10)
    shapes = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: shapes.__setitem__(n, tuple(o.shape[1:])))
             for n, m in [*model.body.named_children(), *model.head.named_children()]]
    forward_backward(model, size)
    for h in hooks:
        h.remove()
    for row in layer_table(model):
        if row["layer"] != "input":
            assert shapes[row["layer"]] == row["output_shape"]


# ---------------------------------------------------------------------------
# Every configuration the claims use: builds, runs forward and backward
# ---------------------------------------------------------------------------

CLAIM_CONFIGS = [
    dict(input_size=227, width=0.0625),                          # paper layout, small width
    dict(input_size=224, width=0.0625, towers=1),                # one tower vs two (Section 3.2)
    dict(input_size=112, width=0.125, num_classes=10),           # Imagenette
    dict(input_size=32, width=0.125, num_classes=200),           # Tiny ImageNet
    dict(input_size=28, width=0.125, num_classes=200, towers=1, half=True),
    dict(input_size=32, width=0.125, num_classes=10, activation="tanh"),   # Section 3.1
    dict(input_size=32, width=0.125, num_classes=10, lrn=None),            # Section 3.3
    dict(input_size=32, width=0.125, num_classes=10, lrn="alpha_over_n"),
    dict(input_size=32, width=0.125, num_classes=10, pooling="non_overlapping"),  # Section 3.4
    dict(input_size=32, width=0.125, num_classes=10, dropout=0.0),         # Section 4.2
    dict(input_size=32, width=0.125, num_classes=10, paper_init=False),
]


@pytest.mark.parametrize("overrides", CLAIM_CONFIGS, ids=lambda d: "-".join(f"{k}={v}" for k, v in d.items()))
def test_claim_configs_forward_backward(overrides):
    torch.manual_seed(0)
    model = build_model({"arch": "alexnet", **overrides})
    logits = forward_backward(model, overrides["input_size"])
    assert logits.shape == (2, overrides.get("num_classes", 1000))


def test_pooling_variants_have_equal_parameter_counts():
    for size in (227, 112, 32, 28):
        counts = {sum(r["params"] for r in layer_table(AlexNetConfig(input_size=size, pooling=p)))
                  for p in ("overlapping", "non_overlapping")}
        assert len(counts) == 1


def test_bf16_autocast_and_channels_last():
    torch.manual_seed(0)
    model = AlexNet(input_size=24, width=0.0625, num_classes=10, dropout=0.0).to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 24, 24).to(memory_format=torch.channels_last)
    reference = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(logits.float(), reference, atol=0.05, rtol=0.05)
    logits.float().sum().backward()
    assert model.body.conv1.weight.grad.dtype == torch.float32


def test_dropout_off_in_eval_and_features():
    torch.manual_seed(0)
    model = AlexNet(input_size=32, width=0.125, num_classes=10)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    assert torch.equal(model(x), model(x))
    feats = model.features(x)
    assert feats.shape == (2, model.config.channels()["fc"]) and (feats >= 0).all()
    model.train()
    assert not torch.equal(model(x), model(x))  # dropout active in training
    torch.testing.assert_close(model.features(x), feats)  # features never drop
    torch.testing.assert_close(model.head.fc8(feats), model.eval()(x))


def test_conv1_weights_per_tower():
    model = AlexNet(input_size=32, width=0.25, num_classes=10)
    two = model.conv1_weights()
    assert len(two) == 2 and torch.equal(torch.cat(two), model.body.conv1.weight)
    one = AlexNet(input_size=32, width=0.25, num_classes=10, towers=1).conv1_weights()
    assert len(one) == 1 and one[0].shape == (24, 3, 5, 5)


# ---------------------------------------------------------------------------
# Section 3.3: local response normalisation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("convention", ["paper", "alpha_over_n"])
@pytest.mark.parametrize("groups", [1, 2])
def test_lrn_matches_formula(convention, groups):
    torch.manual_seed(0)
    x = torch.randn(2, 16, 5, 4, dtype=torch.float64) * 20  # large enough that the sum matters
    lrn = LocalResponseNorm(convention=convention, channels=16, groups=groups)
    expected = lrn_reference(x, 5, 1e-4, 0.75, 2.0, convention, groups)
    torch.testing.assert_close(lrn(x), expected, atol=1e-6, rtol=0)
    assert (lrn(x) - x / 2.0**0.75).abs().max() > 1e-3  # the window term is not negligible
    other = "alpha_over_n" if convention == "paper" else "paper"
    assert (lrn(x) - lrn_reference(x, convention=other, groups=groups)).abs().max() > 1e-3


@pytest.mark.parametrize("convention", ["paper", "alpha_over_n"])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("beta", [0.75, 0.5, 1.0, 0.6])
def test_lrn_gradient_matches_formula(convention, groups, beta):
    """The hand-written backward (and the square-root path for beta = 3/4) against autograd of the formula."""
    torch.manual_seed(0)
    x = (torch.randn(2, 16, 3, 4, dtype=torch.float64) * 20).requires_grad_()
    grad_out = torch.randn(2, 16, 3, 4, dtype=torch.float64)
    lrn = LocalResponseNorm(5, 1e-4, beta, 2.0, convention, channels=16, groups=groups)
    ours, = torch.autograd.grad(lrn(x), x, grad_out)
    expected, = torch.autograd.grad(lrn_reference(x, 5, 1e-4, beta, 2.0, convention, groups), x, grad_out)
    torch.testing.assert_close(lrn(x), lrn_reference(x, 5, 1e-4, beta, 2.0, convention, groups), atol=1e-6, rtol=0)
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)


def test_lrn_formula_written_out_for_one_position():
    """b_i = a_i / (k + alpha * sum_{j=i-2}^{i+2} a_j^2)^beta, clipped at the edges."""
    a = torch.arange(1.0, 8.0, dtype=torch.float64).view(1, 7, 1, 1) * 10
    b = LocalResponseNorm(channels=7)(a)
    for i in range(7):
        window = a[0, max(0, i - 2):min(6, i + 2) + 1, 0, 0]
        assert abs(b[0, i, 0, 0] - a[0, i, 0, 0] / (2 + 1e-4 * (window**2).sum()) ** 0.75) < 1e-12


def test_lrn_alpha_over_n_equals_torch():
    torch.manual_seed(0)
    x = torch.randn(2, 12, 3, 3, dtype=torch.float64) * 30
    ours = LocalResponseNorm(5, 1e-4, 0.75, 2.0, "alpha_over_n")(x)
    torch.testing.assert_close(ours, torch.nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0)(x), atol=1e-6, rtol=0)


def test_lrn_band_is_a_buffer_and_follows_layout():
    lrn = LocalResponseNorm(channels=8)
    assert list(lrn.parameters()) == [] and "band" not in lrn.state_dict()
    x = torch.randn(2, 8, 4, 4, dtype=torch.float64) * 20
    cl = lrn(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(cl, lrn_reference(x), atol=1e-6, rtol=0)
    lazy = LocalResponseNorm()  # band built at the first call
    torch.testing.assert_close(lazy(x), lrn_reference(x), atol=1e-6, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = lrn(x.float())
    torch.testing.assert_close(low.float(), lrn_reference(x).float(), atol=0.1, rtol=0.02)


# ---------------------------------------------------------------------------
# Section 5: initialisation
# ---------------------------------------------------------------------------


def test_paper_init():
    torch.manual_seed(0)
    model = AlexNet(input_size=32, width=0.5, num_classes=10)
    layers = {**dict(model.body.named_children()), **dict(model.head.named_children())}
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
        weight, bias = layers[name].weight, layers[name].bias
        assert abs(weight.std().item() - 0.01) < 0.002 and abs(weight.mean().item()) < 0.002
        expected_bias = 1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
        assert torch.all(bias == expected_bias), name
    default = AlexNet(input_size=32, width=0.5, num_classes=10, paper_init=False)
    assert not torch.all(default.body.conv2.bias == 1.0)
    apply_paper_init(default)
    assert torch.all(default.body.conv2.bias == 1.0) and torch.all(default.head.fc8.bias == 0.0)


# ---------------------------------------------------------------------------
# The CIFAR-10 nets (Fig. 1 and Section 3.3)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_fig1_net(activation):
    torch.manual_seed(0)
    model = Fig1Net(activation=activation)
    assert count_parameters(model) == (2432 + 25_632 + 51_264 + 10_250)
    rows = rows_by_layer(layer_table(model))
    assert [rows[n]["output_shape"][1] for n in ("conv1", "pool1", "pool2", "pool3")] == [32, 16, 8, 4]
    assert rows["fc"]["kernel"] == "1024 -> 10"
    assert abs(model.body.conv1.weight.std().item() - 1e-4) < 3e-5  # layers-18pct initW
    assert abs(model.body.conv2.weight.std().item() - 1e-2) < 1e-3
    forward_backward(model, 32)
    assert model.features(torch.zeros(1, 3, 32, 32)).shape == (1, 1024)
    assert isinstance(model.body.act1, torch.nn.Tanh if activation == "tanh" else torch.nn.ReLU)


@pytest.mark.parametrize("lrn", ["alpha_over_n", None])
@pytest.mark.parametrize("size, side", [(24, 6), (32, 8)])
def test_conv_local_net(lrn, size, side):
    torch.manual_seed(0)
    model = ConvLocalNet(lrn=lrn, input_size=size)
    rows = rows_by_layer(layer_table(model))
    assert rows["local3"]["output_shape"] == (32, side, side)
    assert rows["local3"]["params"] == side * side * (64 * 9 * 32 + 32)  # unshared weights and biases
    assert isinstance(model.body.lrn1, LocalResponseNorm if lrn else torch.nn.Identity)
    assert forward_backward(model, size).shape == (2, 10)


def test_locally_connected_matches_direct_sum_and_conv():
    torch.manual_seed(0)
    layer = LocallyConnected2d(3, 4, input_size=5, kernel_size=3, padding=1).double()
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    out = layer(x)
    padded = F.pad(x, (1, 1, 1, 1))
    for i in range(5):
        for j in range(5):
            patch = padded[:, :, i:i + 3, j:j + 3].reshape(2, -1)  # (c, ky, kx) order
            expected = patch @ layer.weight[i * 5 + j] + layer.bias[:, i, j]
            torch.testing.assert_close(out[:, :, i, j], expected)
    # with the same filter at every position it is a convolution
    conv = torch.nn.Conv2d(3, 4, 3, padding=1).double()
    with torch.no_grad():
        layer.weight.copy_(conv.weight.reshape(4, -1).t().expand_as(layer.weight))
        layer.bias.copy_(conv.bias.view(4, 1, 1).expand_as(layer.bias))
    torch.testing.assert_close(layer(x), conv(x))


# ---------------------------------------------------------------------------
# build_model and configuration errors
# ---------------------------------------------------------------------------


def test_build_model_specs():
    model = build_model({"arch": "alexnet", "input_size": 32, "num_classes": 200, "width": 0.5})
    assert isinstance(model, AlexNet) and model.config.num_classes == 200
    assert isinstance(build_model({"arch": "fig1", "activation": "tanh"}), Fig1Net)
    assert isinstance(build_model({"arch": "conv_local", "lrn": None}), ConvLocalNet)
    again = build_model(model.spec)
    assert again.config == model.config
    assert AlexNet(AlexNetConfig(), input_size=32, width=0.125).config.conv1_stem == "small"  # stem follows size
    # one spelling of LRN everywhere: the convention's name, or None
    with pytest.raises(ModelConfigError, match="unknown lrn True"):
        AlexNetConfig(lrn=True)
    with pytest.raises(ModelConfigError, match="unknown lrn False"):
        build_model({"arch": "conv_local", "lrn": False})


@pytest.mark.parametrize("overrides, message", [
    (dict(input_size=40, stem="large"), "too small"),
    (dict(input_size=10), "too small"),
    (dict(input_size=0), "input_size"),
    (dict(width=0), "width"),
    (dict(width=-1.0), "width"),
    (dict(towers=3), "towers"),
    (dict(activation="sigmoid"), "activation"),
    (dict(lrn="caffe"), "lrn"),
    (dict(pooling="average"), "pooling"),
    (dict(dropout=1.0), "dropout"),
    (dict(num_classes=0), "num_classes"),
    (dict(half=True), "towers=1"),
    (dict(stem="huge"), "stem"),
])
def test_bad_alexnet_configs_raise(overrides, message):
    with pytest.raises(ModelConfigError, match=message):
        AlexNet(**overrides)


@pytest.mark.parametrize("spec, message", [
    ({"arch": "vgg"}, "unknown arch"),
    ({"arch": "alexnet", "widht": 0.5}, "unknown AlexNetConfig fields"),
    ({"arch": "fig1", "activation": "gelu"}, "activation"),
    ({"arch": "fig1", "lrn": True}, "unknown Fig1Net arguments"),
    ({"arch": "conv_local", "input_size": 8}, "input_size"),
])
def test_bad_specs_raise(spec, message):
    with pytest.raises(ModelConfigError, match=message):
        build_model(spec)
