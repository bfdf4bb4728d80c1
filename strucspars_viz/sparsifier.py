"""The one stateful object: which convs are sparsified and their ``P``, ``Q``, ``G`` (SPEC §2-§5).

``StructuredSparsifier`` walks a model, keeps one :class:`LayerState` per sparsified conv
(keyed by module name in ``sparsifier.layers``) and offers the operations of Algorithm 1:
permutation updates, the structured L1 regulariser on gradients, the grouping criterion,
the bisection to a target sparsity, and masking. Everything it knows round-trips through
``state_dict()``.
"""
from __future__ import annotations

import warnings
from typing import Iterable, NamedTuple

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .birkhoff import Method
from .hierarchy import check_decay, check_groups, groups_for, kept_fractions, model_sparsity, penalty_matrix
from .layers import LayerState, sparsifiable_convs
from .norms import as_matrix, norm_matrix
from .permutation import HistoryStep, check_permutation, learn_permutations

__all__ = ["LayerState", "StructuredSparsifier", "TargetResult", "sparsifiable_convs"]


class TargetResult(NamedTuple):
    keep: float
    sparsity: float
    groups: dict[str, int]
    exact: bool  # True when one global ``keep`` landed inside [target, target + tol]
    #: ``{layer: {G: f(G)}}`` on which the target was reached (before any masking)
    fractions: dict[str, dict[int, float]] | None = None


