"""Reference architectures for benchmarks and tests, defined here (no torchvision).

Each model is built with seeded random weights and returned in eval mode. The layer layout
and parameter counts follow the published / torchvision definitions:

============  ===========  =========================================================
name          parameters   notes
============  ===========  =========================================================
alexnet       61,100,840   torchvision's single-tower AlexNet (no LRN)
vgg16         138,357,544  configuration D, no batch-norm
resnet18      11,689,512   basic blocks [2, 2, 2, 2]
resnet50      25,557,032   bottleneck blocks [3, 4, 6, 3], stride on the 3x3 conv
mobilenet_v2  3,504,872    width 1.0, ReLU6, dropout 0.2 before the classifier
googlenet     6,624,904    no auxiliary heads; batch-norm after every conv; the
                           "5x5" branch uses a 3x3 conv as in torchvision
tinycnn       3,962        a small demo/test model (32x32 input): stem, residual add,
                           a concat of a conv and a pooling branch, a strided conv
============  ===========  =========================================================

Every module is called once per forward pass (no module reuse), so the layers that
:func:`d3opt.from_torch` finds are named exactly after the module paths.

Examples
--------
>>> from d3opt import zoo
>>> model = zoo.get("tinycnn")
>>> model(zoo.example_input("tinycnn")).shape
torch.Size([1, 10])
>>> "resnet18" in zoo.names() and "tinycnn" not in zoo.names()
True
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

import torch
from torch import nn

from d3opt.errors import GraphError

__all__ = ["names", "get", "example_input", "input_shape", "PUBLISHED_PARAMS"]


def _conv_bn_act(cin: int, cout: int, kernel: int, *, stride: int = 1, padding: int = 0,
                 groups: int = 1, act: Callable[[], nn.Module] = nn.ReLU,
                 eps: float = 1e-5) -> nn.Sequential:
    """Conv (no bias) -> BatchNorm -> activation, as ``conv``, ``bn``, ``act`` children."""
    block = nn.Sequential()
    block.add_module("conv", nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding,
                                       groups=groups, bias=False))
    block.add_module("bn", nn.BatchNorm2d(cout, eps=eps))
    if act is not None:
        block.add_module("act", act())
    return block


class AlexNet(nn.Module):
    """AlexNet as in torchvision (one tower, adaptive 6x6 average pool)."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class VGG16(nn.Module):
    """VGG-16 (configuration D) without batch-norm."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for width in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                      512, 512, 512, "M"):
            if width == "M":
                layers.append(nn.MaxPool2d(2, stride=2))
            else:
                layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=True)]
                cin = width
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs and a residual add."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (_conv_bn_act(cin, cout, 1, stride=stride, act=None)
                           if stride != 1 or cin != cout else None)
        self.relu2 = nn.ReLU(inplace=True)

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + shortcut)


class Bottleneck(nn.Module):
    """ResNet bottleneck block (1x1, strided 3x3, 1x1) with a residual add."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = (_conv_bn_act(cin, cout, 1, stride=stride, act=None)
                           if stride != 1 or cin != cout else None)
        self.relu3 = nn.ReLU(inplace=True)

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu3(out + shortcut)


