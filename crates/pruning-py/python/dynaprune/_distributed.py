"""Data-parallel training with ``torch.distributed`` (torchrun, ``accelerate launch``): the
communication behind ``PlanSampler(..., rank, world_size)``.

The design: every rank holds the same ``Pruner`` (same n, policy, schedule and seed) and feeds it
the same global stream of observations, gathered from every rank in rank order. Every rank then
computes the same plan by itself; no plan is ever broadcast. What crosses the wire:

- ``sync="step"``: per ``observe`` call, one all-gather of 32 bytes per sample per rank (index,
  loss, correctness, confidence, as float64, which holds int indices below 2**53 and float32
  values exactly), plus a 32-byte header; padded to the largest batch seen, and a second
  all-gather only on a call whose batch is larger than any before (the first one);
- ``sync="epoch"``: the same, once per epoch, over the epoch's buffered observations;
- per ``set_epoch``: one small ``all_gather_object`` of each rank's fingerprint (n, seed, policy,
  schedule, world size, sync, epoch, and the SHA-256 of the pruner's state), so that ranks that
  disagree raise on every rank instead of training silently on different subsets.

torch is imported only here, and only once a process group exists or is asked for.
"""

import hashlib
import os
import sys

import numpy as np

SYNC_MODES = ("step", "epoch")
ROWS = 4  # index, loss, correct, confidence (the last two zero when not given)


def torch_distributed():
    """``torch.distributed`` if torch is already imported and has it (no process group can exist
    otherwise), else None."""
    if "torch" not in sys.modules:
        return None
    import torch.distributed as dist

    return dist if dist.is_available() else None


def process_group_ready(dist):
    return dist is not None and dist.is_initialized()


def _as_int(value, arg):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{arg}`: expected an integer, got {value!r}")
    return int(value)


def check_rank_world(rank, world_size):
    """Local checks of explicit arguments: a problem string, or None."""
    try:
        w = None if world_size is None else _as_int(world_size, "world_size")
        r = None if rank is None else _as_int(rank, "rank")
    except ValueError as e:
        return str(e)
    if w is not None and w < 1:
        return f"`world_size`: {w}: expected an integer >= 1"
    if r is not None and r < 0:
        return f"`rank`: {r}: expected 0 <= rank < world_size"
    if r is not None and w is not None and r >= w:
        return f"`rank`: {r}: expected 0 <= rank < world_size = {w}"
    return None


def env_world_size():
    """WORLD_SIZE as torchrun and accelerate set it, or None."""
    try:
        return int(os.environ.get("WORLD_SIZE", ""))
    except ValueError:
        return None


def state_digest(state_bytes):
    return hashlib.sha256(state_bytes).hexdigest()


def _describe(records, field):
    """'seed: rank 1 has 7 (rank 0 has 0)' for the ranks whose `field` differs from rank 0's."""
    base = records[0][field]
    odd = [r for r, rec in enumerate(records) if rec[field] != base]
    if not odd:
        return None
    shown = ", ".join(f"rank {r} has {records[r][field]!r}" for r in odd[:8])
    more = f" and {len(odd) - 8} more" if len(odd) > 8 else ""
    return f"{field}: {shown}{more} (rank 0 has {base!r})"


def disagreement(records, fields, what):
    """The message naming every field on which some rank differs from rank 0, or None."""
    parts = [p for p in (_describe(records, f) for f in fields) if p]
    if not parts:
        return None
    ranks = sorted({r for r, rec in enumerate(records) for f in fields if rec[f] != records[0][f]})
    return (
        f"dynaprune: the {len(records)} ranks disagree {what}: " + "; ".join(parts) + f" (ranks that differ: {ranks}). "
        "Every rank must build the same Pruner (n, policy, schedule, seed), the same PlanSampler "
        "arguments, and restore the same state bytes."
    )


class TorchComm:
    """All-gathers over a ``torch.distributed`` process group (gloo, NCCL, or any backend with
    ``all_gather``). Tensors travel on the group's device: CUDA for NCCL (the current device, as
    ``torch.cuda.set_device`` chose), CPU otherwise."""

    def __init__(self, dist, group=None):
        import torch

        self.torch = torch
        self.dist = dist
        self.group = group
        self.rank = dist.get_rank(group)
        self.world = dist.get_world_size(group)
        backend = str(dist.get_backend(group)).lower()
        self.device = torch.device("cuda", torch.cuda.current_device()) if "nccl" in backend else torch.device("cpu")
        self._cap = 0  # samples per rank that one all-gather carries (see gather_rows)

    def all_gather_object(self, obj):
        out = [None] * self.world
        self.dist.all_gather_object(out, obj, group=self.group)
        return out

    def gather_rows(self, rows):
        """``rows``: a float64 tensor (k, m), k = 2 or 4, on any device; returns every rank's rows
        side by side in rank order, a NumPy array (k, total). Ranks may send different m (uneven
        last batches, dropped padding); every rank must send the same k.

        One all-gather per call in the steady state: each rank sends a (4, 1 + cap) block, its
        first column a header (m, k) and then up to ``cap`` samples, ``cap`` being the largest
        m seen so far (the same on every rank, since it is learnt from gathered headers). When a
        rank has more than ``cap``, every rank sees it in the headers and a second all-gather
        carries the rest, and ``cap`` grows: the first call pays two collectives, later ones
        one. Then one copy to the CPU."""
        torch = self.torch
        k, m = rows.shape
        rows = rows.to(self.device)  # no copy when already there (CUDA losses under NCCL, CPU under gloo)
        cap = self._cap
        take = min(m, cap)
        block = torch.zeros((ROWS, 1 + cap), dtype=torch.float64, device=self.device)
        block[0, 0], block[1, 0] = m, k
        block[:k, 1 : 1 + take] = rows[:, :take]
        blocks = np.stack(self._all_gather(block))
        sizes = blocks[:, 0, 0].astype(np.int64)
        kinds = blocks[:, 1, 0].astype(np.int64)
        if len(set(kinds.tolist())) != 1:
            with_pred = [r for r, kk in enumerate(kinds) if kk == ROWS]
            raise ValueError(
                f"`logits`/`targets`: ranks {with_pred} passed predictions in this observe call and the others did "
                "not: every rank must observe the same kind of values"
            )
        parts = [blocks[r, :k, 1 : 1 + min(sizes[r], cap)] for r in range(self.world)]
        top = int(sizes.max())
        if top > cap:
            rest = torch.zeros((ROWS, top - cap), dtype=torch.float64, device=self.device)
            rest[:k, : m - take] = rows[:, take:]
            rests = self._all_gather(rest)
            parts = [np.concatenate([parts[r], rests[r][:k, : max(0, sizes[r] - cap)]], axis=1) for r in range(self.world)]
            self._cap = top
        return np.concatenate(parts, axis=1)

    def _all_gather(self, t):
        out = [self.torch.empty_like(t) for _ in range(self.world)]
        self.dist.all_gather(out, t, group=self.group)
        return list(self.torch.stack(out).cpu().numpy())  # the one copy to the CPU
