"""Keras architectures: our restorer and classifier, the seed papers' two generators, and a PatchGAN critic.

Every generator maps luminance (H, W, 1) in [0, 1] to restored luminance and is fully convolutional, so it can
be exported at a fixed tile size. `macs_per_pixel` counts multiply-accumulates the way the benchmark reports them.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops


def _space_to_depth(x, factor: int):
    """tf.nn.space_to_depth where TensorFlow runs (it exports as one TFLite op), the same channel order elsewhere."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.nn.space_to_depth(x, factor)
    return space_to_depth_ops(x, factor)


def _depth_to_space(x, factor: int):
    """The inverse of _space_to_depth."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.nn.depth_to_space(x, factor)
    return depth_to_space_ops(x, factor)


def space_to_depth_ops(x, factor: int):
    """tf.nn.space_to_depth in keras.ops (any backend): channel (dy * factor + dx) * C + c."""
    _, h, w, c = ops.shape(x)
    x = ops.reshape(x, (-1, h // factor, factor, w // factor, factor, c))
    return ops.reshape(ops.transpose(x, (0, 1, 3, 2, 4, 5)), (-1, h // factor, w // factor, factor * factor * c))


def depth_to_space_ops(x, factor: int):
    """tf.nn.depth_to_space in keras.ops (any backend)."""
    _, h, w, c = ops.shape(x)
    x = ops.reshape(x, (-1, h, w, factor, factor, c // (factor * factor)))
    return ops.reshape(ops.transpose(x, (0, 1, 3, 2, 4, 5)), (-1, h * factor, w * factor, c // (factor * factor)))


class _Reshuffle(layers.Layer):
    """Moves pixels between space and channels by `factor`; subclasses set `op` to the direction. Backend-neutral,
    so tools.train.gpu trains the same networks under Keras on JAX."""

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return self.op(x, self.factor)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="deblurd")
class PixelUnshuffle(_Reshuffle):
    """Space-to-depth: trades resolution for channels so the convolutions run at lower resolution."""

    op = staticmethod(_space_to_depth)

    def compute_output_shape(self, shape):
        f = self.factor
        return (shape[0], *(None if d is None else d // f for d in shape[1:3]), shape[3] * f * f)


@keras.saving.register_keras_serializable(package="deblurd")
class PixelShuffle(_Reshuffle):
    """Depth-to-space: the cheap, checkerboard-free way back up to full resolution."""

    op = staticmethod(_depth_to_space)

    def compute_output_shape(self, shape):
        f = self.factor
        return (shape[0], *(None if d is None else d * f for d in shape[1:3]), shape[3] // (f * f))


def _conv(x, filters: int, stride: int = 1, kernel: int = 3, act: bool = True):
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same")(x)
    return layers.ReLU()(x) if act else x


def _res_block(x, filters: int):
    y = _conv(x, filters)
    y = _conv(y, filters, act=False)
    return layers.ReLU()(layers.Add()([x, y]))


def _unet_correction(inp, widths: tuple[int, ...], blocks: int, bottleneck: int, unshuffle: int):
    """Pixel-unshuffle front end, a residual U-Net over len(widths) scales, pixel-shuffle back: one correction
    channel at full resolution."""
    x = PixelUnshuffle(unshuffle)(inp) if unshuffle > 1 else inp
    x = _conv(x, widths[0])
    skips = []
    for level, w in enumerate(widths):
        for _ in range(blocks):
            x = _res_block(x, w)
        if level < len(widths) - 1:
            skips.append(x)
            x = _conv(x, widths[level + 1], stride=2)
    for _ in range(bottleneck):
        x = _res_block(x, widths[-1])
    for level in reversed(range(len(widths) - 1)):
        x = PixelShuffle(2)(layers.Conv2D(4 * widths[level], 1)(x))
        x = layers.Add()([x, skips[level]])
        for _ in range(blocks):
            x = _res_block(x, widths[level])
    x = layers.Conv2D(unshuffle * unshuffle, 3, padding="same", kernel_initializer="zeros")(x)
    return PixelShuffle(unshuffle)(x) if unshuffle > 1 else x


def restorer_unet(widths: tuple[int, ...] = (16, 32), blocks: int = 1, bottleneck: int = 2,
                  unshuffle: int = 2, name: str = "restorer") -> keras.Model:
    """Our blind generator: the U-Net's correction plus a global skip, so the net only learns (sharp - blurred)."""
    inp = keras.Input((None, None, 1), name="luma")
    out = layers.Add(name="restored")([inp, _unet_correction(inp, widths, blocks, bottleneck, unshuffle)])
    return keras.Model(inp, out, name=name)