class StructuredSparsifier:
    """Structured sparsification state for a model (SPEC §2-§5).

    Parameters
    ----------
    model : the network; its sparsified convs are modified in place by :meth:`apply_masks`.
    decay : damping of finer hierarchy levels in ``R`` and ``R_g`` (SPEC §1).
    keep : default fraction ``p`` of L1 mass the grouping criterion keeps (SPEC §3).
    include, exclude : ``fnmatch`` patterns on module names (see :func:`sparsifiable_convs`).
    """

    def __init__(
        self,
        model: nn.Module,
        decay: float = 0.5,
        keep: float = 0.9,
        include: str | Iterable[str] | None = None,
        exclude: str | Iterable[str] | None = None,
    ) -> None:
        check_decay(decay)
        if not 0.0 <= keep <= 1.0:
            raise ValueError(f"keep must lie in [0, 1], got {keep}")
        self.model = model
        self.decay = float(decay)
        self.keep = float(keep)
        self.modules, self.skipped = sparsifiable_convs(model, include, exclude)
        self.layers: dict[str, LayerState] = {
            name: LayerState(
                name,
                conv.out_channels,
                conv.in_channels,
                int(np.prod(conv.kernel_size)),
                np.arange(conv.out_channels, dtype=np.int64),
                np.arange(conv.in_channels, dtype=np.int64),
            )
            for name, conv in self.modules.items()
        }
        self.masked = False
        self._penalties: dict[str, torch.Tensor] = {}
        self._masks: dict[str, torch.Tensor] = {}
        self._hooks: list = []

    # ------------------------------------------------------------------ norms and permutations
    def norm_matrices(self, permuted: bool = False) -> dict[str, np.ndarray]:
        """``S`` (or ``S' = S[P][:, Q]``) of every sparsified layer, as float64 arrays."""
        out = {}
        for name, st in self.layers.items():
            s = as_matrix(norm_matrix(self.modules[name]))
            out[name] = s[st.row_perm][:, st.col_perm] if permuted else s
        return out

    def _invalidate(self) -> None:
        self._penalties.clear()
        self._masks.clear()

    def update_permutations(
        self, iters: int = 10, method: Method = "lsa", *, progress: bool = False, **kwargs
    ) -> dict[str, list[HistoryStep]]:
        """Run ``iters`` P/Q rounds on every layer (SPEC §2).

        The first call on a layer uses :func:`learn_permutations`' default multi-start search; later
        calls warm-start from the current ``(P, Q)``. Layers with an odd channel count are skipped.
        Returns each layer's history.
        """
        if self.masked:
            raise RuntimeError("permutations are frozen once masks are applied (finetuning phase)")
        histories = {}
        first_init = kwargs.pop("init", None)
        items = [(n, st) for n, st in self.layers.items() if st.max_groups > 1]
        for name, st in tqdm(items, desc="P/Q update", disable=not progress, leave=False):
            init = (st.row_perm, st.col_perm) if st.learned else first_init
            p, q, hist = learn_permutations(
                norm_matrix(self.modules[name]), iters, method, self.decay, init=init, **kwargs
            )
            st.row_perm, st.col_perm, st.learned = p, q, True
            histories[name] = hist
        self._invalidate()
        return histories

    def set_permutations(self, perms: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Replace ``(P, Q)`` of the named layers (the ablations of SPEC §7).

        Inverses are derived from ``P``/``Q`` on every use, so replacing them can never leave a stale
        inverse behind (SPEC §9's SHUFFLENET defect).
        """
        checked = {}
        for name, (p, q) in perms.items():
            st = self._layer(name)
            checked[name] = (check_permutation(p, st.cout, f"layer {name}: row_perm"),
                             check_permutation(q, st.cin, f"layer {name}: col_perm"))
        for name, (p, q) in checked.items():
            st = self.layers[name]
            st.row_perm, st.col_perm, st.learned = p, q, True
        self._invalidate()
        if self.masked:
            self.apply_masks()

    def _layer(self, name: str) -> LayerState:
        try:
            return self.layers[name]
        except KeyError:
            raise KeyError(f"{name!r} is not a sparsified layer; layers: {list(self.layers)}") from None

    # ------------------------------------------------------------------ regulariser
    def penalty(self, name: str, *, dtype=torch.float32, device=None) -> torch.Tensor:
        """``R_g[P_inv][:, Q_inv]`` for the layer's current ``G``, shaped ``(Cout, Cin, 1, 1)``; cached."""
        st = self._layer(name)
        cached = self._penalties.get(name)
        if cached is None or cached.dtype != dtype or cached.device != torch.device(device or "cpu"):
            r = torch.as_tensor(penalty_matrix(st.cout, st.cin, st.groups, self.decay), dtype=dtype, device=device)
            cached = st.unpermute(r)[:, :, None, None].contiguous()
            self._penalties[name] = cached
        return cached

    @torch.no_grad()
    def regularize(self, lam: float) -> None:
        """Add the structured L1 subgradient to the gradients (call after ``backward()``; SPEC §4).

        .. math:: \\nabla_W \\mathrel{+}= \\lambda \\, \\mathrm{sign}(W) \\odot R_g[P^{-1}][:, Q^{-1}]

        i.e. the gradient of ``lam * sum_ij R_g[P_inv[i], Q_inv[j]] |W_ij|_1``.
        """
        if lam == 0:
            return
        for name, st in self.layers.items():
            w = self.modules[name].weight
            if w.grad is None or st.max_groups == 1:
                continue
            pen = self.penalty(name, dtype=w.dtype, device=w.device)
            w.grad.addcmul_(torch.sign(w), pen, value=float(lam))

    def regularization_loss(self) -> torch.Tensor:
        """``sum_l sum_ij R_g[P_inv[i], Q_inv[j]] * |W_ij|_1`` (for logging; differentiable)."""
        terms = [
            (self.penalty(n, dtype=self.modules[n].weight.dtype, device=self.modules[n].weight.device)
             * self.modules[n].weight.abs()).sum()
            for n in self.layers
        ]
        return torch.stack(terms).sum()

    # ------------------------------------------------------------------ groups and sparsity
    def kept_fractions(self) -> dict[str, dict[int, float]]:
        """``{layer: {G: f(G)}}`` on the permuted norm matrices."""
        return {n: kept_fractions(s) for n, s in self.norm_matrices(permuted=True).items()}

    def update_groups(self, keep: float | None = None) -> dict[str, int]:
        """Set each layer's ``G`` by the criterion ``f(G) >= keep`` (SPEC §3); returns ``{layer: G}``."""
        if self.masked:
            raise RuntimeError("group counts are frozen once masks are applied (finetuning phase)")
        keep = self.keep if keep is None else float(keep)
        for name, s in self.norm_matrices(permuted=True).items():
            self.layers[name].groups = groups_for(s, keep)
        self._invalidate()
        return self.groups()

    def groups(self) -> dict[str, int]:
        return {n: st.groups for n, st in self.layers.items()}

    def set_groups(self, groups: dict[str, int]) -> None:
        """Set ``G`` of the named layers directly (a search other than the criterion, e.g. a
        latency budget). Each ``G`` must be a power of two dividing both channel counts."""
        if self.masked:
            raise RuntimeError("group counts are frozen once masks are applied (finetuning phase)")
        for name, g in groups.items():
            st = self._layer(name)
            try:
                check_groups(st.cout, st.cin, g)
            except ValueError as err:
                raise ValueError(f"layer {name}: {err}") from None
        for name, g in groups.items():
            self.layers[name].groups = int(g)
        self._invalidate()

    def sparsity(self, groups: dict[str, int] | None = None) -> float:
        """Model sparsity ``1 - sum n_l / G_l / sum n_l`` over the sparsified convs (SPEC §3)."""
        groups = self.groups() if groups is None else groups
        return model_sparsity([st.size for st in self.layers.values()], [groups[n] for n in self.layers])

    def reach_target(self, target: float, tol: float = 0.01) -> TargetResult:
        """Choose one global ``keep`` so that model sparsity lands in ``[target, target + tol]`` (SPEC §5).

        Sparsity is a non-increasing step function of ``keep`` whose steps sit at the kept
        fractions ``f_l(G)``; we bisect over those breakpoints for the largest ``keep`` whose
        sparsity is ``>= target``. If that step overshoots ``target + tol`` (one layer going from
        ``G`` to ``2G`` can move a small network by several percent), layers are promoted one at a time
        in the criterion's order, skipping steps that would overshoot, until the window is reached;
        ``exact`` is then False. If no such sequence lands, the overshooting global ``keep`` stays.
        """
        if not 0.0 <= target < 1.0:
            raise ValueError(f"target sparsity must lie in [0, 1), got {target}")
        fractions = self.kept_fractions()
        names = list(self.layers)

        def groups_at(keep: float) -> dict[str, int]:
            return {n: max([g for g, f in fractions[n].items() if f >= keep - 1e-12], default=1) for n in names}

        ceiling = self.sparsity({n: self.layers[n].max_groups for n in names})
        if ceiling < target:
            raise ValueError(f"target sparsity {target:.3f} is unreachable: every layer at its maximum groups gives {ceiling:.4f}")
        breakpoints = sorted({f for fr in fractions.values() for f in fr.values()} | {0.0})
        # sparsity(breakpoints[i]) is non-increasing in i: find the last i with sparsity >= target.
        lo, hi = 0, len(breakpoints) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.sparsity(groups_at(breakpoints[mid])) >= target:
                lo = mid
            else:
                hi = mid - 1
        keep = breakpoints[lo]
        groups = groups_at(keep)
        exact = self.sparsity(groups) <= target + tol
        if not exact and lo + 1 < len(breakpoints):
            landed = self._promote_into_window(groups_at(breakpoints[lo + 1]), fractions, target, tol)
            if landed is not None:
                groups = landed
            warnings.warn(
                f"no single keep lands sparsity in [{target}, {target + tol}]; "
                + (f"promoted layers singly to {self.sparsity(groups):.4f}" if landed is not None
                   else f"closest reachable is {self.sparsity(groups):.4f}"),
                RuntimeWarning,
                stacklevel=2,
            )
        for n, g in groups.items():
            self.layers[n].groups = g
        self.keep = keep
        self._invalidate()
        return TargetResult(keep, self.sparsity(groups), dict(groups), exact, fractions)

    def _promote_into_window(
        self, groups: dict[str, int], fractions: dict[str, dict[int, float]], target: float, tol: float
    ) -> dict[str, int] | None:
        """Single-layer promotions ``G -> 2G`` in decreasing kept fraction (ties: smaller layer
        first), skipping any that would pass ``target + tol``; ``None`` if the window is missed."""
        groups = dict(groups)
        candidates = sorted(
            ((f, self.layers[n].size, n, g) for n, fr in fractions.items() for g, f in fr.items() if g > groups[n]),
            key=lambda t: (-t[0], t[1], t[3]),
        )
        blocked: set[str] = set()
        for _, _, name, g in candidates:
            if self.sparsity(groups) >= target:
                break
            if name in blocked or g != 2 * groups[name]:
                continue
            trial = {**groups, name: g}
            if self.sparsity(trial) > target + tol:
                blocked.add(name)  # its finer levels would overshoot even more
                continue
            groups = trial
        return groups if target <= self.sparsity(groups) <= target + tol else None

    # ------------------------------------------------------------------ masking
    def mask(self, name: str) -> torch.Tensor:
        """Cached ``U_G[P_inv][:, Q_inv]`` for a layer, shaped ``(Cout, Cin, 1, 1)`` like its weight."""
        w = self.modules[name].weight
        cached = self._masks.get(name)
        if cached is None or cached.device != w.device or cached.dtype != w.dtype:
            cached = self.layers[name].mask(dtype=w.dtype, device=w.device)[:, :, None, None].contiguous()
            self._masks[name] = cached
        return cached

    @torch.no_grad()
    def apply_masks(self) -> None:
        """``W <- W * U_G[P_inv][:, Q_inv]`` and freeze ``P, Q, G`` (SPEC §5).

        Also installs gradient hooks that zero the gradient of masked weights, so momentum buffers
        and weight decay never move them: masked weights stay exactly zero under SGD or Adam(W).
        Call :meth:`enforce_masks` after an optimiser step for optimisers with other coupling.
        """
        self.masked = True
        self._masks.clear()
        self.enforce_masks()
        for h in self._hooks:
            h.remove()
        self._hooks = [
            self.modules[n].weight.register_hook(lambda g, n=n: g * self.mask(n))
            for n, st in self.layers.items()
            if st.groups > 1
        ]

    @torch.no_grad()
    def enforce_masks(self) -> None:
        """Re-multiply masked weights by their mask (idempotent)."""
        for name, st in self.layers.items():
            if st.groups > 1:
                self.modules[name].weight.mul_(self.mask(name))

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict:
        """Plain tensors and primitives only (loads with ``torch.load(..., weights_only=True)``).

        ``convs`` lists every conv of the model with its ``[Cout, Cin]``, sparsified or not, so that
        :func:`~strucspars_viz.export.compress` can tell a state made for another architecture.
        """
        return {
            "decay": self.decay,
            "keep": self.keep,
            "masked": self.masked,
            "convs": {n: [m.out_channels, m.in_channels] for n, m in self.model.named_modules()
                      if isinstance(m, nn.Conv2d)},
            "layers": {
                n: {
                    "row_perm": torch.as_tensor(st.row_perm),
                    "col_perm": torch.as_tensor(st.col_perm),
                    "groups": st.groups,
                    "learned": st.learned,
                }
                for n, st in self.layers.items()
            },
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore ``P, Q, G`` (and masks if the state was masked). Everything is validated before
        anything changes: every layer present, permutations of the right size without repeats,
        ``G`` a power of two dividing both channel counts."""
        if not isinstance(state, dict) or not isinstance(state.get("layers"), dict):
            raise ValueError("sparsifier state must be a dict with a 'layers' dict (StructuredSparsifier.state_dict())")
        layers = state["layers"]
        if set(layers) != set(self.layers):
            raise ValueError(
                f"sparsifier state does not match the model: missing {sorted(set(self.layers) - set(layers))}, "
                f"unexpected {sorted(set(layers) - set(self.layers))}"
            )
        parsed = {}
        for name, entry in layers.items():
            st = self.layers[name]
            p = np.asarray(torch.as_tensor(entry["row_perm"]).cpu(), dtype=np.int64)
            q = np.asarray(torch.as_tensor(entry["col_perm"]).cpu(), dtype=np.int64)
            if p.shape != (st.cout,) or q.shape != (st.cin,):
                raise ValueError(f"layer {name}: saved permutations have sizes {p.shape}, {q.shape}; the conv is {st.cout}x{st.cin}")
            for what, perm, n in (("row_perm", p, st.cout), ("col_perm", q, st.cin)):
                check_permutation(perm, n, f"layer {name}: {what}")
            try:
                check_groups(st.cout, st.cin, entry["groups"])
            except (ValueError, TypeError) as err:
                raise ValueError(f"layer {name}: saved {err}") from None
            parsed[name] = (p, q, int(entry["groups"]), bool(entry.get("learned", True)))
        for name, (p, q, g, learned) in parsed.items():
            st = self.layers[name]
            st.row_perm, st.col_perm, st.groups, st.learned = p, q, g, learned
        self.decay = float(state.get("decay", self.decay))
        self.keep = float(state.get("keep", self.keep))
        self._invalidate()
        if state.get("masked", False):
            self.apply_masks()
        else:
            self.masked = False

    def summary(self) -> list[dict]:
        """One row per layer: name, shape, kernel, groups, max groups, parameter count before/after."""
        return [
            {
                "layer": n,
                "cout": st.cout,
                "cin": st.cin,
                "kernel": st.kernel,
                "groups": st.groups,
                "max_groups": st.max_groups,
                "params": st.size,
                "params_grouped": st.size // st.groups,
            }
            for n, st in self.layers.items()
        ]
