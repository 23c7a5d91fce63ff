"""Defocus training pairs made on the accelerator (JAX), so a lent GPU trains on fresh samples instead of waiting on
CPU producers.

The photos go to the device once (`DeviceSynth`); every batch is then one jit-compiled call from a PRNG key:
random crops with real context around them, one of the 8 dihedral transforms, an exposure jitter, a defocus disk
per sample (radius uniform in the configured range, a share exactly in focus) and per colour channel (longitudinal
chromatic aberration: R and B radii scaled by up to +-chroma), convolution by FFT, then Gaussian read noise plus
Poisson-like shot noise at levels drawn per sample, and 8-bit quantisation. The disk is deblurd.optics.blur.disk_psf
(same supersampled anti-aliasing) and the convolution is deblurd.optics.blur.convolve's (reflected borders), so CPU
and device samples mean the same radius.

With `optics_share` > 0 that share of the samples goes through a real lens and camera instead (the realistic CPU
synthesis's lens and ISP, tools.data.realistic): blur and noise in linear light, a wide-open phone lens's PSF
(deblurd.optics.lens_psf: a rim or a soft centre that flips across focus, edge softening, a cat's eye off-axis,
drawn as LensProfile.draw draws them, on either side of focus) and the ISP's unsharp mask after gamma. What stays
on the CPU: the Bayer mosaic, the ISP's denoiser and JPEG, and layered scenes with depth edges.

For a non-blind restorer, `nonblind_inputs` adds what the daemon tells it (deblurd.restore.radius_map.
generator_input): the radius as a mapper reports it (the true one off by a random error per sample, as
tools.data.synth.told_radius) and the luminance Wiener-deconvolved with a disk of that radius at the manifest's
noise level (the daemon knows neither the true PSF nor the noise). Channel order of `stack`: CHANNELS.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from deblurd.optics.blur import BlurDefinition
from deblurd.optics.lens_psf import BRIGHT_RIM, CATS_EYE, CATS_EYE_SHARE, SOFT_RIM, SOFT_SHARE, SOFTEN_MAX
from deblurd.optics.sensor import SHARPEN_AMOUNT, SHARPEN_SIGMA
from deblurd.optics.wiener import LOW_BAND, MIN_BAND_POINTS, MIN_RADIUS as WIENER_MIN_RADIUS
from deblurd.restore.manifest import RADIUS_SCALE, WIENER_SIGMA
from tools.data.synth import TOLD_ABSOLUTE_ERROR, TOLD_RELATIVE_ERROR

SUPERSAMPLE = 8
"""Sub-pixels per pixel side when a disk is rasterised (deblurd.optics.blur's _SUPERSAMPLE)."""
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
"""Y of YCrCb from RGB, as the daemon computes luminance."""
CHANNELS = ("luma", "radius", "wiener")
"""A non-blind restorer's input channels in order; a net taking n channels gets the first n."""
QUANTISATION_SIGMA = 1 / 255 / math.sqrt(12)
"""Standard deviation of 8-bit rounding: the least noise Wiener is told of, so its filter stays finite."""


@dataclass(frozen=True)
class SynthConfig:
    """What a batch is drawn from; hashable, so jit compiles once per configuration."""

    patch: int = 128
    min_radius: float = 0.0
    max_radius: float = 16.0
    sharp_share: float = 0.1
    """Share of samples exactly in focus (radius 0): the restorer must leave those alone."""
    chroma: float = 0.0
    """Largest relative radius change of R and B against G (opposite signs); 0 blurs luminance directly."""
    sigma: tuple[float, float] = (0.0, 3 / 255)
    """Gaussian read noise, standard deviation on [0, 1], uniform in this range per sample."""
    photons: tuple[float, float] | None = (1000.0, 4000.0)
    """Photo-electrons at white, log-uniform per sample (shot-noise variance value / photons); None: no shot noise."""
    exposure: tuple[float, float] = (0.7, 1.1)
    quantize: bool = True
    luma: bool = True
    """Return luminance (what the generators learn) rather than the photos' channels."""
    optics_share: float = 0.0
    """Share of samples through a real lens and camera (linear light, lens PSF, sharpening); the rest: ideal disks."""
    sharpen: tuple[float, float] = SHARPEN_AMOUNT
    """The ISP's unsharp-mask amount on real-optics samples, uniform in this range."""

    def __post_init__(self) -> None:
        if not 0 <= self.min_radius <= self.max_radius or not 0 <= self.sharp_share <= 1 or not 0 <= self.chroma < 0.5:
            raise ValueError(f"need 0 <= min_radius <= max_radius, sharp_share in [0, 1], chroma in [0, 0.5): {self}")
        if not 0 <= self.optics_share <= 1 or not 0 <= self.sharpen[0] <= self.sharpen[1]:
            raise ValueError(f"need optics_share in [0, 1] and 0 <= sharpen[0] <= sharpen[1]: {self}")

    @property
    def halo(self) -> int:
        """Pixels of context a sample needs on each side: the half-width of the largest PSF drawn (a lens PSF's
        softening reaches 3 sigma beyond its disk)."""
        soften = math.ceil(3 * SOFTEN_MAX) if self.optics_share > 0 else 0
        return math.ceil(self.max_radius * (1 + self.chroma)) + 1 + soften

    @property
    def told_half(self) -> int:
        """Half-width of the grid a told radius's disk is drawn on: room for four standard errors beyond the
        largest radius (a told radius is clipped to it)."""
        return math.ceil(self.max_radius * (1 + 4 * TOLD_RELATIVE_ERROR) + 4 * TOLD_ABSOLUTE_ERROR) + 1

    @classmethod
    def for_role(cls, definition: BlurDefinition, role: str, patch: int, **changes: object) -> SynthConfig:
        """A generator role's training radii and the pack's noise model (photons varied 0.5-2x, as on the CPU)."""
        low, high = definition.train_range(role)
        photons = definition.noise.photons
        return cls(patch=patch, min_radius=low, max_radius=high,
                   photons=None if photons is None else (photons / 2, photons * 2), **changes)  # type: ignore[arg-type]


class Sample(NamedTuple):
    """One degraded batch: images (B, H, W, C) in [0, 1], the reference (G) radius and noise level per sample, the
    radius per channel (B, C), the PSFs (B, C, K, K), and the radius a non-blind restorer is told (B,) with its
    disk (B, 1, K', K')."""

    blurred: jax.Array
    sharp: jax.Array
    radius: jax.Array
    radii: jax.Array
    sigma: jax.Array
    psfs: jax.Array
    told: jax.Array
    told_psfs: jax.Array


def disk_psfs(radii: jax.Array, half: int) -> jax.Array:
    """Normalised anti-aliased disks on a (2 half + 1)^2 grid, one per radius (any batch shape): disk_psf's
    raster, zero-padded. A radius under one sub-pixel is the identity, as there."""
    n = (2 * half + 1) * SUPERSAMPLE
    coords = (jnp.arange(n) + 0.5) / SUPERSAMPLE - (half + 0.5)
    inside = (coords[:, None] ** 2 + coords[None, :] ** 2) <= radii[..., None, None] ** 2
    psf = inside.reshape(*radii.shape, 2 * half + 1, SUPERSAMPLE, 2 * half + 1, SUPERSAMPLE).mean(axis=(-3, -1))
    delta = jnp.zeros((2 * half + 1, 2 * half + 1)).at[half, half].set(1.0)
    disk = psf / jnp.maximum(psf.sum(axis=(-2, -1), keepdims=True), 1e-12)
    return jnp.where((radii < 1.0 / SUPERSAMPLE)[..., None, None], delta, disk)


class Lenses(NamedTuple):
    """One lens per sample (B,): LensProfile's rim, soften and cats_eye, and where the crop sits in the frame
    (field y and x, -1..1 from the centre). All zero is the ideal disk."""

    rim: jax.Array
    soften: jax.Array
    cats_eye: jax.Array
    field: jax.Array


def draw_lenses(key: jax.Array, size: int) -> Lenses:
    """Lenses as deblurd.optics.lens_psf.LensProfile.draw draws them (soft centres mostly, bright rims sometimes,
    a cat's eye for half of them) at a field position uniform over the frame."""
    k_kind, k_soft, k_bright, k_soften, k_cats, k_clip, k_field = jax.random.split(key, 7)
    rim = jnp.where(jax.random.uniform(k_kind, (size,)) < SOFT_SHARE,
                    jax.random.uniform(k_soft, (size,), minval=SOFT_RIM[0], maxval=SOFT_RIM[1]),
                    jax.random.uniform(k_bright, (size,), minval=BRIGHT_RIM[0], maxval=BRIGHT_RIM[1]))
    cats_eye = jnp.where(jax.random.uniform(k_cats, (size,)) < CATS_EYE_SHARE,
                         jax.random.uniform(k_clip, (size,), minval=CATS_EYE[0], maxval=CATS_EYE[1]), 0.0)
    return Lenses(rim, jax.random.uniform(k_soften, (size,), maxval=SOFTEN_MAX), cats_eye,
                  jax.random.uniform(k_field, (size, 2), minval=-1.0, maxval=1.0))


def _gaussians(sigma: jax.Array, half: int) -> jax.Array:
    """1-D Gaussians (..., 2 half + 1) cut at ceil(3 sigma) as cv2.getGaussianKernel's, normalised; sigma 0 is
    the identity."""
    taps = jnp.arange(-half, half + 1, dtype=jnp.float32)
    s = sigma[..., None]
    reach = jnp.ceil(3 * s)
    g = jnp.where(jnp.abs(taps) <= reach, jnp.exp(-(taps**2) / (2 * jnp.maximum(s, 1e-6) ** 2)), 0.0)
    g = jnp.where(s > 0, g, (taps == 0).astype(jnp.float32))
    return g / g.sum(axis=-1, keepdims=True)


def _soften(psfs: jax.Array, sigma: jax.Array) -> jax.Array:
    """PSFs (..., K, K) convolved with a Gaussian of per-PSF sigma (...), zero outside the grid as cv2.filter2D's
    BORDER_CONSTANT."""
    reach = math.ceil(3 * SOFTEN_MAX)
    g = _gaussians(sigma, reach)
    k = psfs.shape[-1]

    def along(x: jax.Array, axis: int) -> jax.Array:
        pad = [(0, 0)] * x.ndim
        pad[axis] = (reach, reach)
        padded = jnp.pad(x, pad)
        return sum(g[..., i, None, None] * jax.lax.slice_in_dim(padded, i, i + k, axis=axis)
                   for i in range(2 * reach + 1))

    return along(along(psfs, -1), -2)


def lens_psfs(radii: jax.Array, lenses: Lenses, half: int) -> jax.Array:
    """deblurd.optics.lens_psf.lens_psf on the device: normalised PSFs (B, C, 2 half + 1, 2 half + 1) for signed
    radii (B, C) (positive behind focus) through each sample's lens. All-zero lenses give disk_psfs' disks."""
    n = (2 * half + 1) * SUPERSAMPLE
    coords = (jnp.arange(n) + 0.5) / SUPERSAMPLE - (half + 0.5)
    yy, xx = coords[:, None], coords[None, :]
    r = jnp.abs(radii)[..., None, None]
    rho2 = (xx**2 + yy**2) / jnp.maximum(r, 1e-6) ** 2
    rim = jnp.where(radii > 0, 1.0, -1.0)[..., None, None] * lenses.rim[:, None, None, None]
    weight = jnp.where(rho2 <= 1.0, jnp.maximum(0.0, 1.0 + rim * (3.0 * rho2**2 - 1.0)), 0.0)
    norm = jnp.hypot(lenses.field[:, 0], lenses.field[:, 1])
    unit = lenses.field / jnp.maximum(norm, 1e-6)[:, None]
    shift = (1.2 * lenses.cats_eye * jnp.minimum(1.0, norm / math.sqrt(2.0)))[:, None, None, None] * r / 2
    uy, ux = unit[:, 0, None, None, None], unit[:, 1, None, None, None]
    for sign in (1.0, -1.0):
        weight = jnp.where((yy - sign * shift * uy) ** 2 + (xx - sign * shift * ux) ** 2 <= r**2, weight, 0.0)
    psf = weight.reshape(*radii.shape, 2 * half + 1, SUPERSAMPLE, 2 * half + 1, SUPERSAMPLE).mean(axis=(-3, -1))
    psf = _soften(psf, lenses.soften[:, None] * jnp.minimum(1.0, jnp.abs(radii)))
    delta = jnp.zeros((2 * half + 1, 2 * half + 1)).at[half, half].set(1.0)
    psf = psf / jnp.maximum(psf.sum(axis=(-2, -1), keepdims=True), 1e-12)
    return jnp.where((jnp.abs(radii) < 1.0 / SUPERSAMPLE)[..., None, None], delta, psf)


def srgb_to_linear(x: jax.Array) -> jax.Array:
    """deblurd.optics.sensor.srgb_to_linear on the device."""
    x = jnp.clip(x, 0.0, 1.0)
    return jnp.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: jax.Array) -> jax.Array:
    """deblurd.optics.sensor.linear_to_srgb on the device."""
    x = jnp.clip(x, 0.0, 1.0)
    return jnp.where(x <= 0.0031308, x * 12.92, 1.055 * jnp.maximum(x, 0.0031308) ** (1 / 2.4) - 0.055)


