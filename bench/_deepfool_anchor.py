"""Shared pieces of the DeepFool benchmark: the model and inputs, and the per-sample LTS4-style loop.

The model is rtool's CornerConvNet (the corner-case authors' MNIST ConvNet) trained for a few epochs on the
handwritten digits scikit-learn ships, upsampled to 28x28 in [0, 1] (seeded, cached); the inputs are 256 of
those images (MNIST size). The anchor loop is the LTS4 Python DeepFool as the authors run it: one sample at a
time, one backward pass per candidate class (graph retained), gradients copied to host memory as numpy.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

from rtool.models import CornerConvNet, cached_model, train_classifier

NUM_INPUTS = 256


def digits_images() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0  # [1797, 1, 8, 8] in [0, 1]
    images = F.interpolate(small, size=(28, 28), mode="bilinear", align_corners=False).clamp_(0, 1)
    return images, torch.tensor(digits.target, dtype=torch.long)


@cache
def model_and_inputs() -> tuple[torch.nn.Module, torch.Tensor]:
    images, labels = digits_images()
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(images.shape[0], generator=gen)
    train, test = order[:-NUM_INPUTS], order[-NUM_INPUTS:]

    def build():
        torch.manual_seed(0)
        return CornerConvNet()

    def fit(model):
        return train_classifier(model, images[train], labels[train], epochs=4, lr=2e-3, batch_size=128, seed=0,
                                progress=False)

    model = cached_model({"model": "corner_convnet", "bench": "deepfool", "data": "sklearn-digits-28",
                          "epochs": 4, "lr": 2e-3, "seed": 0}, build, fit)
    return model.eval(), images[test].contiguous()


def lts4_loop(net, image, num_classes=10, overshoot=0.02, max_iter=50):
    """LTS4 DeepFool on one image [C, H, W]; returns (r_hat, iterations, label, final label)."""
    x = image[None].clone().requires_grad_(True)
    fs = net(x)
    order = fs.detach().cpu().numpy().flatten().argsort()[::-1][:num_classes]
    label = int(order[0])
    r_tot = np.zeros(image.shape, dtype=np.float32)
    loop_i, k_i = 0, label
    while k_i == label and loop_i < max_iter:
        pert, w = np.inf, None
        fs[0, order[0]].backward(retain_graph=True)
        grad_orig = x.grad.detach().cpu().numpy().copy()
        for k in range(1, num_classes):
            x.grad.zero_()
            fs[0, order[k]].backward(retain_graph=True)
            cur_grad = x.grad.detach().cpu().numpy().copy()
            w_k = cur_grad - grad_orig
            f_k = (fs[0, order[k]] - fs[0, order[0]]).detach().cpu().numpy()
            pert_k = abs(f_k) / np.linalg.norm(w_k.flatten())
            if pert_k < pert:
                pert, w = pert_k, w_k
        r_i = (pert + 1e-4) * w / np.linalg.norm(w)
        r_tot = np.float32(r_tot + r_i[0])
        x = (image + (1 + overshoot) * torch.from_numpy(r_tot))[None].requires_grad_(True)
        fs = net(x)
        k_i = int(np.argmax(fs.detach().cpu().numpy().flatten()))
        loop_i += 1
    return (1 + overshoot) * r_tot, loop_i, label, k_i


def lts4_radii(net, images) -> tuple[torch.Tensor, torch.Tensor]:
    """Radii [N] and iteration counts [N] of the LTS4 loop, one sample at a time."""
    runs = [lts4_loop(net, image) for image in images]
    radii = torch.tensor([float(np.linalg.norm(run[0])) for run in runs], dtype=torch.float64)
    return radii, torch.tensor([run[1] for run in runs])


def torchattacks_radii(net, images, labels) -> torch.Tensor:
    import torchattacks

    attack = torchattacks.DeepFool(net, steps=50, overshoot=0.02)
    adv = attack(images, labels)
    return (adv - images).flatten(1).double().norm(dim=1)
