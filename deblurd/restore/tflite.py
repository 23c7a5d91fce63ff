"""One TFLite model with float32 in and out, whatever runtime is installed: the daemon, export checks and the
benchmark all call models through it, so quantising int8 input and dequantising output is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deblurd.restore.manifest import PackError


def _litert() -> Any:
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter


def _tflite_runtime() -> Any:
    from tflite_runtime.interpreter import Interpreter

    return Interpreter


def _tensorflow() -> Any:
    import tensorflow as tf

    return tf.lite.Interpreter


RUNTIMES: dict[str, Callable[[], Any]] = {"ai-edge-litert": _litert, "tflite-runtime": _tflite_runtime,
                                          "tensorflow": _tensorflow}


def interpreter_class(runtime: str = "auto") -> tuple[Any, str]:
    """The first importable TFLite interpreter in preference order (or the one named) and its name."""
    names = list(RUNTIMES) if runtime == "auto" else [runtime]
    for name in names:
        try:
            return RUNTIMES[name](), name
        except ImportError:
            continue
    raise PackError(f"no TFLite runtime could be imported (tried {', '.join(names)}): "
                    f"install one with `pip install ai-edge-litert`, or set models.runtime = \"auto\"")


class TfliteModel:
    """One interpreter with float32 in and out; int8 tensors are (de)quantised with their own scale and zero point."""

    def __init__(self, path: Path, interpreter: Any = None, threads: int = 2) -> None:
        """Load a .tflite file with the given interpreter class (default: the first runtime installed)."""
        self.path = Path(path)
        interpreter = interpreter or interpreter_class()[0]
        try:
            self._interp = interpreter(model_path=str(path), num_threads=threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise PackError(f"model file {path} cannot be loaded ({exc}): it is truncated or not a TFLite model; "
                            f"reinstall the models folder") from exc
        self._details()

    def _details(self) -> None:
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]

    @property
    def kernels(self) -> str:
        """'xnnpack' when the default delegate took the graph, else 'builtin': the two round int8 differently, and
        XNNPACK silently stays out where it cannot read the CPU (then int8 runs tens of times slower). 'unknown'
        where the runtime does not list its ops."""
        details = getattr(self._interp, "_get_ops_details", None)
        if details is None:
            return "unknown"
        ops: list[dict[str, Any]] = details()
        return "xnnpack" if any(op["op_name"] == "DELEGATE" for op in ops) else "builtin"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self._in["shape"])

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self._out["shape"])

    def resize(self, shape: tuple[int, ...]) -> None:
        """Change the input shape (generators are fully convolutional, so any tile size works)."""
        self._interp.resize_tensor_input(self._in["index"], list(shape))
        self._interp.allocate_tensors()
        self._details()

    def set_input(self, x: np.ndarray) -> None:
        """Quantise a float32 input with the tensor's own scale and zero point (when it is integer) and set it."""
        dtype = self._in["dtype"]
        scale, zero = self._in["quantization"]
        if dtype != np.float32 and scale:
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        self._interp.set_tensor(self._in["index"], np.ascontiguousarray(x, dtype=dtype))

    def invoke(self) -> None:
        """Run the model on the input set last (what a benchmark times)."""
        self._interp.invoke()

    def output(self) -> np.ndarray:
        """The output as float32, dequantised when it is integer."""
        y = self._interp.get_tensor(self._out["index"])
        scale, zero = self._out["quantization"]
        if self._out["dtype"] != np.float32 and scale:
            return (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.set_input(x)
        self.invoke()
        return self.output()