def _otf(psfs: jax.Array, shape: tuple[int, int]) -> jax.Array:
    """Transfer functions (rfft2 grid of `shape`) of centred PSFs (..., K, K), their centre moved to the origin."""
    half = psfs.shape[-1] // 2
    padded = jnp.zeros((*psfs.shape[:-2], *shape), psfs.dtype).at[..., : psfs.shape[-2], : psfs.shape[-1]].set(psfs)
    return jnp.fft.rfft2(jnp.roll(padded, (-half, -half), axis=(-2, -1)))


def convolve(images: jax.Array, psfs: jax.Array, context: int = 0) -> jax.Array:
    """Blur (B, H, W, C) images by per-image, per-channel PSFs (B, C, K, K) by FFT.

    `context` pixels on each side are real surroundings, used then cut (output H - 2 context); the rest of the
    PSF's reach is filled by reflection (cv2.BORDER_REFLECT101, as deblurd.optics.blur.convolve does)."""
    half = psfs.shape[-1] // 2
    pad = max(0, half - context)
    x = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect") if pad else images
    x = jnp.moveaxis(x, -1, 1)
    shape = x.shape[-2:]
    out = jnp.fft.irfft2(jnp.fft.rfft2(x) * _otf(psfs.astype(x.dtype), shape), s=shape)
    cut = pad + context
    out = out[..., cut : shape[0] - cut, cut : shape[1] - cut]
    return jnp.moveaxis(out, 1, -1)