def nonblind_unet(widths: tuple[int, ...] = (16, 32), blocks: int = 1, bottleneck: int = 2, unshuffle: int = 2,
                  radius: bool = True, wiener: bool = False, name: str = "nonblind") -> keras.Model:
    """A restorer told the blur: inputs are luminance, then (if `radius`) the radius map / RADIUS_SCALE, then (if
    `wiener`) the luminance Wiener-deconvolved with that radius (computed outside the net). The U-Net body is
    restorer_unet's; the global skip adds the correction to the Wiener channel when there is one (the net refines
    a deconvolution) and to the luminance otherwise. With neither option it is the blind restorer of equal size."""
    channels = 1 + int(radius) + int(wiener)
    inp = keras.Input((None, None, channels), name="luma" + "_radius" * radius + "_wiener" * wiener)
    base = inp[..., channels - 1:] if wiener else inp[..., :1]
    out = layers.Add(name="restored")([base, _unet_correction(inp, widths, blocks, bottleneck, unshuffle)])
    return keras.Model(inp, out, name=name)


def severity_classifier(size: int, widths: tuple[int, ...] = (8, 16, 24, 32), name: str = "classifier") -> keras.Model:
    """Tiny blur-severity classifier: a full-resolution first layer keeps the fine detail blur removes, then
    strided layers; average and max pooling together capture "how sharp is the sharpest part"."""
    inp = keras.Input((size, size, 1), name="luma")
    x = layers.Rescaling(4.0, offset=-2.0)(inp)
    x = _conv(x, widths[0])
    for w in widths[1:]:
        x = _conv(x, w, stride=2)
    x = layers.Concatenate()([layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)])
    out = layers.Dense(3, activation="softmax", name="scores")(x)
    return keras.Model(inp, out, name=name)


def blur_mapper(widths: tuple[int, ...] = (16, 24, 32, 48), dilations: tuple[int, ...] = (1, 2, 4, 8),
                name: str = "mapper") -> keras.Model:
    """Dense blur map: class probabilities for every 8x8 cell of the input in one fully convolutional pass.

    A full-resolution first layer keeps the fine detail blur removes; three strided layers reach the cell grid;
    dilated residual layers there give each cell about 250 px of context, so a flat cell takes its verdict from
    the textured surface around it (the per-crop classifier needed a hand-made texture confidence for that).
    """
    inp = keras.Input((None, None, 1), name="luma")
    out = layers.Conv2D(3, 1, activation="softmax", name="cell_scores")(_mapper_body(inp, widths, dilations))
    return keras.Model(inp, out, name=name)


def _mapper_body(inp, widths: tuple[int, ...], dilations: tuple[int, ...]):
    """blur_mapper's features on the MAP_STRIDE cell grid."""
    x = layers.Rescaling(4.0, offset=-2.0)(inp)
    x = _conv(x, widths[0])
    for w in widths[1:]:
        x = _conv(x, w, stride=2)
    for rate in dilations:
        y = layers.Conv2D(widths[-1], 3, padding="same", dilation_rate=rate)(x)
        x = layers.ReLU()(layers.Add()([x, y]))
    return x


def radius_mapper(widths: tuple[int, ...] = (16, 24, 32, 48), dilations: tuple[int, ...] = (1, 2, 4, 8),
                  name: str = "mapper_radius") -> keras.Model:
    """Dense radius map: per 8x8 cell the defocus radius / RADIUS_SCALE (ReLU) and a confidence (sigmoid), one
    output of two channels (the manifest's "radius" output), on blur_mapper's body."""
    inp = keras.Input((None, None, 1), name="luma")
    x = _mapper_body(inp, widths, dilations)
    radius = layers.Conv2D(1, 1, activation="relu", name="radius")(x)
    confidence = layers.Conv2D(1, 1, activation="sigmoid", name="confidence")(x)
    return keras.Model(inp, layers.Concatenate(name="radius_confidence")([radius, confidence]), name=name)


MAP_STRIDE = 8
"""Input pixels per map cell along each axis (three stride-2 layers)."""


def paper_autoencoder(channels: int = 1, name: str = "paper_autoencoder") -> keras.Model:
    """The second paper's 7-layer CNN autoencoder: 3 Conv2D + 5 Conv2DTranspose, all stride 1, LeakyReLU,
    64-128-256-256-128-64-32-channels (1.35M parameters with 3 channels)."""
    inp = keras.Input((None, None, channels), name="image")
    x = inp
    for f in (64, 128, 256):
        x = layers.LeakyReLU(0.2)(layers.Conv2D(f, 3, padding="same")(x))
    for f in (256, 128, 64, 32):
        x = layers.LeakyReLU(0.2)(layers.Conv2DTranspose(f, 3, padding="same")(x))
    out = layers.Conv2DTranspose(channels, 3, padding="same", activation="sigmoid")(x)
    return keras.Model(inp, out, name=name)


