"""One layer's state, epoch by epoch: the trace that the trainer, the demo and notebook 03 record
and :func:`strucspars_viz.viz.animate_training` draws.

Per entry ``e``: the layer's weight-norm matrix ``S_e`` (in the weight's own order, SPEC §1), its
learned permutations ``P_e, Q_e`` and group count ``G_e``, the ``lam`` used in that epoch, the model
sparsity, the epoch number and the phase (``init``, ``sparsify``, ``masked``, ``finetune``, or a
label of the caller's choosing). Saved as ``layer_norms.npz`` in a run folder.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ["LayerTrace"]

#: arrays of a trace file; ``lam`` and ``sparsity`` are absent from files written before the trace
#: was unified (the committed results): :meth:`LayerTrace.load` then takes them from ``metrics.jsonl``.
_KEYS = ("layer", "norms", "row_perm", "col_perm", "groups", "lam", "sparsity", "epoch", "phase", "decay")


@dataclass
class LayerTrace:
    """Per-epoch trace of one sparsified conv (see the module docstring)."""

    layer: str
    decay: float = 0.5
    norms: list[np.ndarray] = field(default_factory=list)
    row_perm: list[np.ndarray] = field(default_factory=list)
    col_perm: list[np.ndarray] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    lam: list[float] = field(default_factory=list)
    sparsity: list[float] = field(default_factory=list)
    epoch: list[int] = field(default_factory=list)
    phase: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.norms)

    def record(self, sparsifier, *, epoch: int, phase: str, lam: float, sparsity: float | None = None) -> None:
        """Append the layer's current ``S, P, Q, G`` from ``sparsifier`` (a StructuredSparsifier);
        ``sparsity`` defaults to ``sparsifier.sparsity()``."""
        if self.layer not in sparsifier.layers:
            raise ValueError(f"traced layer {self.layer!r} is not a sparsified layer; layers: {list(sparsifier.layers)}")
        st = sparsifier.layers[self.layer]
        from .norms import as_matrix, norm_matrix

        s = as_matrix(norm_matrix(sparsifier.modules[self.layer]))
        self.norms.append(s.astype(np.float32))
        self.row_perm.append(np.asarray(st.row_perm, dtype=np.int64).copy())
        self.col_perm.append(np.asarray(st.col_perm, dtype=np.int64).copy())
        self.groups.append(int(st.groups))
        self.lam.append(float(lam))
        self.sparsity.append(float(sparsifier.sparsity() if sparsity is None else sparsity))
        self.epoch.append(int(epoch))
        self.phase.append(str(phase))

    def truncate(self, n: int) -> None:
        """Keep the first ``n`` entries (a resumed run re-records the later ones)."""
        if not 0 <= n <= len(self):
            raise ValueError(f"cannot truncate a trace of {len(self)} entries to {n}")
        for name in ("norms", "row_perm", "col_perm", "groups", "lam", "sparsity", "epoch", "phase"):
            setattr(self, name, getattr(self, name)[:n])

    # ------------------------------------------------------------------ files
    def arrays(self) -> dict[str, np.ndarray]:
        if not self.norms:
            raise ValueError(f"trace of {self.layer!r} is empty: record at least one entry first")
        return {"layer": np.array(self.layer), "norms": np.stack(self.norms), "row_perm": np.stack(self.row_perm),
                "col_perm": np.stack(self.col_perm), "groups": np.array(self.groups, dtype=np.int64),
                "lam": np.array(self.lam, dtype=np.float64), "sparsity": np.array(self.sparsity, dtype=np.float64),
                "epoch": np.array(self.epoch, dtype=np.int64), "phase": np.array(self.phase),
                "decay": np.array(float(self.decay))}

    def save(self, path: str | Path) -> Path:
        """Write the trace atomically as ``.npz`` (no pickled objects: loads with ``allow_pickle=False``)."""
        from .training.io import save_npz

        path = Path(path)
        save_npz(path, **self.arrays())
        return path

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], records: Sequence[Mapping] | None = None,
                    source: str = "trace") -> "LayerTrace":
        missing = [k for k in ("layer", "norms", "row_perm", "col_perm", "groups", "epoch", "phase") if k not in arrays]
        if missing:
            raise ValueError(f"{source}: not a layer trace, missing arrays {missing} (expected {list(_KEYS)})")
        epochs = [int(e) for e in arrays["epoch"]]
        phases = [str(p) for p in arrays["phase"]]
        if "lam" in arrays and "sparsity" in arrays:
            lam = [float(v) for v in arrays["lam"]]
            sparsity = [float(v) for v in arrays["sparsity"]]
        elif records is not None:
            lam, sparsity = _legacy_lam_sparsity(epochs, phases, records)
        else:
            raise ValueError(f"{source} was written in the old format (no lam / sparsity arrays); "
                             "pass the run's metrics records (LayerTrace.load finds metrics.jsonl beside it)")
        return cls(layer=str(arrays["layer"]), decay=float(arrays["decay"]) if "decay" in arrays else 0.5,
                   norms=list(arrays["norms"]), row_perm=list(arrays["row_perm"]), col_perm=list(arrays["col_perm"]),
                   groups=[int(g) for g in arrays["groups"]], lam=lam, sparsity=sparsity, epoch=epochs, phase=phases)

    @classmethod
    def load(cls, path: str | Path, records: Sequence[Mapping] | None = None) -> "LayerTrace":
        """Read a trace file, or a run folder's ``layer_norms.npz``.

        Old-format files (before ``lam`` and ``sparsity`` were stored) are completed from ``records``
        or, if not given, from ``metrics.jsonl`` in the same folder.
        """
        path = Path(path)
        if path.is_dir():
            path = path / "layer_norms.npz"
        if not path.is_file():
            raise FileNotFoundError(f"layer trace not found: {path}")
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if "lam" not in arrays and records is None and (path.parent / "metrics.jsonl").is_file():
            text = (path.parent / "metrics.jsonl").read_text()
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        return cls.from_arrays(arrays, records, source=str(path))

    # ------------------------------------------------------------------ consumers
    def animation_kwargs(self) -> dict:
        """Keyword arguments of :func:`strucspars_viz.viz.animate_training` (add ``keep`` etc.)."""
        return dict(norm_matrices=list(self.norms), lam=list(self.lam), sparsity=list(self.sparsity),
                    groups=list(self.groups), row_perms=list(self.row_perm), col_perms=list(self.col_perm),
                    layer=self.layer, epochs=list(self.epoch), phases=list(self.phase))


def _legacy_lam_sparsity(epochs: Sequence[int], phases: Sequence[str], records: Sequence[Mapping]):
    """``lam`` and sparsity of old trace entries, matched to metric records by ``global_epoch``
    (the rule of the former ``training_animation_inputs``: ``init`` and ``masked`` entries get
    ``lam = 0``; ``masked`` gets the final sparsity, ``init`` 0)."""
    by_epoch = {int(r["global_epoch"]): r for r in records}
    lam, sparsity = [], []
    for e, ph in zip(epochs, phases):
        r = by_epoch.get(int(e))
        lam.append(0.0 if r is None or ph in ("init", "masked") else float(r["lam"]))
        if ph == "masked":
            sparsity.append(float(records[-1]["sparsity"]) if records else 0.0)
        else:
            sparsity.append(float(r["sparsity"]) if r is not None else 0.0)
    return lam, sparsity
