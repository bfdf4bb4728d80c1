"""Turning a model into a zero-argument forward call for one configuration.

A configuration is (batch, layout, dtype, backend). Layouts: ``nchw`` (contiguous) and ``cl``
(``torch.channels_last``: NHWC in memory). Dtypes: ``fp32`` and ``bf16`` (``torch.autocast``).
Backends: ``eager``; ``compile`` (``torch.compile``, inductor, weights frozen on CPU so BN folds into
convs); ``deploy`` (:func:`strucspars_viz.deploy.optimize_for_inference`, then eager) and
``deploy-compile``; ``onnxruntime`` / ``openvino`` (ONNX export, fp32 NCHW only).
"""
from __future__ import annotations

import contextlib
import copy
import importlib.util
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

__all__ = ["BACKENDS", "DTYPES", "LAYOUTS", "Config", "Unsupported", "check_config", "prepare"]

LAYOUTS = ("nchw", "cl")
DTYPES = ("fp32", "bf16")
BACKENDS = ("eager", "compile", "deploy", "deploy-compile", "onnxruntime", "openvino")


class Unsupported(RuntimeError):
    """This configuration cannot run here (the reason is recorded in the CSV instead of a time)."""


@dataclass(frozen=True)
class Config:
    batch: int
    layout: str = "nchw"
    dtype: str = "fp32"
    backend: str = "eager"

    def as_dict(self) -> dict:
        return {"batch": self.batch, "layout": self.layout, "dtype": self.dtype, "backend": self.backend}


def check_config(cfg: Config) -> Config:
    if not isinstance(cfg.batch, int) or cfg.batch < 1:
        raise ValueError(f"batch size must be a positive integer, got {cfg.batch!r}")
    for what, value, allowed in (("layout", cfg.layout, LAYOUTS), ("dtype", cfg.dtype, DTYPES),
                                 ("backend", cfg.backend, BACKENDS)):
        if value not in allowed:
            raise ValueError(f"unknown {what} {value!r}; choose from {', '.join(allowed)}")
    return cfg


def _memory_format(layout: str) -> torch.memory_format:
    return torch.channels_last if layout == "cl" else torch.contiguous_format


def example_input(input_size, cfg: Config, device: torch.device, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((cfg.batch, *input_size), generator=g)
    return x.to(device).contiguous(memory_format=_memory_format(cfg.layout))


def _autocast(cfg: Config, device: torch.device):
    if cfg.dtype == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _compile(model: nn.Module, device: torch.device) -> nn.Module:
    import torch._inductor.config as inductor_config

    # freezing lets inductor fold BN into conv weights and prepack them (CPU inference)
    inductor_config.freezing = True
    return torch.compile(model)


def _onnx_session(model: nn.Module, x: torch.Tensor, backend: str) -> Callable[[], object]:
    if x.dtype != torch.float32:
        raise Unsupported("ONNX backends are timed in fp32 only")
    runtime = "onnxruntime" if backend == "onnxruntime" else "openvino"
    if importlib.util.find_spec(runtime) is None:
        raise Unsupported(f"{runtime} is not installed (pip install {runtime})")
    tmp = Path(tempfile.mkdtemp(prefix="strucspars-onnx-"))
    path = tmp / "model.onnx"
    xin = x.contiguous()
    with warnings.catch_warnings():
        # the TorchScript exporter (no onnxscript needed) is deprecated in favour of dynamo=True
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (xin,), str(path), dynamo=False, input_names=["x"], output_names=["y"])
    feed = xin.cpu().numpy()
    if backend == "onnxruntime":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = torch.get_num_threads()  # same thread budget as the torch paths
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return lambda: sess.run(None, {"x": feed})
    import openvino as ov

    # OpenVINO's CPU plugin runs bf16 by default where the CPU has it: ask for fp32 like the others
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return lambda: compiled([feed])


def prepare(model: nn.Module, input_size, cfg: Config, device: torch.device) -> Callable[[], object]:
    """A zero-argument callable running one inference forward of ``model`` under ``cfg``.

    The model is copied (the caller's module is never moved or changed), put in eval mode, moved
    to ``device`` and converted to the layout; the input is built once, outside the timed call.
    """
    check_config(cfg)
    if cfg.backend in ("onnxruntime", "openvino") and device.type != "cpu":
        raise Unsupported(f"{cfg.backend} is timed on CPU only")
    if cfg.backend in ("onnxruntime", "openvino") and cfg.dtype != "fp32":
        raise Unsupported(f"{cfg.backend} is timed in fp32 only")
    if cfg.backend in ("onnxruntime", "openvino") and cfg.layout != "nchw":
        raise Unsupported(f"{cfg.backend} takes NCHW input and picks its own internal layout: timed under nchw only")
    m = copy.deepcopy(model).eval().to(device)
    x = example_input(input_size, cfg, device)
    m = m.to(memory_format=_memory_format(cfg.layout))
    if cfg.backend.startswith("deploy"):
        from ..deploy import optimize_for_inference

        m = optimize_for_inference(m, x, device=device.type)
    if cfg.backend in ("onnxruntime", "openvino"):
        return _onnx_session(m, x, cfg.backend)
    if cfg.backend in ("compile", "deploy-compile"):
        m = _compile(m, device)
    def run() -> object:
        with torch.inference_mode(), _autocast(cfg, device):
            return m(x)

    return run
