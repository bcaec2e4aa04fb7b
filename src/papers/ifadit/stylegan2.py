"""StyleGAN2 generator in the rosinality (``stylegan2-pytorch``) layout, pure PyTorch: iFADIT's frozen ``G``.

Parameter and buffer names are rosinality's, so the ``g_ema`` state dict of a checkpoint such as the FFHQ-256
``550000.pt`` loads key for key (:data:`CHECKPOINT_KEYS` lists the layout; :func:`g_ema_state_dict` reads
it without running pickled code). The original's custom CUDA ops (``upfirdn2d``, ``fused_leaky_relu``) are
replaced by their reference PyTorch definitions (:func:`upfirdn2d`, :func:`fused_leaky_relu`), so it runs
on CPU and GPU alike. Only what iFADIT uses is here: the mapping network ``style`` (the key condition goes
through it) and synthesis from W+ codes (``input_is_latent``), with the stored noise
(``randomize_noise=False``) or fresh noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.config.buildable import buildable

#: the blur (anti-aliasing) kernel of every up-sampling step
BLUR_KERNEL = (1, 3, 3, 1)
#: feature channels per resolution for ``channel_multiplier`` m: 512 up to 32 px, then 256m, 128m, 64m, ...
BASE_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
#: how rosinality's generator names its tensors (``{i}`` a layer index): every key of a ``g_ema`` state dict
CHECKPOINT_KEYS = (
    "style.{i}.weight",
    "style.{i}.bias",
    "input.input",
    "conv1.conv.weight",
    "conv1.conv.modulation.weight",
    "conv1.conv.modulation.bias",
    "conv1.noise.weight",
    "conv1.activate.bias",
    "to_rgb1.conv.weight",
    "to_rgb1.conv.modulation.weight",
    "to_rgb1.conv.modulation.bias",
    "to_rgb1.bias",
    "convs.{i}.conv.weight",
    "convs.{i}.conv.blur.kernel",
    "convs.{i}.conv.modulation.weight",
    "convs.{i}.conv.modulation.bias",
    "convs.{i}.noise.weight",
    "convs.{i}.activate.bias",
    "to_rgbs.{i}.upsample.kernel",
    "to_rgbs.{i}.conv.weight",
    "to_rgbs.{i}.conv.modulation.weight",
    "to_rgbs.{i}.conv.modulation.bias",
    "to_rgbs.{i}.bias",
    "noises.noise_{i}",
)


def make_kernel(values: Sequence[float]) -> Tensor:
    """The separable 2-D blur kernel of 1-D ``values``, normalised to sum 1."""
    k = torch.tensor(values, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(x: Tensor, kernel: Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)) -> Tensor:
    """Upsample by zero insertion, pad (negative pads crop), FIR-filter with ``kernel``, downsample.

    The reference definition behind rosinality's CUDA op (``upfirdn2d_native``): a true convolution (the
    kernel flipped), the same pads on both axes.
    """
    b, c, h, w = x.shape
    kh, kw = kernel.shape
    out = x.reshape(b * c, 1, h, 1, w, 1)
    out = F.pad(out, [0, up - 1, 0, 0, 0, up - 1])
    out = out.reshape(b * c, 1, h * up, w * up)
    p0, p1 = pad
    out = F.pad(out, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    out = out[:, :, max(-p0, 0) : out.shape[2] - max(-p1, 0), max(-p0, 0) : out.shape[3] - max(-p1, 0)]
    weight = torch.flip(kernel, [0, 1]).view(1, 1, kh, kw).to(out.dtype)
    out = F.conv2d(out, weight)
    out = out[:, :, ::down, ::down]
    return out.reshape(b, c, out.shape[2], out.shape[3])


def fused_leaky_relu(x: Tensor, bias: Tensor, negative_slope: float = 0.2, scale: float = 2**0.5) -> Tensor:
    """``leaky_relu(x + bias) · √2`` with the bias on dim 1 (the reference definition of the CUDA op)."""
    shape = [1, bias.shape[0]] + [1] * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape), negative_slope=negative_slope) * scale


class PixelNorm(nn.Module):
    """Normalise each latent to unit mean square."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (``lr_mul``); optional fused leaky ReLU."""

    def __init__(
        self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0, activate: bool = False
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: Tensor) -> Tensor:
        if self.activate:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, bias=self.bias * self.lr_mul)


class Blur(nn.Module):
    """FIR blur with fixed pads (after a transposed-convolution upsampling)."""

    def __init__(self, kernel: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(kernel) * upsample_factor**2)
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """×2 upsampling with the blur kernel (the skip path of the RGB outputs)."""

    def __init__(self, kernel: Sequence[float], factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * factor**2)
        p = len(kernel) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Style-modulated (and optionally demodulated) convolution, per-sample weights as a grouped conv."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_kernel: Sequence[float] = BLUR_KERNEL,
    ) -> None:
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_channel, out_channel, kernel_size
        self.upsample, self.demodulate = upsample, demodulate
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1.0)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        b, c, h, w = x.shape
        weight = self.scale * self.weight * self.modulation(style).view(b, 1, c, 1, 1)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(
                b, self.out_channel, 1, 1, 1
            )
        k = self.kernel_size
        x = x.reshape(1, b * c, h, w)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(b * c, self.out_channel, k, k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=b)
            out = self.blur(out.reshape(b, self.out_channel, out.shape[2], out.shape[3]))
            return out
        out = F.conv2d(x, weight.reshape(b * self.out_channel, c, k, k), padding=self.padding, groups=b)
        return out.reshape(b, self.out_channel, out.shape[2], out.shape[3])


