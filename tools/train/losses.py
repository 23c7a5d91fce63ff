"""Training losses in keras.ops, so the CPU trainer (TensorFlow) and the GPU trainer (JAX) minimise the same thing,
and the radius map's validation metric.

Keras's argument order throughout: (target, prediction)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from deblurd.restore.manifest import RADIUS_SCALE

CHARBONNIER_EPS = 1e-3
CONFIDENT_PX = 0.5
"""The confidence head learns the probability that the cell's radius is within this many px (the map's target MAE)."""


def charbonnier(target, pred):
    """A smooth L1: robust to the rare large error, without L1's kink at zero."""
    return ops.mean(ops.sqrt(ops.square(pred - target) + CHARBONNIER_EPS**2))


def mse(target, pred):
    """What PSNR scores."""
    return ops.mean(ops.square(pred - target))


def mapper_loss(target, scores):
    """Mean cell cross-entropy weighted by target[..., 1]; target[..., 0] holds the class index."""
    labels, weights = target[..., 0], target[..., 1]
    ce = keras.losses.sparse_categorical_crossentropy(ops.cast(labels, "int32"), scores)
    return ops.sum(ce * weights) / ops.sum(weights)


def radius_loss(target, out):
    """Huber (1 px) on radius px plus the confidence head's binary cross-entropy against |error| <= CONFIDENT_PX,
    weighted per cell by target[..., 1]; target[..., 0] holds the true mean radius in px."""
    radius, weights = target[..., 0], target[..., 1]
    error = out[..., 0] * RADIUS_SCALE - radius
    huber = ops.where(ops.abs(error) <= 1.0, 0.5 * ops.square(error), ops.abs(error) - 0.5)
    right = ops.cast(ops.abs(ops.stop_gradient(error)) <= CONFIDENT_PX, "float32")
    bce = keras.losses.binary_crossentropy(right[..., None], out[..., 1:2])
    return ops.sum((huber + bce) * weights) / ops.sum(weights)


def radius_mae(out: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute radius error in px over the cells with texture (weight 1)."""
    textured = target[..., 1] == 1.0
    return float(np.mean(np.abs(out[..., 0] * RADIUS_SCALE - target[..., 0])[textured]))
