"""THE training step (train_one_epoch with hooks) and evaluate: against hand-written references."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from strucspars_viz import StructuredSparsifier
from strucspars_viz.errors import NonFiniteLossError
from strucspars_viz.training import evaluate, train_one_epoch


def _data(n=24, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return TensorDataset(x, y)


def _cnn(classes=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes))


def test_one_epoch_with_regulariser_hook_equals_the_explicit_loop():
    """loss.backward(); sparsifier.regularize(lam); opt.step(); enforce after the step -- written out."""
    data = _data()
    model_a, model_b = _cnn(), _cnn()
    sp_a, sp_b = StructuredSparsifier(model_a, include=["2"]), StructuredSparsifier(model_b, include=["2"])
    for sp in (sp_a, sp_b):
        sp.update_permutations(iters=2)
        sp.update_groups(0.5)
    assert sp_a.groups()["2"] > 1  # the penalty is not trivially zero
    opt_a = torch.optim.SGD(model_a.parameters(), lr=0.1, momentum=0.9)
    opt_b = torch.optim.SGD(model_b.parameters(), lr=0.1, momentum=0.9)
    lam = 1e-2
    calls = []
    stats = train_one_epoch(model_a, DataLoader(data, batch_size=8), opt_a,
                            after_backward=lambda step: (calls.append(("b", step)), sp_a.regularize(lam)),
                            after_step=lambda step: calls.append(("s", step)))
    model_b.train()
    for x, y in DataLoader(data, batch_size=8):
        opt_b.zero_grad(set_to_none=True)
        F.cross_entropy(model_b(x), y).backward()
        sp_b.regularize(lam)
        opt_b.step()
    assert calls == [("b", 0), ("s", 0), ("b", 1), ("s", 1), ("b", 2), ("s", 2)]
    for (name, pa), pb in zip(model_a.named_parameters(), model_b.parameters()):
        assert torch.equal(pa, pb), name
    assert stats["seen"] == len(data)


def test_after_backward_sees_gradients_and_after_step_sees_updated_weights():
    model = _cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    w = model[-1].weight
    seen = {}

    def after_backward(step):
        seen["grad"] = w.grad.clone()
        seen["before"] = w.detach().clone()

    def after_step(step):
        seen["after"] = w.detach().clone()

    train_one_epoch(model, DataLoader(_data(8), batch_size=8), opt, after_backward=after_backward,
                    after_step=after_step)
    assert torch.allclose(seen["after"], seen["before"] - 0.5 * seen["grad"])


def test_returned_loss_and_accuracy_are_the_dataset_means():
    """With lr = 0 the weights do not move: the epoch's numbers must be the plain means."""
    data = _data(30)
    model = _cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    stats = train_one_epoch(model, DataLoader(data, batch_size=7), opt)  # batches of 7, the last one short
    with torch.no_grad():
        model.train()  # BN-free model: train/eval identical
        logits = model(data.tensors[0])
    assert stats["train_loss"] == pytest.approx(float(F.cross_entropy(logits, data.tensors[1])), rel=1e-6)
    assert stats["train_top1"] == pytest.approx(float((logits.argmax(1) == data.tensors[1]).double().mean()))


def test_evaluate_matches_brute_force_top1_top5_and_restores_mode():
    torch.manual_seed(1)
    classes = 7
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, classes))
    data = _data(40, classes)
    model.train()
    res = evaluate(model, DataLoader(data, batch_size=16))
    assert model.training
    with torch.no_grad():
        logits = model(data.tensors[0])
    y = data.tensors[1]
    ranks = (logits > logits.gather(1, y[:, None])).sum(1)  # how many classes score above the true one
    assert res["top1"] == pytest.approx(float((ranks == 0).double().mean()))
    assert res["top5"] == pytest.approx(float((ranks < 5).double().mean()))
    assert res["loss"] == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-6)


class _NanAt(nn.Module):
    """A model whose output becomes NaN from the ``bad``-th forward pass on (0-based)."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.lin = nn.Linear(3 * 8 * 8, 3)
        self.calls, self.bad = 0, bad

    def forward(self, x):
        out = self.lin(x.flatten(1))
        self.calls += 1
        return out * float("nan") if self.calls > self.bad else out


@pytest.mark.parametrize("check_every", [1, 4])
def test_non_finite_loss_raises_naming_epoch_and_iteration(check_every):
    """check_every=1: the CPU path; 4: the batched (CUDA) path still names the exact iteration."""
    model = _NanAt(bad=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(NonFiniteLossError, match=r"epoch 5, iteration 3 of 6.*learning rate 0\.1"):
        train_one_epoch(model, DataLoader(_data(24), batch_size=4), opt, epoch=5, check_every=check_every)
    # the batched check stopped at the end of its window, not later
    assert model.calls == (3 if check_every == 1 else 4)


def test_a_diverging_learning_rate_is_caught():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=1e38)  # the weights overflow float32 within a few steps
    with pytest.raises(NonFiniteLossError, match="diverged"):
        for epoch in range(1, 4):
            train_one_epoch(model, DataLoader(_data(32), batch_size=4), opt, epoch=epoch)


def test_channels_last_gives_the_same_step():
    data = _data(16)
    a, b = _cnn(), copy.deepcopy(_cnn())
    b = b.to(memory_format=torch.channels_last)
    for m, cl in ((a, False), (b, True)):
        train_one_epoch(m, DataLoader(data, batch_size=8), torch.optim.SGD(m.parameters(), lr=0.1), channels_last=cl)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.allclose(pa, pb, atol=1e-5)