def _luma(images: jax.Array) -> jax.Array:
    return images if images.shape[-1] == 1 else images @ jnp.asarray(LUMA_WEIGHTS, images.dtype)[:, None]


@partial(jax.jit, static_argnames=("config", "context"))
def degrade(sharp: jax.Array, key: jax.Array, config: SynthConfig, context: int = 0) -> Sample:
    """Blur and noise a batch of sharp crops (B, H, W, C or B, H, W; uint8 or float in [0, 1]) on the device.

    `context` pixels around each crop are surroundings for the blur and are cut from every output."""
    if sharp.ndim == 3:
        sharp = sharp[..., None]
    x = sharp.astype(jnp.float32) / 255.0 if sharp.dtype == jnp.uint8 else sharp.astype(jnp.float32)
    b = x.shape[0]
    if config.optics_share > 0:
        key, k_real, k_lens, k_side, k_amount, k_usm = jax.random.split(key, 6)
        real = jax.random.uniform(k_real, (b,)) < config.optics_share
        drawn = draw_lenses(k_lens, b)
        lenses = Lenses(*(jnp.where(real.reshape(-1, *[1] * (f.ndim - 1)), f, 0.0) for f in drawn))
        side = jnp.where(real & (jax.random.uniform(k_side, (b,)) < 0.5), -1.0, 1.0)
    k_exp, k_r, k_sharp, k_chroma, k_sigma, k_photons, k_noise, k_told = jax.random.split(key, 8)
    gain = jax.random.uniform(k_exp, (b, 1, 1, 1), minval=config.exposure[0], maxval=config.exposure[1])
    x = jnp.clip(x * gain, 0, 1)
    in_focus = jax.random.uniform(k_sharp, (b,)) < config.sharp_share
    radius = jnp.where(in_focus, 0.0, jax.random.uniform(k_r, (b,), minval=config.min_radius, maxval=config.max_radius))
    if config.chroma > 0 and x.shape[-1] == 3:
        shift = jax.random.uniform(k_chroma, (b,), minval=-config.chroma, maxval=config.chroma)
        radii = radius[:, None] * (1 + jnp.stack([shift, jnp.zeros_like(shift), -shift], axis=-1))
    else:
        x = _luma(x) if config.luma else x
        radii = jnp.repeat(radius[:, None], x.shape[-1], axis=1)
    clean = x[:, context : x.shape[1] - context, context : x.shape[2] - context]
    if config.optics_share > 0:
        psfs = lens_psfs(radii * side[:, None], lenses, config.halo)
        x = jnp.where(real[:, None, None, None], srgb_to_linear(x), x)
    else:
        psfs = disk_psfs(radii, config.halo)
    blurred = jnp.where((radii < 1.0 / SUPERSAMPLE).all(axis=1)[:, None, None, None],
                        x[:, context : x.shape[1] - context, context : x.shape[2] - context],
                        convolve(x, psfs, context))
    if config.luma:
        blurred, clean = _luma(blurred), _luma(clean)
        if psfs.shape[1] == 3:  # the luminance's PSF: the channels' PSFs weighted as Y weighs them
            psfs = jnp.einsum("bckl,c->bkl", psfs, jnp.asarray(LUMA_WEIGHTS))[:, None]
    sigma = jax.random.uniform(k_sigma, (b,), minval=config.sigma[0], maxval=config.sigma[1])
    variance = jnp.broadcast_to(sigma[:, None, None, None] ** 2, blurred.shape)
    shot = jnp.zeros((b,))
    if config.photons is not None:
        low, high = math.log(config.photons[0]), math.log(config.photons[1])
        photons = jnp.exp(jax.random.uniform(k_photons, (b,), minval=low, maxval=high))
        variance = variance + jnp.clip(blurred, 0, None) / photons[:, None, None, None]
        shot = blurred.mean(axis=(1, 2, 3)) / photons
    noisy = jnp.clip(blurred + jnp.sqrt(variance) * jax.random.normal(k_noise, blurred.shape), 0.0, 1.0)
    if config.optics_share > 0:
        noisy, spread = _camera(noisy, real, k_amount, k_usm, config)
        sigma, shot = sigma * spread, shot * spread**2
    if config.quantize:
        noisy = jnp.round(noisy * 255.0) / 255.0
    effective = jnp.sqrt(sigma**2 + shot + (QUANTISATION_SIGMA**2 if config.quantize else 0.0))
    error = jax.random.normal(k_told, (2, b)) * jnp.asarray([[TOLD_RELATIVE_ERROR], [TOLD_ABSOLUTE_ERROR]])
    told = jnp.clip(radius * (1.0 + error[0]) + error[1], 0.0, config.told_half - 1.0)
    return Sample(noisy, clean, radius, radii, effective, psfs, told, disk_psfs(told, config.told_half)[:, None])


