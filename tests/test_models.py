"""dropkit.models: shapes at every input size, embed/classifier consistency, initialisation,
VGG pooling, ResNet-50 weights from a local file, and clear errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dropkit.models import MODELS, build_model

torch.set_num_threads(1)

FEATURE_WIDTH = {"mlp": 256, "cnn": 64, "vgg16": 512, "vgg19": 512, "resnet18": 512, "resnet50": 2048, "resnet9": 512}
IMAGE_SHAPES = [(1, 28, 28), (3, 32, 32), (3, 64, 64)]


def _build(name, shape, num_classes=7):
    torch.manual_seed(0)
    return build_model(name, num_classes=num_classes, input_shape=shape).eval()


def test_registry_lists_every_model():
    assert MODELS == ("linear", "mlp", "cnn", "vgg16", "vgg19", "resnet18", "resnet50", "resnet9")


@pytest.mark.parametrize("shape", IMAGE_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", MODELS)
def test_shapes_and_embed_classifier_consistency(name, shape):
    model = _build(name, shape)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        logits = model(x)
        features = model.embed(x)
        via_head = model.classifier(features)
    width = FEATURE_WIDTH.get(name, math.prod(shape))  # linear: the flattened input
    assert logits.shape == (2, 7)
    assert features.shape == (2, width)
    assert isinstance(model.classifier, nn.Linear)
    assert model.classifier.in_features == width and model.classifier.out_features == 7
    torch.testing.assert_close(logits, via_head, rtol=0, atol=0)


def test_resnet50_forward_at_224():
    model = _build("resnet50", (3, 224, 224), num_classes=3)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 3)


@pytest.mark.parametrize("name", ["linear", "mlp"])
def test_feature_vector_models(name):
    model = _build(name, (5,), num_classes=3)
    x = torch.randn(4, 5)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.classifier(model.embed(x)), rtol=0, atol=0)
    assert model(x).shape == (4, 3)


@pytest.mark.parametrize("size, pools", [(28, 4), (32, 5), (64, 5)])
def test_vgg_drops_pools_that_would_go_below_one_pixel(size, pools):
    model = _build("vgg16", (3, size, size))
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == pools
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 13
    assert sum(isinstance(m, nn.Conv2d) for m in _build("vgg19", (3, size, size)).modules()) == 16


def test_paper_architectures_use_batchnorm_then_relu():
    model = _build("vgg19", (3, 32, 32))
    layers = list(model.features)
    for index, layer in enumerate(layers):
        if isinstance(layer, nn.Conv2d):
            assert isinstance(layers[index + 1], nn.BatchNorm2d) and isinstance(layers[index + 2], nn.ReLU)
    resnet = _build("resnet18", (3, 64, 64))
    assert resnet.features.conv1.kernel_size == (3, 3) and resnet.features.conv1.stride == (1, 1)
    assert isinstance(resnet.features.maxpool, nn.Identity)


def test_kaiming_normal_initialisation():
    model = _build("vgg16", (3, 32, 32))
    conv = [m for m in model.modules() if isinstance(m, nn.Conv2d)][-1]   # 512 x 512 x 3 x 3
    fan_in = conv.weight[0].numel()
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.02)
    assert conv.weight.mean().item() == pytest.approx(0.0, abs=0.02 * math.sqrt(2.0 / fan_in))
    head = model.classifier
    assert torch.all(head.bias == 0)
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)


def test_same_seed_same_weights_different_seed_different_weights():
    def state(seed):
        torch.manual_seed(seed)
        return build_model("cnn", num_classes=10, input_shape=(1, 28, 28)).state_dict()

    first, again, other = state(3), state(3), state(4)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["classifier.weight"], other["classifier.weight"])


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(name="vgg11", num_classes=10, input_shape=(3, 32, 32)), "name='vgg11'"),
    (dict(name="cnn", num_classes=1, input_shape=(3, 32, 32)), "num_classes=1"),
    (dict(name="cnn", num_classes=10, input_shape=(3, 32)), "input_shape"),
    (dict(name="cnn", num_classes=10, input_shape=(3, 32, 16)), "square"),
    (dict(name="cnn", num_classes=10, input_shape=(5,)), "square"),
    (dict(name="vgg16", num_classes=10, input_shape=(3, 32, 32), pretrained_path="w.pt"), "pretrained_path"),
])
def test_bad_arguments_raise_value_error_naming_them(kwargs, fragment):
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=fragment):
        build_model(name, **kwargs)


def test_missing_pretrained_file_names_the_path(tmp_path):
    missing = tmp_path / "resnet50.pt"
    with pytest.raises(FileNotFoundError, match="resnet50.pt"):
        build_model("resnet50", num_classes=2, input_shape=(3, 32, 32), pretrained_path=missing)


def test_pretrained_file_that_is_not_a_resnet50_state_dict(tmp_path):
    path = tmp_path / "other.pt"
    torch.save(build_model("resnet18", num_classes=10, input_shape=(3, 32, 32)).state_dict(), path)
    with pytest.raises(ValueError, match="not a torchvision ResNet-50"):
        build_model("resnet50", num_classes=2, input_shape=(3, 32, 32), pretrained_path=path)
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="state dict"):
        build_model("resnet50", num_classes=2, input_shape=(3, 32, 32), pretrained_path=tmp_path / "list.pt")


@pytest.fixture(scope="module")
def resnet50_file(tmp_path_factory):
    import torchvision

    torch.manual_seed(123)
    state = torchvision.models.resnet50(weights=None).state_dict()
    path = tmp_path_factory.mktemp("weights") / "resnet50.pt"
    torch.save(state, path)
    return path, state


def test_pretrained_resnet50_keeps_trunk_and_gets_a_new_head(resnet50_file):
    path, state = resnet50_file
    torch.manual_seed(0)
    model = build_model("resnet50", num_classes=2, input_shape=(3, 32, 32), pretrained_path=path)
    trunk = model.features.state_dict()
    assert all(torch.equal(trunk[k], state[k]) for k in state if not k.startswith("fc."))
    assert model.classifier.weight.shape == (2, 2048)
    assert torch.all(model.classifier.bias == 0)          # fresh Kaiming-initialised head
    same_size = build_model("resnet50", num_classes=1000, input_shape=(3, 32, 32), pretrained_path=path)
    assert torch.equal(same_size.classifier.weight, state["fc.weight"])
    with pytest.raises(ValueError, match="channels"):
        build_model("resnet50", num_classes=2, input_shape=(1, 32, 32), pretrained_path=path)


def test_every_model_is_described_in_words_from_its_constants():
    from dropkit.models import CNN_CHANNELS, MODELS, describe_model

    for name in MODELS:
        assert describe_model(name) != name, name
    assert describe_model("cnn") == (f"a small CNN of {len(CNN_CHANNELS)} conv-BN-ReLU blocks (16, 32, 64, 64 "
                                     "channels), global average pooling and one linear head")
    assert describe_model("vgg16").startswith("VGG-16")
    assert describe_model("unknown-net") == "unknown-net"
