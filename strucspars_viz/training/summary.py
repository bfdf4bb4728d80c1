"""The export phase of a run: compress (SPEC §6), check, count, evaluate, write the last files.

Writes ``final.pt`` (the finetuned masked dense model + sparsifier state), ``compressed_model.pt``
(the grouped model's state dict + what rebuilds it: ``compress(build_model(...), state=sparsifier)``)
and ``summary.json`` (strict JSON: a non-finite number is written as ``null``, never bare ``NaN``).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from torch.utils.data import DataLoader

from ..counting import count_params_macs
from ..errors import NonFiniteLossError
from ..models import build_model
from .io import torch_save_atomic, write_json

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer

__all__ = ["export_run"]


def export_run(t: "Trainer") -> dict:
    """Summary of a finished run (every rank computes it; rank 0 writes the files)."""
    cfg = t.cfg
    input_size = t.data.input_size
    before = count_params_macs(build_model(cfg.model, num_classes=t.data.num_classes), input_size)
    final_eval = t._evaluate()
    example = next(iter(DataLoader(t.data.test_set, batch_size=min(64, len(t.data.test_set)))))[0]
    compressed, entries = t.method.export(example)
    comp_eval = t._evaluate(compressed.to(t.ctx.device)) if t.method.sparsifies else final_eval
    for name, ev in (("finetuned", final_eval), ("compressed", comp_eval)):
        if not math.isfinite(ev["loss"]):
            raise NonFiniteLossError(f"the {name} model's test loss is {ev['loss']}: the run diverged; "
                                     "lower the learning rate (or lam) and start again")
    dense_eval = t.extra.get("dense_eval", {})
    summary: dict[str, Any] = {
        "name": cfg.name, "model": cfg.model, "dataset": cfg.dataset, "mode": cfg.mode,
        "data": t.data.description, "epochs": {"sparsify": cfg.sparsify_epochs, "finetune": cfg.finetune_epochs},
        "params_dense": before.params, "macs_dense": before.macs, "input_size": list(input_size),
        "world_size": t.ctx.world, "device": str(t.ctx.device),
        "top1_dense_before_masking": dense_eval.get("top1"), "top5_dense_before_masking": dense_eval.get("top5"),
        "top1_masked_before_finetune": t.extra.get("masked_eval", {}).get("top1"),
        "top1_finetuned": final_eval["top1"], "top5_finetuned": final_eval["top5"],
        "top1_compressed": comp_eval["top1"], "top5_compressed": comp_eval["top5"],
        "top1": comp_eval["top1"], "top5": comp_eval["top5"],
        "reach_target": t.extra.get("reach_target"),
        **entries,
    }
    summary["top1_after_phase1"] = dense_eval.get("top1")  # the name dense-mode summaries always had
    summary["params_ratio"] = summary["params"] / before.params
    summary["macs_ratio"] = summary["macs"] / before.macs
    if t.ctx.is_main:
        torch_save_atomic(t._weights_payload(t.model), t.rundir.final)
        payload = t._weights_payload(compressed.cpu())
        torch_save_atomic(payload, t.rundir.compressed)
        write_json(t.rundir.summary, summary)
    return summary
