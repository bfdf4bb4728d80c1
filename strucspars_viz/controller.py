"""The lambda controller of the sparsification phase (SPEC §4): pure Python, no torch.

It lives beside :mod:`strucspars_viz.sparsifier` because it is part of the method (how strong the
structured penalty is, epoch by epoch), not of the training machinery.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

__all__ = ["LambdaController"]


@dataclass
class LambdaController:
    """Schedule of the regularisation strength ``lam`` over the sparsification phase (SPEC §4).

    ``lam = 0`` during the first ``warmup_epochs`` epochs; it is set to ``lam0`` when the warm-up
    ends. After each later epoch ``t`` (1-based) of ``total_epochs``, with ``s_t`` the model
    sparsity at ``keep``, ``gain = s_t - s_(t-1)`` and ``expected = (target - s_t) / (E - t)``:

    * ``s_t < target`` and ``gain < expected``: ``lam += dlam``  (sparsifying too slowly)
    * ``s_t >= target``: ``lam -= dlam``, clipped at 0           (at or past the target)
    * otherwise ``lam`` is kept.

    ``step(s_t)`` is called once after every epoch (warm-up epochs included, so that ``s_(t-1)`` is
    known) and returns the ``lam`` for the next epoch.

    >>> c = LambdaController(target=0.5, total_epochs=10, warmup_epochs=1, lam0=1.0, dlam=0.5)
    >>> c.step(0.0), c.step(0.01), c.step(0.6)   # start; too slow: increase; past the target: decrease
    (1.0, 1.5, 1.0)
    >>> [h["action"] for h in c.history]
    ['start', 'increase', 'decrease']
    """

    target: float
    total_epochs: int
    warmup_epochs: int = 10
    lam0: float = 2e-6
    dlam: float = 2e-6
    lam: float = 0.0
    epochs_done: int = 0
    prev_sparsity: float | None = None
    history: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 <= self.target < 1.0:
            raise ValueError(f"target sparsity must lie in [0, 1), got {self.target}")
        if self.total_epochs < 1 or self.warmup_epochs < 0:
            raise ValueError(f"need total_epochs >= 1 and warmup_epochs >= 0, got {self.total_epochs}, {self.warmup_epochs}")
        if self.lam0 < 0 or self.dlam < 0:
            raise ValueError(f"lam0 and dlam must be >= 0, got {self.lam0}, {self.dlam}")
        if self.epochs_done == 0 and self.warmup_epochs == 0 and self.lam == 0.0:
            self.lam = float(self.lam0)

    def step(self, sparsity: float) -> float:
        t = self.epochs_done + 1
        s = float(sparsity)
        gain = None if self.prev_sparsity is None else s - self.prev_sparsity
        expected = (self.target - s) / max(self.total_epochs - t, 1)
        action = "keep"
        if t < self.warmup_epochs:
            self.lam, action = 0.0, "warmup"
        elif t == self.warmup_epochs:
            self.lam, action = float(self.lam0), "start"
        elif s < self.target and (gain if gain is not None else 0.0) < expected:
            self.lam, action = self.lam + self.dlam, "increase"
        elif s >= self.target:
            self.lam, action = max(self.lam - self.dlam, 0.0), "decrease"
        self.history.append({"epoch": t, "sparsity": s, "gain": gain, "expected": expected,
                             "action": action, "lam": self.lam})
        self.prev_sparsity = s
        self.epochs_done = t
        return self.lam

    def state_dict(self) -> dict:
        return {k: copy.deepcopy(getattr(self, k)) for k in
                ("target", "total_epochs", "warmup_epochs", "lam0", "dlam", "lam", "epochs_done", "prev_sparsity", "history")}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, copy.deepcopy(v))
