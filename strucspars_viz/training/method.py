"""What Algorithm 1 adds to plain training, as one strategy object per ``--mode``.

The trainer (:mod:`.trainer`) runs the same phases in both modes; everything that differs between
StrucSpars and the dense baseline (same model, data, seed and schedule, no sparsification) is here,
so the trainer has no mode ``if``:

* :class:`StrucSpars` -- P/Q rounds (SPEC §2), ``update_groups(keep)`` (SPEC §3), the structured L1
  subgradient after every backward and the lambda controller (SPEC §4), ``reach_target`` + masks
  (SPEC §5), compression into grouped convs with an equivalence check (SPEC §6);
* :class:`Dense` -- all of that switched off: ``lam = 0``, sparsity 0, the dense model is exported.
"""
from __future__ import annotations

import copy
import warnings
from typing import TYPE_CHECKING, Any, Callable

import torch

from ..controller import LambdaController
from ..counting import count_params_macs
from ..export import EQUIVALENCE_TOL, compress_and_check

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer

__all__ = ["Dense", "EQUIVALENCE_TOL", "StrucSpars", "make_method"]


class StrucSpars:
    """Algorithm 1's additions (see the module docstring). ``t`` is the owning :class:`Trainer`."""

    sparsifies = True

    def __init__(self, t: "Trainer") -> None:
        self.t = t
        cfg = t.cfg
        self.controller = LambdaController(cfg.target, cfg.sparsify_epochs, cfg.warmup_epochs, cfg.lam0, cfg.dlam)

    # ------------------------------------------------------------------ P, Q, G on rank 0, then broadcast
    def _sync(self) -> None:
        t = self.t
        state = t.ctx.broadcast(t.sparsifier.state_dict() if t.ctx.is_main else None)
        if not t.ctx.is_main:
            t.sparsifier.load_state_dict(state)

    def update_permutations(self, rounds: int) -> None:
        t = self.t
        if rounds > 0:
            if t.ctx.is_main:
                init = None if t.cfg.pq_init == "best" else t.cfg.pq_init
                t.sparsifier.update_permutations(rounds, t.cfg.pq_method, progress=t.progress, init=init)
            self._sync()

    def _update_groups(self) -> None:
        if self.t.ctx.is_main:
            self.t.sparsifier.update_groups(self.t.cfg.keep)
        self._sync()

    def initial(self) -> None:
        """Phase init: ``initial_rounds`` P/Q rounds on the fresh model, then the criterion's G."""
        self.update_permutations(self.t.cfg.initial_rounds)
        self._update_groups()

    # ------------------------------------------------------------------ sparsification epochs
    @property
    def lam(self) -> float:
        return self.controller.lam

    def sparsify_hooks(self) -> tuple[Callable[[int], None] | None, Callable[[int], None] | None]:
        """``(after_backward, after_step)`` of a sparsification epoch: the regulariser with this
        epoch's ``lam`` (gradients are already all-reduced under DDP), and ImageNet's P/Q rounds
        every ``iter_rounds_every`` steps."""
        sp, lam, cfg = self.t.sparsifier, self.controller.lam, self.t.cfg
        every = cfg.iter_rounds_every

        def after_step(step: int) -> None:
            if (step + 1) % every == 0:
                self.update_permutations(cfg.iter_rounds)

        return (lambda step: sp.regularize(lam)), (after_step if every else None)

    def end_sparsify_epoch(self) -> None:
        """``epoch_rounds`` P/Q rounds, ``update_groups(keep)``, one controller step (SPEC §2-§4)."""
        self.update_permutations(self.t.cfg.epoch_rounds)
        self._update_groups()
        self.controller.step(self.t.sparsifier.sparsity())

    def sparsity(self) -> float:
        return self.t.sparsifier.sparsity()

    # ------------------------------------------------------------------ to_finetune
    def reach_target_and_mask(self) -> dict:
        """Bisect ``keep`` to the target (SPEC §5) on rank 0, broadcast, apply masks everywhere."""
        t, target = self.t, self.t.cfg.target
        info: dict[str, Any] = {}
        if t.ctx.is_main:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = t.sparsifier.reach_target(target)
            info = {"keep": res.keep, "sparsity": res.sparsity, "exact": bool(res.exact),
                    "in_window": bool(target <= res.sparsity <= target + 0.01),
                    "warnings": [str(w.message) for w in caught]}
        self._sync()
        info = t.ctx.broadcast(info)
        t.sparsifier.apply_masks()
        return info

    # ------------------------------------------------------------------ export
    def state(self) -> dict:
        return {"controller": self.controller.state_dict()}

    def load_state(self, state: dict) -> None:
        self.controller.load_state_dict(state["controller"])

    def export(self, example: torch.Tensor) -> tuple[torch.nn.Module, dict]:
        """Compress the finetuned masked model (SPEC §6) and check it against the masked model.

        Returns the compressed model (CPU) and the summary entries. Equivalence is judged NaN-safe
        by :func:`~strucspars_viz.export.compress_and_check`: a non-finite difference is *not*
        equivalent (``nan >= tol`` is False, so the old "differs" check passed a diverged model).
        """
        t = self.t
        cpu_model = copy.deepcopy(t.model).to("cpu", memory_format=torch.contiguous_format).float()
        report = compress_and_check(cpu_model, t.sparsifier.state_dict(), example, tol=EQUIVALENCE_TOL)
        masked_zero = all(bool((m.weight[t.sparsifier.mask(n).expand_as(m.weight) == 0] == 0).all())
                          for n, m in t.sparsifier.modules.items() if t.sparsifier.layers[n].groups > 1)
        if not report.equivalent:
            warnings.warn(f"compressed model differs from the masked model by {report.max_abs_diff:.3g} "
                          f"(required < {EQUIVALENCE_TOL} x max(1, max |output|))", RuntimeWarning, stacklevel=2)
        entries = {
            "target": t.cfg.target, "sparsity": t.sparsifier.sparsity(), "keep": t.sparsifier.keep,
            "params": report.after.params, "macs": report.after.macs,
            "equivalence_max_diff": report.max_abs_diff, "equivalence_rel_diff": report.rel_diff,
            "equivalence_ok": report.equivalent, "masked_weights_exactly_zero": masked_zero,
            "groups": t.sparsifier.groups(), "layers": t.sparsifier.summary(),
            "lambda_history": self.controller.history,
        }
        return report.compressed, entries

    def sparsifier_state(self) -> dict | None:
        return self.t.sparsifier.state_dict()


