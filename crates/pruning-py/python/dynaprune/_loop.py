"""Helpers for the usual loops: a sampler for ``torch.utils.data.DataLoader`` (or any loop that
iterates indices), a dataset wrapper that returns each sample's index, and the weighted mean.

torch is never imported at module load; tensors are recognised by their type's module.
"""

import numpy as np


def _is_torch(x):
    return type(x).__module__.startswith("torch")


def _to_numpy(x):
    """A CPU NumPy view of ``x`` (a detached copy for torch tensors on another device)."""
    if _is_torch(x):
        x = x.detach()
        if x.device.type != "cpu":
            x = x.cpu()
        return x.numpy()
    return np.asarray(x)


def weighted_mean(losses, weights=None):
    """``sum(w * l) / len(l)``: the loss to back-propagate when a plan carries weights (InfoBatch),
    ``mean(l)`` when ``weights`` is None. Works on NumPy arrays and torch tensors (weights are
    moved to the losses' device and dtype)."""
    n = len(losses)
    if n == 0:
        raise ValueError("`losses`: empty batch")
    if weights is None:
        return losses.sum() / n
    if len(weights) != n:
        raise ValueError(f"`weights` has {len(weights)} entries but `losses` has {n}")
    if _is_torch(losses):
        import torch

        w = torch.as_tensor(weights, device=losses.device, dtype=losses.dtype)
    else:
        w = np.asarray(weights, dtype=np.asarray(losses).dtype)
    return (losses * w).sum() / n


class WithIndex:
    """Wraps a map-style dataset so that item ``i`` is ``(i, *dataset[i])`` (or ``(i, dataset[i])``
    when the item is not a tuple): the loop then knows which samples each batch holds."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        item = self.dataset[i]
        if isinstance(item, tuple):
            return (i, *item)
        return (i, item)


class PlanSampler:
    """Yields the current epoch's planned sample indices; usable as a DataLoader ``sampler``
    (DataLoader takes any iterable with ``__len__``, so torch need not be imported here).

    Call ``set_epoch(epoch)`` before each epoch: it plans the epoch. ``loss(losses, indices)``
    feeds the per-sample losses back to the pruner and returns the weighted mean to
    back-propagate. ``lr_factor`` is what to multiply the learning rate by this epoch (KAKURENBO).
    """

    def __init__(self, pruner):
        self.pruner = pruner
        self.plan = None
        self._weight_of = None

    def set_epoch(self, epoch):
        self.plan = self.pruner.plan(epoch)
        if self.plan.weights is not None:
            w = np.ones(self.pruner.n, dtype=np.float32)
            w[self.plan.indices] = self.plan.weights
            self._weight_of = w
        else:
            self._weight_of = None
        return self.plan

    def _need_plan(self):
        if self.plan is None:
            raise RuntimeError("call sampler.set_epoch(epoch) before iterating: it plans the epoch")

    def __iter__(self):
        self._need_plan()
        return iter(self.plan.indices.tolist())

    def __len__(self):
        self._need_plan()
        return len(self.plan)

    @property
    def lr_factor(self):
        self._need_plan()
        return self.plan.lr_factor

    def weights_for(self, indices):
        """The plan's loss weights of these samples (None when the plan is unweighted)."""
        self._need_plan()
        if self._weight_of is None:
            return None
        return self._weight_of[_to_numpy(indices).astype(np.int64, copy=False)]

    def observe(self, losses, indices, logits=None, targets=None):
        """Records the batch's per-sample losses (and, given ``logits`` and ``targets``, whether
        each prediction was right and its confidence, which KAKURENBO needs)."""
        idx = _to_numpy(indices)
        l = _to_numpy(losses)
        if logits is None and targets is None:
            self.pruner.observe(idx, l)
            return
        if logits is None or targets is None:
            raise ValueError("give both `logits` and `targets` (or neither)")
        z = _to_numpy(logits).astype(np.float64)
        y = _to_numpy(targets)
        if z.ndim != 2 or len(z) != len(idx) or len(y) != len(idx):
            raise ValueError(f"`logits` must be (batch, classes) and `targets` (batch,), got {z.shape} and {np.shape(y)}")
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        correct = p.argmax(axis=1) == y
        conf = p.max(axis=1).astype(np.float32)
        self.pruner.observe_predictions(idx, l, correct, conf)

    def loss(self, losses, indices, logits=None, targets=None):
        """``observe`` the losses, then return their weighted mean (``weighted_mean``) under this
        epoch's plan: the scalar to back-propagate."""
        self.observe(losses, indices, logits, targets)
        return weighted_mean(losses, self.weights_for(indices))