def paper_pix2pix(size: int = 256, channels: int = 1, name: str = "paper_pix2pix") -> keras.Model:
    """The first paper's pix2pix U-Net generator (Isola et al.): 8 stride-2 4x4 encoder layers C64-C128-C256-C512x5,
    a mirrored decoder with skips and dropout, tanh output mapped back to [0, 1]."""
    inp = keras.Input((size, size, channels), name="image")
    x = layers.Rescaling(2.0, offset=-1.0)(inp)
    skips = []
    for i, f in enumerate((64, 128, 256, 512, 512, 512, 512, 512)):
        x = layers.Conv2D(f, 4, strides=2, padding="same", use_bias=False)(x)
        if i > 0:
            x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU(0.2)(x)
        skips.append(x)
    for i, f in enumerate((512, 512, 512, 512, 256, 128, 64)):
        x = layers.Conv2DTranspose(f, 4, strides=2, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        if i < 3:
            x = layers.Dropout(0.5)(x)
        x = layers.ReLU()(x)
        x = layers.Concatenate()([x, skips[-(i + 2)]])
    x = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="tanh")(x)
    out = layers.Rescaling(0.5, offset=0.5)(x)
    return keras.Model(inp, out, name=name)


def patch_discriminator(widths: tuple[int, ...] = (16, 32, 64), name: str = "patchgan") -> keras.Model:
    """A small PatchGAN critic (pix2pix style, narrower so it trains on a CPU): one realness score per patch."""
    inp = keras.Input((None, None, 1), name="luma")
    x = layers.Rescaling(2.0, offset=-1.0)(inp)
    for i, w in enumerate(widths):
        x = layers.Conv2D(w, 4, strides=2 if i < len(widths) - 1 else 1, padding="same")(x)
        x = layers.LeakyReLU(0.2)(x)
    out = layers.Conv2D(1, 4, padding="same")(x)
    return keras.Model(inp, out, name=name)


CLASSIFIERS = {"classifier": (8, 16, 24, 32), "classifier-wide": (16, 24, 32, 48)}
"""Classifier architectures by name: the widths of severity_classifier's four layers."""
MAPPERS = {"mapper": blur_mapper, "mapper-radius": radius_mapper}
"""Dense blur-map architectures (the classifier role, one score per MAP_STRIDE cell)."""
RADIUS_MAPPERS = ("mapper-radius",)
"""The dense mappers whose output is the radius and a confidence (the manifest's output "radius")."""
GENERATOR_INPUTS: dict[str, tuple[str, ...]] = {
    "nonblind": ("luma", "radius"), "nonblind-heavy": ("luma", "radius"),
    "nonblind-wiener": ("luma", "radius", "wiener"), "nonblind-heavy-wiener": ("luma", "radius", "wiener")}
"""Input channels of the non-blind generators (the manifest's inputs); every other generator takes ("luma",)."""

ARCHITECTURES = {
    "ours-semi": lambda: restorer_unet((16, 32), blocks=1, bottleneck=2, name="ours_semi"),
    "ours-semi-wide": lambda: restorer_unet((16, 32, 64), blocks=1, bottleneck=2, name="ours_semi_wide"),
    "ours-heavy": lambda: restorer_unet((16, 32, 64), blocks=1, bottleneck=3, name="ours_heavy"),
    "ours-semi-l": lambda: restorer_unet((24, 48, 64, 96), blocks=1, bottleneck=2, name="ours_semi_l"),
    "ours-heavy-l": lambda: restorer_unet((32, 48, 96, 128), blocks=1, bottleneck=3, name="ours_heavy_l"),
    "ours-digits": lambda: restorer_unet((32, 48, 64), blocks=1, bottleneck=2, unshuffle=2, name="ours_digits"),
    "autoencoder": paper_autoencoder,
    "blur-model": lambda: restorer_unet((16, 32), blocks=1, bottleneck=1, name="reblur"),
    "nonblind": lambda: nonblind_unet((16, 32), name="nonblind"),
    "nonblind-heavy": lambda: nonblind_unet((16, 32, 64), bottleneck=3, name="nonblind_heavy"),
    "nonblind-wiener": lambda: nonblind_unet((16, 32), wiener=True, name="nonblind_wiener"),
    "nonblind-heavy-wiener": lambda: nonblind_unet((16, 32, 64), bottleneck=3, wiener=True,
                                                   name="nonblind_heavy_wiener"),
}


def macs_per_pixel(model: keras.Model, size: int = 256) -> float:
    """Multiply-accumulates per input pixel of the convolution and dense layers, measured at size x size."""
    probe = keras.models.clone_model(model, input_tensors=keras.Input((size, size, model.input_shape[-1])))
    total = 0.0
    for layer in probe.layers:
        if isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose)):
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            out = layer.output.shape
            spatial = (out[1] * out[2] if isinstance(layer, layers.Conv2D)
                       else layer.input.shape[1] * layer.input.shape[2])
            total += spatial * kh * kw * cin * layer.filters
        elif isinstance(layer, layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return total / (size * size)