def _camera(images: jax.Array, real: jax.Array, k_amount: jax.Array, k_usm: jax.Array,
            config: SynthConfig) -> tuple[jax.Array, jax.Array]:
    """The ISP after the sensor for the real-optics samples (`real`, whose images are linear light): gamma to sRGB,
    then the unsharp mask; the other samples pass. Returns the images and, per sample, about how much the noise's
    standard deviation grew (gamma's slope at the sample's mean level times the mask's gain)."""
    b = images.shape[0]
    srgb = linear_to_srgb(images)
    amount = jax.random.uniform(k_amount, (b,), minval=config.sharpen[0], maxval=config.sharpen[1])
    sigma = jax.random.uniform(k_usm, (b,), minval=SHARPEN_SIGMA[0], maxval=SHARPEN_SIGMA[1])
    g = _gaussians(sigma, math.ceil(3 * SHARPEN_SIGMA[1]))
    kernels = jnp.repeat((g[:, :, None] * g[:, None, :])[:, None], srgb.shape[-1], axis=1)
    a = amount[:, None, None, None]
    sharpened = jnp.clip(srgb + a * (srgb - convolve(srgb, kernels)), 0.0, 1.0)
    level = jnp.clip(images.mean(axis=(1, 2, 3)), 0.0031308, 1.0)
    spread = 1.055 / 2.4 * level ** (1 / 2.4 - 1) * (1 + amount)
    return jnp.where(real[:, None, None, None], sharpened, images), jnp.where(real, spread, 1.0)


