"""The two small models rtool trains itself: the `shapes` CNN and the corner-case paper's MNIST ConvNet."""
from __future__ import annotations

import torch
from torch import nn


def _conv_bn_relu(in_ch: int, out_ch: int, stride: int = 1, pool: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class ShapesCNN(nn.Module):
    """4 blocks of (3x3 conv, BN, ReLU): 16 ch stride 2; 32 ch + max-pool; 64 ch + max-pool; 128 ch;
    global average pooling and a linear head (98,970 parameters for 3 input channels and 10 classes).

    For a 64x64 input, `block4` (the Score-CAM target, see `TARGET_LAYER`) gives 128 maps of 8x8.
    """

    TARGET_LAYER = "block4"

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.block1 = _conv_bn_relu(in_channels, 16, stride=2)
        self.block2 = _conv_bn_relu(16, 32, pool=True)
        self.block3 = _conv_bn_relu(32, 64, pool=True)
        self.block4 = _conv_bn_relu(64, 128)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(128, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's maps (N, 128, H/8, W/8)."""
        return self.block4(self.block3(self.block2(self.block1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class CornerConvNet(nn.Module):
    """The MNIST ConvNet of the corner-case reference (specs/corner_cases.md, section B), 3,186,098 parameters.

    conv1: Conv(1→24, 5x5, pad 2) + ReLU + MaxPool 2 → 24x14x14; conv2: Conv(24→64, 5x5, pad 2) + ReLU +
    MaxPool 2 → 64x7x7; flatten → Dropout(0.5) → fc1 Linear(3136→1000) with no activation → fc2 Linear(1000→10).
    Inputs are 1x28x28 in [0, 1] (no normalisation). Note fc2∘fc1 is a single affine map.
    """

    TARGET_LAYER = "conv2"

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, 24, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2))
        self.conv2 = nn.Sequential(nn.Conv2d(24, 64, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2))
        self.dropout = nn.Dropout(p=0.5)
        self.fc1 = nn.Linear(64 * 7 * 7, 1000)
        self.fc2 = nn.Linear(1000, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(x))
        return self.fc2(self.fc1(self.dropout(torch.flatten(x, 1))))
