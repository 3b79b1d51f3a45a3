"""The seed's PixelCNN in PyTorch, written the straightforward way: every
masked convolution is a full nn.Conv2d whose weight is multiplied by a mask
at every forward pass. This is the peer `benchmarks/train_speed.py` times.

    7×7 mask-A conv 1→64; 4 residual blocks (ReLU → 1×1 64→32 → ReLU →
    masked 3×3 B 32→32 → ReLU → 1×1 32→64, plus the skip); ReLU → 1×1 mask B
    64→64 → ReLU → 1×1 64→1.
"""

import torch
from torch import nn


class MaskedConv2d(nn.Conv2d):
    def __init__(self, in_channels, out_channels, kernel_size, mask_type):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        mask = torch.ones_like(self.weight)
        c = kernel_size // 2
        mask[:, :, c, c + (mask_type == "B") :] = 0
        mask[:, :, c + 1 :] = 0
        self.register_buffer("mask", mask)

    def forward(self, x):
        return nn.functional.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class ResidualBlock(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(h, h // 2, 1),
            nn.ReLU(),
            MaskedConv2d(h // 2, h // 2, 3, "B"),
            nn.ReLU(),
            nn.Conv2d(h // 2, h, 1),
        )

    def forward(self, x):
        return x + self.net(x)


class PixelCNN(nn.Module):
    def __init__(self, h=64, blocks=4):
        super().__init__()
        self.net = nn.Sequential(
            MaskedConv2d(1, h, 7, "A"),
            *[ResidualBlock(h) for _ in range(blocks)],
            nn.ReLU(),
            MaskedConv2d(h, h, 1, "B"),
            nn.ReLU(),
            nn.Conv2d(h, 1, 1),
        )

    def forward(self, x):
        return self.net(x)


def train_images_per_second(images, batch_size=64, steps=60, warmup=5, seed=0, repeats=1):
    """Times Adam(1e-3) + BCE-with-logits steps on (n, 28, 28, 1) 0/1 images:
    `warmup` untimed steps, then `repeats` rounds of `steps` steps. Returns
    the images/s of each round."""
    import time

    import numpy as np

    torch.manual_seed(seed)
    model = PixelCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    data = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    order = torch.randperm(len(data))

    def step(k):
        idx = order[(k * batch_size) % (len(data) - batch_size) :][:batch_size]
        x = data[idx]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), x)
        loss.backward()
        opt.step()
        return loss

    for k in range(warmup):
        step(k)
    rates = []
    for r in range(repeats):
        start = time.perf_counter()
        for k in range(steps):
            step(warmup + r * steps + k)
        rates.append(steps * batch_size / (time.perf_counter() - start))
    return rates