class Dense:
    """The baseline: same phases and schedule, nothing sparsified (``lam = 0``, no P/Q, no masks)."""

    sparsifies = False
    lam = 0.0

    def __init__(self, t: "Trainer") -> None:
        self.t = t

    def initial(self) -> None:
        pass

    def sparsify_hooks(self):
        """No regulariser, except Network Slimming's L1 on BN scales when ``bn_l1 > 0``:
        ``grad(gamma) += bn_l1 * sign(gamma)`` after every backward."""
        strength = float(self.t.cfg.bn_l1)
        if not strength:
            return None, None
        bns = [m for m in self.t.model.modules() if isinstance(m, torch.nn.BatchNorm2d) and m.weight is not None]

        @torch.no_grad()
        def after_backward(step: int) -> None:
            for bn in bns:
                if bn.weight.grad is not None:
                    bn.weight.grad.add_(torch.sign(bn.weight), alpha=strength)

        return after_backward, None

    def end_sparsify_epoch(self) -> None:
        pass

    def sparsity(self) -> float:
        return 0.0

    def reach_target_and_mask(self) -> dict:
        return {}

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass

    def export(self, example: torch.Tensor) -> tuple[torch.nn.Module, dict]:
        cost = count_params_macs(self.t.model, self.t.data.input_size)
        return copy.deepcopy(self.t.model).cpu(), {"params": cost.params, "macs": cost.macs}

    def sparsifier_state(self) -> dict | None:
        return None


def make_method(t: "Trainer") -> StrucSpars | Dense:
    return StrucSpars(t) if t.cfg.mode == "strucspars" else Dense(t)
