"""Grad-CAM with torch.autograd.grad against the grad-cam package, and parameter grads left alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from src.networks.detectors import build_detector_net
from src.networks.grad_cam import capture_output, grad_cam, min_max_normalise


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_detector_net("small_cnn", input_size=128).eval()


def test_equals_the_grad_cam_package(net: torch.nn.Module) -> None:
    """Same model, layer (4×4 maps at 128 px), input and per-image targets as ``pytorch_grad_cam.GradCAM``.

    Tolerance 1e-4 on maps in [0, 1]: both compute the same float32 quantities, in another order (numpy vs
    torch reductions, OpenCV vs torch bilinear resizing); the largest difference measured is 7e-6."""
    images = torch.rand(4, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    targets = [1, 0, 1, 1]
    ours, logits = grad_cam(net, net.last_block, images, targets)
    cam = GradCAM(model=net, target_layers=[net.last_block])
    try:
        theirs = cam(input_tensor=images, targets=[ClassifierOutputTarget(t) for t in targets])
    finally:
        cam.activations_and_grads.release()
    assert ours.shape == (4, 128, 128) and ours.dtype == torch.float32
    assert np.abs(ours.numpy() - theirs).max() < 1e-4
    assert float(ours.min()) >= 0.0 and float(ours.max()) <= 1.0
    assert torch.allclose(logits, net(images), atol=1e-5)
    assert not logits.requires_grad


def test_one_target_for_every_image_and_other_sizes(net: torch.nn.Module) -> None:
    images = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    all_fake, _ = grad_cam(net, net.last_block, images, 1, size=(32, 48))
    listed, _ = grad_cam(net, net.last_block, images, torch.tensor([1, 1]), size=(32, 48))
    assert all_fake.shape == (2, 32, 48) and torch.equal(all_fake, listed)
    with pytest.raises(ValueError, match="one target class per image"):
        grad_cam(net, net.last_block, images, [1, 0, 1])


def test_parameter_grads_are_untouched(net: torch.nn.Module) -> None:
    """No ``.grad`` appears where there was none, and existing ``.grad`` values stay exactly as they were."""
    net.zero_grad(set_to_none=True)
    images = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(3))
    grad_cam(net, net.last_block, images, 1)
    assert all(p.grad is None for p in net.parameters())
    net(images).sum().backward()
    before = {name: p.grad.clone() for name, p in net.named_parameters()}
    grad_cam(net, net.last_block, images, 0)
    assert all(torch.equal(p.grad, before[name]) for name, p in net.named_parameters())
    net.zero_grad(set_to_none=True)


def test_works_for_a_frozen_model_and_an_input_without_grad(net: torch.nn.Module) -> None:
    frozen = build_detector_net("small_cnn", input_size=64).eval().requires_grad_(False)
    cams, _ = grad_cam(frozen, frozen.last_block, torch.rand(2, 3, 64, 64), 1)
    assert cams.shape == (2, 64, 64) and torch.isfinite(cams).all()


def test_normalisation_and_capture() -> None:
    maps = torch.tensor([[[1.0, 3.0], [2.0, 5.0]], [[0.0, 0.0], [0.0, 0.0]]])
    normalised = min_max_normalise(maps)
    assert torch.allclose(normalised[0], torch.tensor([[0.0, 0.5], [0.25, 1.0]]), atol=1e-6)
    assert torch.equal(normalised[1], torch.zeros(2, 2))  # a flat map stays 0, not NaN
    layer = torch.nn.Linear(2, 2)
    with capture_output(layer) as captured:
        out = layer(torch.ones(1, 2))
    assert captured.output is out and not layer._forward_hooks
