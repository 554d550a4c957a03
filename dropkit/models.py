"""Architectures used by dropkit: the paper's VGG-16/19, CIFAR-stem ResNet-18 and ResNet-50
(Appendix A, Table 1), plus small CPU models for the default profile.

Every model is an :class:`EmbeddingClassifier`: a feature extractor ``features`` mapping a batch
``x`` to penultimate features ``[B, F]`` and a single linear head ``classifier`` (``nn.Linear(F, K)``),
so that ``model(x) == model.classifier(model.embed(x))``. CoreSet and SSP use ``embed``.

Inputs are normalised float tensors: images ``[B, C, H, W]``, feature vectors ``[B, D]``.
Weights are initialised as the paper states (Kaiming normal for conv and linear layers, BatchNorm
scale 1 and shift 0, zero biases); ``build_model`` does it under the caller's torch seed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

MODELS: tuple[str, ...] = ("linear", "mlp", "cnn", "vgg16", "vgg19", "resnet18", "resnet50", "resnet9")

# Table 1's VGG configurations (Simonyan & Zisserman): channel counts, "M" = 2x2 max-pool.
VGG_LAYERS: dict[str, tuple[int | str, ...]] = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}
CNN_CHANNELS: tuple[int, ...] = (16, 32, 64, 64)
MLP_HIDDEN: tuple[int, ...] = (512, 256)


def describe_model(name: str) -> str:
    """Architecture ``name`` (one of :data:`MODELS`) in a few words, from the constants of this
    module, for the book's setting paragraphs (e.g. ``"a small CNN of 4 conv-BN-ReLU blocks (16,
    32, 64, 64 channels), global average pooling and one linear head"``); an unknown name is
    returned as it is."""
    if name == "linear":
        return "a linear classifier on the flattened input"
    if name == "mlp":
        widths = ", ".join(str(w) for w in MLP_HIDDEN)
        return (f"an MLP with {len(MLP_HIDDEN)} hidden layers ({widths} units, Linear-BatchNorm-ReLU) "
                "and one linear head")
    if name == "cnn":
        widths = ", ".join(str(w) for w in CNN_CHANNELS)
        return (f"a small CNN of {len(CNN_CHANNELS)} conv-BN-ReLU blocks ({widths} channels), global "
                "average pooling and one linear head")
    if name in VGG_LAYERS:
        return f"VGG-{name[3:]} with BatchNorm and one linear head"
    if name == "resnet9":
        return "ResNet-9 (the small residual network of fast CIFAR training)"
    if name == "resnet18":
        return "ResNet-18 with the CIFAR stem"
    if name == "resnet50":
        return "ResNet-50"
    return name


class EmbeddingClassifier(nn.Module):
    """``features`` (x -> [B, F] penultimate features) followed by one ``nn.Linear(F, K)`` head."""

    def __init__(self, features: nn.Module, classifier: nn.Linear):
        super().__init__()
        self.features = features
        self.classifier = classifier

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``[B, F]`` of a normalised input batch."""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, K]``."""
        return self.classifier(self.embed(x))


def conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    """A 3x3 same-padding convolution (no bias) -> BatchNorm -> ReLU block."""
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


def vgg_features(layers: Sequence[int | str], in_channels: int, size: int) -> nn.Sequential:
    """VGG convolutional trunk for ``size x size`` inputs, ending in global average pooling.

    A max-pool is skipped when the feature map is already 1 pixel wide, so 28-px inputs get four
    pools (28 -> 14 -> 7 -> 3 -> 1) and 32-px inputs all five; larger inputs (64 px) keep all five
    and the remaining map (2x2) is averaged. Output: ``[B, last channel count]``.
    """
    modules: list[nn.Module] = []
    channels, spatial = in_channels, size
    for layer in layers:
        if layer == "M":
            if spatial >= 2:
                modules.append(nn.MaxPool2d(2))
                spatial //= 2
        else:
            modules += conv_bn_relu(channels, int(layer))
            channels = int(layer)
    modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*modules)


def small_cnn_features(in_channels: int, size: int) -> nn.Sequential:
    """Four conv-BN-ReLU blocks with 16, 32, 64, 64 channels; a 2x2 max-pool after each of the first
    three while the map is at least 2 px wide; global average pooling. Output ``[B, 64]``."""
    modules: list[nn.Module] = []
    channels, spatial = in_channels, size
    for index, width in enumerate(CNN_CHANNELS):
        modules += conv_bn_relu(channels, width)
        channels = width
        if index < len(CNN_CHANNELS) - 1 and spatial >= 2:
            modules.append(nn.MaxPool2d(2))
            spatial //= 2
    modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*modules)


def mlp_features(in_features: int) -> nn.Sequential:
    """Flatten, then Linear -> BatchNorm -> ReLU for each hidden width (512, 256). Output ``[B, 256]``."""
    modules: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for hidden in MLP_HIDDEN:
        modules += [nn.Linear(width, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
        width = hidden
    return nn.Sequential(*modules)


def resnet18_cifar_trunk(in_channels: int) -> nn.Module:
    """torchvision ResNet-18 with the CIFAR stem (3x3 stride-1 first conv, no max-pool) and no head.
    Output ``[B, 512]``."""
    import torchvision  # imported on demand: it pulls in torch._dynamo (~2 s)

    net = torchvision.models.resnet18(weights=None)
    net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    return net


class Residual(nn.Module):
    """``x + block(x)`` (shapes of input and output must agree)."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def resnet9_features(in_channels: int, size: int) -> nn.Sequential:
    """The small residual network of the fast CIFAR-10 training literature (Page's "ResNet-9"):
    prep conv 64; conv 128 + pool + residual(2 x conv 128); conv 256 + pool; conv 512 + pool +
    residual(2 x conv 512); global max-pool. Pools are skipped once the map is 1 px wide, so 28, 32
    and 64 px inputs all work. About 6.6 M parameters; output ``[B, 512]``. The ``fast`` profile's
    network (see :mod:`dropkit.profiles`)."""
    modules: list[nn.Module] = conv_bn_relu(in_channels, 64)
    spatial = size
    for width, residual in ((128, True), (256, False), (512, True)):
        previous = 64 if width == 128 else width // 2
        modules += conv_bn_relu(previous, width)
        if spatial >= 2:
            modules.append(nn.MaxPool2d(2))
            spatial //= 2
        if residual:
            modules.append(Residual(nn.Sequential(*conv_bn_relu(width, width), *conv_bn_relu(width, width))))
    modules += [nn.AdaptiveMaxPool2d(1), nn.Flatten()]
    return nn.Sequential(*modules)


