"""Image parameterizations: what the optimizer changes, and how that becomes an image.

Every parameterization returns an `ImageParam`: the tensors to optimize, `image_fn()` giving the
(N, C, H, W) image in the model's input normalization, and `set_image(x)` writing an image back
into the parameters. `set_image` is what lets the Yosinski regularizers (projections on pixels:
decay, blur, clipping) work the same way whichever parameterization the optimizer steps in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch


class ImageParam(NamedTuple):
    """Optimizable tensors, the image they make, and the inverse that writes an image back."""

    params: list[torch.Tensor]
    image_fn: Callable[[], torch.Tensor]
    set_image: Callable[[torch.Tensor], None]


def pixel_image(init: torch.Tensor) -> ImageParam:
    """The pixels themselves are the parameters, starting at `init` (N, C, H, W)."""
    pixels = init.detach().clone().requires_grad_(True)

    def set_image(x: torch.Tensor) -> None:
        with torch.no_grad():
            pixels.copy_(x)

    return ImageParam([pixels], lambda: pixels, set_image)


def spectrum_scale(h: int, w: int, decay_power: float = 1.0, device: torch.device | None = None) -> torch.Tensor:
    """(H, W//2+1) gains ~ 1/frequency^decay_power, so equal steps on every coefficient give an image step with
    natural images' 1/f spectrum; normalized to unit root mean square so `lr` means about the same per pixel
    as for the pixel parameterization."""
    fy = torch.fft.fftfreq(h, device=device)[:, None]
    fx = torch.fft.rfftfreq(w, device=device)[None, :]
    freqs = torch.sqrt(fy ** 2 + fx ** 2)
    scale = 1.0 / torch.clamp(freqs, min=1.0 / max(h, w)) ** decay_power
    return scale / scale.pow(2).mean().sqrt()


def fourier_image(init: torch.Tensor, decay_power: float = 1.0) -> ImageParam:
    """Decorrelated parameterization: scaled real/imaginary parts of each channel's 2-D spectrum
    (Olah et al. 2017, as in Lucid/Lucent), starting at the image `init`. Linear and exactly invertible,
    so `set_image(image_fn())` changes nothing."""
    n, c, h, w = init.shape
    scale = spectrum_scale(h, w, decay_power, init.device)[..., None]  # broadcast over (re, im)
    spectrum = torch.zeros(n, c, h, w // 2 + 1, 2, device=init.device, dtype=init.dtype, requires_grad=True)

    def image_fn() -> torch.Tensor:
        return torch.fft.irfft2(torch.view_as_complex(spectrum * scale), s=(h, w), norm="ortho")

    def set_image(x: torch.Tensor) -> None:
        with torch.no_grad():
            spectrum.copy_(torch.view_as_real(torch.fft.rfft2(x, norm="ortho")) / scale)

    set_image(init)
    return ImageParam([spectrum], image_fn, set_image)


PARAMETERIZATIONS: dict[str, Callable[[torch.Tensor], ImageParam]] = {"pixel": pixel_image, "fourier": fourier_image}


def make_param(kind: str, init: torch.Tensor) -> ImageParam:
    """The parameterization called `kind` ('pixel' or 'fourier'), starting at image `init`."""
    if kind not in PARAMETERIZATIONS:
        raise ValueError(f"unknown parameterization {kind!r}; known: {', '.join(PARAMETERIZATIONS)}")
    return PARAMETERIZATIONS[kind](init)