def wiener(images: jax.Array, psfs: jax.Array, sigma: jax.Array) -> jax.Array:
    """Wiener deconvolution of (B, H, W, 1) images by their PSFs (B, 1, K, K) for noise `sigma` (B,):
    deblurd/optics/wiener.py's filter (mirror extension, S(f) = A / |f|^2 with A fitted over LOW_BAND, lower
    for a large blur)."""
    x = images[..., 0]
    top = jnp.concatenate([x, x[:, :, ::-1]], axis=2)
    x2 = jnp.concatenate([top, top[:, ::-1]], axis=1)
    shape = x2.shape[1:]
    mean = x2.mean(axis=(1, 2), keepdims=True)
    spectrum = jnp.fft.rfft2(x2 - mean)
    h = _otf(psfs[:, 0] / psfs[:, 0].sum(axis=(-2, -1), keepdims=True), shape)
    f = jnp.sqrt(jnp.fft.fftfreq(shape[0])[:, None] ** 2 + jnp.fft.rfftfreq(shape[1])[None, :] ** 2)
    s2 = jnp.maximum(sigma, QUANTISATION_SIGMA)[:, None, None] ** 2
    passed = jnp.abs(h) > 0.5
    usual = (f >= LOW_BAND[0]) & (f <= LOW_BAND[1]) & passed
    wide = (f >= 2.0 / min(shape)) & (f <= LOW_BAND[1]) & passed
    band = jnp.where((usual.sum(axis=(1, 2)) < MIN_BAND_POINTS)[:, None, None], wide, usual)
    power = jnp.abs(spectrum) ** 2 / (shape[0] * shape[1]) - s2
    ratio = jnp.maximum(power, 0.0) * f**2 / jnp.maximum(jnp.abs(h) ** 2, 1e-30)
    amplitude = jnp.nan_to_num(jnp.nanmedian(jnp.where(band, ratio, jnp.nan), axis=(1, 2)), nan=0.0)
    nsr = s2 * jnp.maximum(f, 1.0 / max(shape)) ** 2 / jnp.maximum(amplitude, 1e-12)[:, None, None]
    restored = jnp.fft.irfft2(spectrum * jnp.conj(h) / (jnp.abs(h) ** 2 + nsr), s=shape) + mean
    return jnp.clip(restored[:, : x.shape[1], : x.shape[2]], 0.0, 1.0)[..., None]


