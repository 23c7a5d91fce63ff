"""Rebuild a Keras network from a pack's float TFLite file, so training can continue from shipped weights.

Training runs (runs/) stay on the machine that made them, but every pack ships its float model: its convolution
and dense weights, read in execution order, are the Keras layers' weights in build order (our networks have no
batch normalisation to fold). The rebuilt network is checked against the TFLite model on random input before
it is used, so a mismatch stops here rather than silently training from garbage.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from deblurd.restore.tflite import TfliteModel

_WEIGHTED_OPS = {"CONV_2D", "FULLY_CONNECTED"}
TOLERANCE = 1e-4


def tflite_weights(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel, bias) of every convolution and dense op in execution order, in Keras layout."""
    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    out = []
    for op in it._get_ops_details():
        if op["op_name"] not in _WEIGHTED_OPS:
            continue
        _, kernel_index, bias_index = (int(i) for i in op["inputs"][:3])
        kernel, bias = it.get_tensor(kernel_index), it.get_tensor(bias_index)
        out.append((kernel.transpose(1, 2, 3, 0) if op["op_name"] == "CONV_2D" else kernel.T, bias))
    return out


def _weighted_layers(net: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in net.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]


def _set_weights(layers: list[keras.layers.Layer], weights: list[tuple[np.ndarray, np.ndarray]], path: Path,
                 what: str) -> None:
    """Set each layer from the file's op of the same place, refusing a shape that differs ("not the same {what}")."""
    for layer, (kernel, bias) in zip(layers, weights):
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if expected != [kernel.shape, bias.shape]:
            raise ValueError(f"{path}: layer {layer.name} wants {expected}, the file has "
                             f"{[kernel.shape, bias.shape]}: not the same {what}")
        layer.set_weights([kernel, bias])


def load_body_from_tflite(net: keras.Model, path: Path) -> int:
    """Start a mapper with new heads (a radius mapper) from a shipped class mapper: every weighted op of the file
    but its last (the class head) sets the network's layer of the same place, checked by shape; the new heads keep
    their fresh weights. Returns how many layers were set."""
    layers, body = _weighted_layers(net), tflite_weights(path)[:-1]
    if len(body) >= len(layers):
        raise ValueError(f"{path}: {len(body)} body layers leave no head for {net.name}'s {len(layers)} layers")
    _set_weights(layers, body, path, "body")
    return len(body)


def load_from_tflite(net: keras.Model, path: Path) -> keras.Model:
    """Set a freshly built network's weights from a float TFLite export of the same architecture; raises
    ValueError when the layers do not match or the outputs differ."""
    layers, weights = _weighted_layers(net), tflite_weights(path)
    if len(layers) != len(weights):
        raise ValueError(f"{path} has {len(weights)} weighted ops but {net.name} has {len(layers)} layers: "
                         f"not the same architecture")
    _set_weights(layers, weights, path, "architecture")
    model = TfliteModel(path, threads=2)
    x = np.random.default_rng(0).random(model.input_shape, np.float32)
    gap = float(np.abs(np.asarray(net(x, training=False)) - model(x)).max())
    if gap > TOLERANCE:
        raise ValueError(f"{path}: the rebuilt {net.name} differs from the TFLite model by {gap:.2g}")
    return net