class ResNet(nn.Module):
    """ResNet with a 7x7 stem, four stages and a global-average-pool classifier."""

    def __init__(self, block: type, depths: tuple[int, ...], num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = 64
        for i, (depth, width) in enumerate(zip(depths, (64, 128, 256, 512)), start=1):
            blocks = []
            for j in range(depth):
                stride = 2 if j == 0 and i > 1 else 1
                blocks.append(block(cin, width, stride))
                cin = width * block.expansion
            self.add_module(f"layer{i}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 project, residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers = []
        if expand != 1:
            layers.append(_conv_bn_act(cin, hidden, 1, act=nn.ReLU6))
        layers.append(_conv_bn_act(hidden, hidden, 3, stride=stride, padding=1, groups=hidden,
                                   act=nn.ReLU6))
        layers.append(_conv_bn_act(hidden, cout, 1, act=None))
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        out = self.conv(x)
        return x + out if self.residual else out


class MobileNetV2(nn.Module):
    """MobileNetV2 (width multiplier 1.0)."""

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers = [_conv_bn_act(3, 32, 3, stride=2, padding=1, act=nn.ReLU6)]
        cin = 32
        for expand, cout, repeats, stride in self.SETTINGS:
            for i in range(repeats):
                layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        layers.append(_conv_bn_act(cin, 1280, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class Inception(nn.Module):
    """GoogLeNet inception module: four branches concatenated along channels."""

    def __init__(self, cin: int, c1: int, c3red: int, c3: int, c5red: int, c5: int, proj: int):
        super().__init__()
        eps = 1e-3
        self.branch1 = _conv_bn_act(cin, c1, 1, eps=eps)
        self.branch2 = nn.Sequential(_conv_bn_act(cin, c3red, 1, eps=eps),
                                     _conv_bn_act(c3red, c3, 3, padding=1, eps=eps))
        self.branch3 = nn.Sequential(_conv_bn_act(cin, c5red, 1, eps=eps),
                                     _conv_bn_act(c5red, c5, 3, padding=1, eps=eps))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     _conv_bn_act(cin, proj, 1, eps=eps))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNet(nn.Module):
    """GoogLeNet (Inception v1) without the auxiliary classifiers."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        eps = 1e-3
        self.conv1 = _conv_bn_act(3, 64, 7, stride=2, padding=3, eps=eps)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = _conv_bn_act(64, 64, 1, eps=eps)
        self.conv3 = _conv_bn_act(64, 192, 3, padding=1, eps=eps)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        for name in ("4a", "4b", "4c", "4d", "4e"):
            x = getattr(self, f"inception{name}")(x)
        x = self.inception5b(self.inception5a(self.maxpool4(x)))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


class TinyCNN(nn.Module):
    """A small demo/test DAG: stem, residual add, conv/pool concat, strided conv, classifier."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem = _conv_bn_act(3, 8, 3, padding=1)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.branch_conv = nn.Conv2d(8, 8, 1)
        self.branch_pool = nn.MaxPool2d(3, stride=1, padding=1)
        self.down = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.relu3 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.relu2(self.conv2(self.relu1(self.conv1(x))) + x)
        x = torch.cat([self.branch_conv(x), self.branch_pool(x)], dim=1)
        x = self.relu3(self.down(x))
        return self.fc(torch.flatten(self.pool(x), 1))


_BUILDERS: MappingProxyType = MappingProxyType({
    "alexnet": AlexNet,
    "vgg16": VGG16,
    "resnet18": lambda: ResNet(BasicBlock, (2, 2, 2, 2)),
    "resnet50": lambda: ResNet(Bottleneck, (3, 4, 6, 3)),
    "mobilenet_v2": MobileNetV2,
    "googlenet": GoogLeNet,
    "tinycnn": TinyCNN,
})

#: Published parameter counts of the reference architectures.
PUBLISHED_PARAMS = MappingProxyType({
    "alexnet": 61_100_840, "vgg16": 138_357_544, "resnet18": 11_689_512,
    "resnet50": 25_557_032, "mobilenet_v2": 3_504_872, "googlenet": 6_624_904,
})

_DEMO = frozenset({"tinycnn"})


def names(*, include_demo: bool = False) -> tuple[str, ...]:
    """Names of the reference architectures.

    Parameters
    ----------
    include_demo : also list the small test/demo models (``"tinycnn"``).

    >>> names()[:2]
    ('alexnet', 'vgg16')
    >>> names(include_demo=True)[-1]
    'tinycnn'
    """
    return tuple(n for n in _BUILDERS if include_demo or n not in _DEMO)


def _check(name: str) -> None:
    if name not in _BUILDERS:
        raise GraphError(f"unknown zoo model {name!r}; available: {list(_BUILDERS)}")


def get(name: str, *, seed: int = 0) -> nn.Module:
    """A fresh model with random weights drawn from a generator seeded with ``seed``.

    The model is in eval mode. The global torch RNG is left untouched.

    >>> a, b = get("tinycnn", seed=1), get("tinycnn", seed=1)
    >>> bool(torch.equal(a.fc.weight, b.fc.weight)), a.training
    (True, False)
    """
    _check(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _BUILDERS[name]()
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                # non-trivial statistics so that batch-norm is not an identity
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def input_shape(name: str, *, batch: int = 1) -> tuple[int, int, int, int]:
    """The ``(N, C, H, W)`` input shape of a zoo model (224x224, or 32x32 for tinycnn).

    >>> input_shape("vgg16")
    (1, 3, 224, 224)
    """
    _check(name)
    side = 32 if name == "tinycnn" else 224
    return (batch, 3, side, side)


def example_input(name: str, *, batch: int = 1, dtype: torch.dtype = torch.float32,
                  seed: int = 0) -> torch.Tensor:
    """A seeded random input of the model's usual shape.

    >>> example_input("resnet18", batch=2).shape
    torch.Size([2, 3, 224, 224])
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(input_shape(name, batch=batch), generator=generator, dtype=dtype)