def nonblind_inputs(sample: Sample) -> dict[str, jax.Array]:
    """What a non-blind restorer is told, each (B, H, W, 1), as the daemon builds it: the blurred luminance, the
    told radius / RADIUS_SCALE and the luminance Wiener-deconvolved with a disk of the told radius for noise
    WIENER_SIGMA (deblurd.optics.wiener.wiener_disk: the input itself under a quarter pixel). Needs a luminance
    sample."""
    if sample.blurred.shape[-1] != 1:
        raise ValueError("non-blind inputs are luminance: draw with SynthConfig(luma=True)")
    radius = jnp.broadcast_to(sample.told[:, None, None, None] / RADIUS_SCALE, sample.blurred.shape)
    sigma = jnp.full(sample.told.shape, WIENER_SIGMA, jnp.float32)
    restored = jnp.where((sample.told < WIENER_MIN_RADIUS)[:, None, None, None], jnp.clip(sample.blurred, 0.0, 1.0),
                         wiener(sample.blurred, sample.told_psfs, sigma))
    return {"luma": sample.blurred, "radius": radius, "wiener": restored}


def stack(sample: Sample, channels: int) -> jax.Array:
    """A net's input of `channels` channels: the first of CHANNELS (1: the blind restorers' luminance)."""
    if not 1 <= channels <= len(CHANNELS):
        raise ValueError(f"a restorer takes 1-{len(CHANNELS)} channels ({', '.join(CHANNELS)}), not {channels}")
    if channels == 1:
        return sample.blurred
    inputs = nonblind_inputs(sample)
    return jnp.concatenate([inputs[name] for name in CHANNELS[:channels]], axis=-1)


