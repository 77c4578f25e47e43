"""Helpers for the usual loops: a sampler for ``torch.utils.data.DataLoader`` (or any loop that
iterates indices), a dataset wrapper that returns each sample's index, and the weighted mean.

torch is never imported at module load; tensors are recognised by their type's module.
"""

import numpy as np

from . import _distributed as _dist
from ._dynaprune import _shard_positions


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

    **Data-parallel training** (torchrun, ``accelerate launch``; see the package README's "Many
    GPUs"). Build the sampler after ``torch.distributed.init_process_group`` (or
    ``Accelerator()``): it reads ``rank`` and ``world_size`` from the process group (``group``, or
    the default one), and checks any you pass against it. Every rank must build the same
    ``Pruner``. Then each rank iterates only its shard of the plan (``Plan.shard``: equal lengths,
    padded like ``DistributedSampler``), ``observe``/``loss`` gather every rank's (index, loss)
    pairs in rank order so that every rank's pruner sees the same global stream and stays
    identical, and ``set_epoch`` verifies that the ranks agree (n, seed, policy, schedule, state),
    raising ``ValueError`` on every rank, naming the ranks that differ, if they do not.

    - ``sync="step"`` (default) gathers in every ``observe`` call; ``sync="epoch"`` buffers this
      rank's observations and gathers them once, at the next ``set_epoch``, ``rescore_shard``,
      ``state`` or ``sync`` call. The plans are the same either way.
    - ``passes`` counts the global sample passes planned, each sample once; ``padding_passes``
      the padded duplicates trained on top (at most ``world_size - 1`` per epoch), which are
      never observed.
    - Do not hand the DataLoader to ``accelerator.prepare``: it would shard the shard again.
    """

    def __init__(self, pruner, *, rank=None, world_size=None, sync="step", group=None):
        if sync not in _dist.SYNC_MODES:
            raise ValueError(f"`sync`: {sync!r}: expected one of {', '.join(map(repr, _dist.SYNC_MODES))}")
        self.pruner = pruner
        self.plan = None
        self.sync_mode = sync
        self.passes = 0
        self.padding_passes = 0
        self.observed = 0
        self._weight_of = None
        self._order = None
        self._padding = None
        self._pending = []
        self._comm = None
        self._auto = rank is None and world_size is None
        dist = _dist.torch_distributed()
        if _dist.process_group_ready(dist):
            self._comm = _dist.TorchComm(dist, group)
            self._agree_at_start(rank, world_size)
            self.rank, self.world_size = self._comm.rank, self._comm.world
            if self.world_size == 1:
                self._comm = None
            return
        if group is not None:
            raise ValueError("`group`: given, but torch.distributed has no process group: call init_process_group first")
        problem = _dist.check_rank_world(rank, world_size)
        if problem:
            raise ValueError(problem)
        if self._auto:
            env = _dist.env_world_size()
            if env is not None and env > 1:
                raise ValueError(
                    f"`world_size`: the environment says WORLD_SIZE={env} (torchrun, accelerate launch) but "
                    "torch.distributed has no process group yet: build the PlanSampler after "
                    "torch.distributed.init_process_group() (or Accelerator()), or pass world_size=1 to train "
                    "every planned sample in this process alone"
                )
            rank, world_size = 0, 1
        world_size = 1 if world_size is None else int(world_size)
        rank = 0 if rank is None else int(rank)
        if world_size > 1:
            raise ValueError(
                f"`world_size`: {world_size} processes must share their observations through a torch.distributed "
                "process group, and none is initialised: call torch.distributed.init_process_group() first"
            )
        self.rank, self.world_size = rank, world_size

    # -- distributed checks ----------------------------------------------------------------

    def _fingerprint(self):
        p = self.pruner
        return {
            "n": p.n,
            "seed": p.seed,
            "policy": p.policy_name,
            "schedule": repr(p.schedule),
            "sync": self.sync_mode,
        }

    def _agree_at_start(self, rank, world_size):
        comm = self._comm
        problem = _dist.check_rank_world(rank, world_size)
        if problem is None and world_size is not None and int(world_size) != comm.world:
            problem = f"`world_size`: {world_size} but the process group has {comm.world} processes"
        if problem is None and rank is not None and int(rank) != comm.rank:
            problem = f"`rank`: {rank} but this process is rank {comm.rank} of the process group"
        record = dict(self._fingerprint(), problem=problem)
        records = comm.all_gather_object(record)
        bad = [(r, rec["problem"]) for r, rec in enumerate(records) if rec["problem"]]
        if bad:
            raise ValueError("; ".join(f"rank {r}: {msg}" for r, msg in bad))
        msg = _dist.disagreement(records, ("n", "seed", "policy", "schedule", "sync"), "on the PlanSampler")
        if msg:
            raise ValueError(msg)

    def _agree_before(self, epoch):
        fp = dict(self._fingerprint(), epoch=epoch, state_sha256=_dist.state_digest(self.pruner.state()))
        records = self._comm.all_gather_object(fp)
        fields = ("n", "seed", "policy", "schedule", "sync", "epoch", "state_sha256")
        msg = _dist.disagreement(records, fields, f"before planning epoch {epoch}")
        if msg:
            raise ValueError(msg)

    def _late_process_group(self):
        if self._auto and self.world_size == 1:
            dist = _dist.torch_distributed()
            if _dist.process_group_ready(dist) and dist.get_world_size() > 1:
                raise ValueError(
                    "`PlanSampler`: built before torch.distributed.init_process_group(), so it planned for one "
                    f"process, but the process group now has {dist.get_world_size()}: build the PlanSampler after "
                    "init_process_group() (or Accelerator()), or it would train every planned sample on every rank"
                )

    # -- epochs ----------------------------------------------------------------------------

    def set_epoch(self, epoch):
        self._late_process_group()
        self.sync()
        if self._comm is not None:
            self._agree_before(epoch)
        self.plan = self.pruner.plan(epoch)
        if self.world_size > 1:
            shard = self.plan.shard(self.rank, self.world_size)
            self._order = shard.indices
            self._padding = shard.padding_indices if shard.padding else None
            self.padding_passes += len(shard) * self.world_size - len(self.plan)
        else:
            self._order = self.plan.indices
            self._padding = None
        self.passes += len(self.plan)
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
        return iter(self._order.tolist())

    def __len__(self):
        self._need_plan()
        return len(self._order)

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

    # -- observations ----------------------------------------------------------------------

    def observe(self, losses, indices, logits=None, targets=None):
        """Records the batch's per-sample losses (and, given ``logits`` and ``targets``, whether
        each prediction was right and its confidence, which KAKURENBO needs). In data-parallel
        training this rank's padded entries are dropped and the rest gathered from every rank."""
        if (logits is None) != (targets is None):
            raise ValueError("give both `logits` and `targets` (or neither)")
        if self._comm is None:
            idx = _to_numpy(indices)
            l = _to_numpy(losses)
            if logits is None:
                self.pruner.observe(idx, l)
            else:
                correct, conf = _predictions(logits, targets, len(idx))
                self.pruner.observe_predictions(idx, l, correct, conf)
            self.observed += len(idx)
            return
        rows = self._rows(losses, indices, logits, targets)
        if self.sync_mode == "step":
            self._feed(self._comm.gather_rows(rows))
        else:
            self._pending.append(rows)

    def _rows(self, losses, indices, logits, targets):
        """This rank's observations as a float64 tensor (2 or 4, m) on the losses' device (on the
        CPU for NumPy input), its padded entries dropped."""
        import torch

        on = losses.device if _is_torch(losses) else torch.device("cpu")
        as_t = lambda x: (x.detach() if _is_torch(x) else torch.as_tensor(np.asarray(x))).to(on)
        idx = as_t(indices).reshape(-1)
        rows = [idx.to(torch.float64), as_t(losses).reshape(-1).to(torch.float64)]
        if len(rows[1]) != len(idx):
            raise ValueError(f"`losses` has {len(rows[1])} values but `indices` has {len(idx)}")
        if logits is not None:
            if _is_torch(logits) and logits.device.type != "cpu":
                z = logits.detach().to(torch.float64)
                if z.ndim != 2 or len(z) != len(idx) or len(targets) != len(idx):
                    raise ValueError(f"`logits` must be (batch, classes) and `targets` (batch,), got {tuple(z.shape)} and {tuple(targets.shape)}")
                p = torch.softmax(z, dim=1)
                conf, top = p.max(dim=1)
                rows += [(top == as_t(targets)).to(torch.float64), conf.to(torch.float32).to(torch.float64)]
            else:  # the single-process computation, so CPU runs stay bit-identical to it
                correct, conf = _predictions(logits, targets, len(idx))
                rows += [as_t(correct).to(torch.float64), as_t(conf).to(torch.float64)]
        out = torch.stack(rows)
        if self._padding is not None and len(idx):
            keep = ~torch.isin(idx, torch.as_tensor(self._padding, device=idx.device).to(idx.dtype))
            out = out[:, keep]
        return out

    def _feed(self, rows):
        """Feeds gathered rows (NumPy, (2 or 4, m)) to the pruner: the same on every rank."""
        if rows.shape[1] == 0:
            return
        idx = rows[0].astype(np.int64)
        losses = rows[1].astype(np.float32)
        if rows.shape[0] == 2:
            self.pruner.observe(idx, losses)
        else:
            self.pruner.observe_predictions(idx, losses, rows[2] != 0, rows[3].astype(np.float32))
        self.observed += len(idx)

    def sync(self):
        """With ``sync="epoch"``, gathers and records the observations buffered so far (every
        rank must call it at the same point; ``set_epoch``, ``rescore_shard`` and ``state`` call
        it). Nothing to do otherwise."""
        if self._comm is None or self.sync_mode != "epoch":
            return
        import torch

        pending, self._pending = self._pending, []
        kinds = {p.shape[0] for p in pending}
        if len(kinds) > 1:
            raise ValueError("`logits`/`targets`: this rank observed predictions in some batches and not in others")
        k = kinds.pop() if kinds else 2
        rows = torch.cat([p.to(self._comm.device) for p in pending], dim=1) if pending else torch.zeros((k, 0), dtype=torch.float64)
        self._feed(self._comm.gather_rows(rows))

    def loss(self, losses, indices, logits=None, targets=None):
        """``observe`` the losses, then return their weighted mean (``weighted_mean``) under this
        epoch's plan: the scalar to back-propagate."""
        self.observe(losses, indices, logits, targets)
        return weighted_mean(losses, self.weights_for(indices))

    # -- re-scoring and state --------------------------------------------------------------

    def rescore_shard(self, epoch):
        """This rank's share of the samples the pruner wants re-scored before planning ``epoch``
        (``Pruner.rescore_request``): run a forward pass on them and ``observe`` the losses, then
        ``set_epoch(epoch)``. Shares have equal lengths on every rank (padded like a plan shard;
        padded entries are not observed), so per-step gathers line up."""
        self.sync()
        request = self.pruner.rescore_request(epoch)
        self._weight_of = None
        if self.world_size == 1:
            self._padding = None
            return request
        positions, own = _shard_positions(len(request), self.rank, self.world_size)
        share = request[positions]
        self._padding = share[own:] if own < len(share) else None
        return share

    def state(self):
        """The pruner's state (bytes), after gathering any buffered observations: identical on
        every rank. Save it from one rank; ``restore`` the same bytes on every rank."""
        self.sync()
        return self.pruner.state()

    def restore(self, data):
        """Restores the pruner from ``state()`` bytes (on every rank); the next ``set_epoch``
        checks that the ranks agree."""
        self._pending = []
        self.pruner.restore(data)


def _predictions(logits, targets, n):
    """Whether each prediction was right and its confidence (largest softmax probability)."""
    z = _to_numpy(logits).astype(np.float64)
    y = _to_numpy(targets)
    if z.ndim != 2 or len(z) != n or len(y) != n:
        raise ValueError(f"`logits` must be (batch, classes) and `targets` (batch,), got {z.shape} and {np.shape(y)}")
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    correct = p.argmax(axis=1) == y
    conf = p.max(axis=1).astype(np.float32)
    return correct, conf