def load_pretrained_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict saved with ``torch.save(model.state_dict(), path)`` without unpickling
    arbitrary objects (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained_path={str(path)!r} does not exist; save torchvision's ResNet-50 ImageNet weights "
            "there first, e.g. torch.save(torchvision.models.resnet50(weights='IMAGENET1K_V2').state_dict(), path) "
            "on a machine with internet access"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"pretrained_path={str(path)!r} does not hold a state dict of tensors")
    return state


def resnet50_parts(in_channels: int, num_classes: int, pretrained_path: str | Path | None
                   ) -> tuple[nn.Module, nn.Linear, bool]:
    """torchvision ResNet-50 (ImageNet stem) split into a trunk (output ``[B, 2048]``) and a head.

    With ``pretrained_path`` the trunk loads that state dict, and so does the head when the file's
    head has ``num_classes`` outputs; a head of another size is new, as in fine-tuning.
    Returns ``(trunk, head, head_is_pretrained)``.
    """
    import torchvision

    net = torchvision.models.resnet50(weights=None)
    head_is_pretrained = False
    if pretrained_path is not None:
        if in_channels != 3:
            raise ValueError(f"input_shape has {in_channels} channels; pretrained ResNet-50 needs 3")
        state = load_pretrained_state(pretrained_path)
        head_is_pretrained = "fc.weight" in state and state["fc.weight"].shape[0] == num_classes
        if not head_is_pretrained:
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise ValueError(
                f"pretrained_path={str(pretrained_path)!r} is not a torchvision ResNet-50 state dict "
                f"(missing {missing[:3]}, unexpected {list(unexpected)[:3]})"
            )
    elif in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    head = net.fc if head_is_pretrained else nn.Linear(net.fc.in_features, num_classes)
    net.fc = nn.Identity()
    return net, head, head_is_pretrained


def kaiming_init(model: nn.Module, skip: Sequence[nn.Module] = ()) -> None:
    """Kaiming-normal weights (fan_in, ReLU gain) for every conv/linear layer, zero biases;
    BatchNorm scale 1, shift 0. Modules in ``skip`` (and their children) are left untouched."""
    skipped = {id(m) for s in skip for m in s.modules()}
    for module in model.modules():
        if id(module) in skipped:
            continue
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def build_model(name: str, *, num_classes: int, input_shape: Sequence[int],
                pretrained_path: str | Path | None = None) -> EmbeddingClassifier:
    """Build architecture ``name`` (one of :data:`MODELS`) for ``num_classes`` classes.

    ``input_shape`` is one sample's shape without the batch axis: ``(C, H, W)`` for images (square,
    H == W; channels and size are free: 28x28x1, 32x32x3, 64x64x3, 224x224x3 all work) or ``(D,)``
    for feature vectors ("linear" and "mlp" accept both, flattening images).
    ``pretrained_path`` (ResNet-50 only): a local ``state_dict`` file, loaded with
    ``torch.load(weights_only=True)``; pretrained layers keep their weights, new ones get Kaiming init.
    """
    if name not in MODELS:
        raise ValueError(f"name={name!r} is not a known model; choose one of {', '.join(MODELS)}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes={num_classes!r} must be an integer >= 2")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (1, 3) or any(s < 1 for s in shape):
        raise ValueError(f"input_shape={tuple(input_shape)!r} must be (C, H, W) or (D,) with positive sizes")
    if pretrained_path is not None and name != "resnet50":
        raise ValueError(f"pretrained_path is only supported for 'resnet50', not name={name!r}")
    flat = math.prod(shape)
    if name in ("linear", "mlp"):
        features = nn.Flatten() if name == "linear" else mlp_features(flat)
        model = EmbeddingClassifier(features, nn.Linear(flat if name == "linear" else MLP_HIDDEN[-1], num_classes))
        kaiming_init(model)
        return model
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"input_shape={shape!r}: model {name!r} needs square images (C, H, H)")
    channels, size = shape[0], shape[1]
    if name == "cnn":
        model = EmbeddingClassifier(small_cnn_features(channels, size), nn.Linear(CNN_CHANNELS[-1], num_classes))
    elif name in VGG_LAYERS:
        layers = VGG_LAYERS[name]
        model = EmbeddingClassifier(vgg_features(layers, channels, size), nn.Linear(512, num_classes))
    elif name == "resnet9":
        model = EmbeddingClassifier(resnet9_features(channels, size), nn.Linear(512, num_classes))
    elif name == "resnet18":
        model = EmbeddingClassifier(resnet18_cifar_trunk(channels), nn.Linear(512, num_classes))
    else:  # resnet50
        trunk, head, head_is_pretrained = resnet50_parts(channels, num_classes, pretrained_path)
        model = EmbeddingClassifier(trunk, head)
        if pretrained_path is not None:
            kaiming_init(model, skip=[trunk, head] if head_is_pretrained else [trunk])
            return model
    kaiming_init(model)
    return model