class NoiseInjection(nn.Module):
    """Add per-pixel noise scaled by a learned weight."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, noise: Tensor | None = None) -> Tensor:
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3]).normal_()
        return x + self.weight * noise


class ConstantInput(nn.Module):
    """The learned 4×4 starting map."""

    def __init__(self, channel: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int) -> Tensor:
        return self.input.repeat(batch, 1, 1, 1)


class FusedLeakyReLU(nn.Module):
    """Bias + leaky ReLU + √2 gain."""

    def __init__(self, channel: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))

    def forward(self, x: Tensor) -> Tensor:
        return fused_leaky_relu(x, self.bias)


class StyledConv(nn.Module):
    """Modulated conv → noise → fused leaky ReLU."""

    def __init__(self, in_channel: int, out_channel: int, style_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, 3, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x: Tensor, style: Tensor, noise: Tensor | None = None) -> Tensor:
        return self.activate(self.noise(self.conv(x, style), noise=noise))


class ToRGB(nn.Module):
    """1×1 modulated conv to RGB (no demodulation), added to the upsampled skip."""

    def __init__(self, in_channel: int, style_dim: int, upsample: bool = True) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample(BLUR_KERNEL)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        out = self.conv(x, style) + self.bias
        return out if skip is None else out + self.upsample(skip)


@buildable
class StyleGAN2Generator(nn.Module):
    """StyleGAN2 generator (rosinality layout): ``size`` px, ``style_dim`` latents, ``n_mlp`` mapping layers.

    ``channel_multiplier`` 2 is the published configuration; smaller values (or ``channel_divisor``) shrink
    the synthesis network for CPU tests (published weights load only at the published widths).
    """

    def __init__(
        self,
        size: int = 256,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        lr_mlp: float = 0.01,
        channel_divisor: int = 1,
    ) -> None:
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"StyleGAN2Generator: size must be a power of two >= 8, got {size}")
        self.size, self.style_dim = int(size), int(style_dim)
        self.style = nn.Sequential(
            PixelNorm(),
            *(EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activate=True) for _ in range(n_mlp)),
        )
        self.channels = {
            r: max(1, (c * (channel_multiplier if r >= 64 else 1)) // channel_divisor)
            for r, c in BASE_CHANNELS.items()
        }
        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(self.channels[4], self.channels[4], style_dim)
        self.to_rgb1 = ToRGB(self.channels[4], style_dim, upsample=False)
        self.log_size = int(math.log2(size))
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.n_latent = self.log_size * 2 - 2
        self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        self.noises = nn.Module()
        for index in range(self.num_layers):
            side = 2 ** ((index + 5) // 2)
            self.noises.register_buffer(f"noise_{index}", torch.randn(1, 1, side, side))
        in_channel = self.channels[4]
        for level in range(3, self.log_size + 1):
            out_channel = self.channels[2**level]
            self.convs.append(StyledConv(in_channel, out_channel, style_dim, upsample=True))
            self.convs.append(StyledConv(out_channel, out_channel, style_dim))
            self.to_rgbs.append(ToRGB(out_channel, style_dim))
            in_channel = out_channel

    def mapping(self, z: Tensor) -> Tensor:
        """The mapping network (rosinality's ``generator.style``): ``[B, style_dim]`` → W."""
        return self.style(z)

    def forward(self, latent: Tensor, randomize_noise: bool = False) -> Tensor:
        """Synthesise from W+ codes ``[B, n_latent, style_dim]`` (or one W ``[B, style_dim]`` for every
        layer); images in [-1, 1]. ``randomize_noise=False`` uses the stored noise maps (iFADIT's setting)."""
        if latent.ndim == 2:
            latent = latent.unsqueeze(1).repeat(1, self.n_latent, 1)
        if latent.ndim != 3 or latent.shape[1] != self.n_latent or latent.shape[2] != self.style_dim:
            raise ValueError(
                f"StyleGAN2Generator: expected W+ codes [B, {self.n_latent}, {self.style_dim}], got "
                f"{tuple(latent.shape)}"
            )
        noise: list[Tensor | None] = (
            [None] * self.num_layers
            if randomize_noise
            else [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        )
        out = self.conv1(self.input(latent.shape[0]), latent[:, 0], noise=noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        for conv_up, conv, noise_up, noise_same, to_rgb in zip(
            self.convs[::2], self.convs[1::2], noise[1::2], noise[2::2], self.to_rgbs, strict=True
        ):
            out = conv_up(out, latent[:, i], noise=noise_up)
            out = conv(out, latent[:, i + 1], noise=noise_same)
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
        return skip


def g_ema_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The ``g_ema`` generator weights of a rosinality checkpoint (``torch.load(weights_only=True)``)."""
    checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or "g_ema" not in checkpoint:
        keys = list(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f"{path}: not a rosinality StyleGAN2 checkpoint (no 'g_ema'; has {keys})")
    return dict(checkpoint["g_ema"])