def _dihedral(crop: jax.Array, code: jax.Array) -> jax.Array:
    """One of the 8 flips and quarter turns of a square crop (H, W, C), chosen by code 0-7."""
    crop = jnp.where(code & 1, jnp.swapaxes(crop, 0, 1), crop)
    crop = jnp.where(code & 2, crop[::-1], crop)
    return jnp.where(code & 4, crop[:, ::-1], crop)


@partial(jax.jit, static_argnames=("config", "size", "channels"))
def _draw(pixels: jax.Array, starts: jax.Array, sizes: jax.Array, key: jax.Array, config: SynthConfig, size: int,
          channels: int) -> tuple[jax.Array, jax.Array, Sample]:
    crop = config.patch + 2 * config.halo
    k_photo, k_y, k_x, k_turn, k_degrade = jax.random.split(key, 5)
    index = jax.random.randint(k_photo, (size,), 0, sizes.shape[0])
    h, w = sizes[index, 0], sizes[index, 1]
    y = jnp.floor(jax.random.uniform(k_y, (size,)) * (h - crop + 1)).astype(jnp.int32)
    x = jnp.floor(jax.random.uniform(k_x, (size,)) * (w - crop + 1)).astype(jnp.int32)
    span = jnp.arange(crop, dtype=jnp.int32)
    flat = (starts[index][:, None, None] + (y[:, None, None] + span[None, :, None]) * w[:, None, None]
            + x[:, None, None] + span[None, None, :])
    crops = jax.vmap(_dihedral)(pixels[flat], jax.random.randint(k_turn, (size,), 0, 8))
    sample = degrade(crops, k_degrade, config, context=config.halo)
    return stack(sample, channels), sample.sharp, sample


class DeviceSynth:
    """A photo pool uploaded once (uint8, every photo's rows one after another: no padding) and a jitted batch
    drawer over it."""

    def __init__(self, photos: Sequence[np.ndarray], config: SynthConfig) -> None:
        crop = config.patch + 2 * config.halo
        photos = [p[..., None] if p.ndim == 2 else p for p in photos if min(p.shape[:2]) >= crop]
        if not photos:
            raise ValueError(f"no photo is at least {crop} px on both sides (patch {config.patch} plus the blur's "
                             f"reach twice); use a smaller patch or max_radius, or larger photos")
        if len({p.shape[-1] for p in photos}) != 1:
            raise ValueError("photos must all be RGB or all luminance")
        pool = np.concatenate([(p if p.dtype == np.uint8 else np.round(np.clip(p, 0, 1) * 255).astype(np.uint8))
                               .reshape(-1, p.shape[-1]) for p in photos])
        if len(pool) >= 2**31:
            raise ValueError(f"{len(pool)} pixels exceed the pool's int32 index: use fewer or smaller photos")
        counts = np.array([p.shape[0] * p.shape[1] for p in photos])
        self.config = config
        self.pixels = jax.device_put(pool)
        self.starts = jax.device_put((np.cumsum(counts) - counts).astype(np.int32))
        self.sizes = jax.device_put(np.array([p.shape[:2] for p in photos], np.int32))
        self.drawn = 0

    def draw(self, key: jax.Array, size: int, channels: int = 1) -> tuple[jax.Array, jax.Array, Sample]:
        """One batch: (net input of `channels` channels, sharp target, the whole Sample), all on the device."""
        self.drawn += size
        return _draw(self.pixels, self.starts, self.sizes, key, self.config, size, channels)

    def batches(self, key: jax.Array, size: int, channels: int = 1) -> Iterator[tuple[jax.Array, jax.Array]]:
        """Endless (input, target) batches, each from a fresh key; nothing leaves the device."""
        while True:
            key, step = jax.random.split(key)
            x, y, _ = self.draw(step, size, channels)
            yield x, y
