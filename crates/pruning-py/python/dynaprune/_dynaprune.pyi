# Type stubs for the compiled module `dynaprune._dynaprune` (crates/pruning-py/src).
# `scripts/python-check.sh` checks them against the built module with mypy's `stubtest`, so a
# class, method, argument or default that changes in the Rust source without changing here
# fails CI.

from typing import Any, ClassVar, Literal, Optional, Union, final

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

__all__ = [
    "BackpropSelector",
    "EpsilonGreedy",
    "FullData",
    "InfoBatch",
    "Kakurenbo",
    "Plan",
    "Policy",
    "Pruner",
    "Rs2",
    "Schedule",
    "SelectiveBackprop",
    "Seta",
    "Shard",
    "Staleness",
    "StaticRandom",
    "StaticScores",
    "Ucb",
    "UniformRandom",
    "__version__",
    "_shard_positions",
]
__version__: str

_Phase = Literal["warmup", "select", "reuse", "anneal"]

@disjoint_base
class Policy:
    """A selection rule. Built by one of its subclasses; passed to `Pruner`."""

    @property
    def name(self) -> str: ...
    @property
    def prune_fraction(self) -> float: ...
    @property
    def is_dynamic(self) -> bool: ...
    @property
    def uses_scores(self) -> bool: ...
    @property
    def preferred_ema_decay(self) -> float: ...

@final
class Staleness:
    DEFAULT_RETENTION: ClassVar[float]
    DEFAULT_DRIFT: ClassVar[float]
    @staticmethod
    def prior(retention: float = ..., drift: float = ...) -> Staleness: ...
    @staticmethod
    def count_bonus(weight: float) -> Staleness: ...
    @staticmethod
    def off() -> Staleness: ...
    @property
    def kind(self) -> str: ...

_StalenessArg = Union[Staleness, Literal["prior", "off"], None]

@final
class FullData(Policy):
    def __new__(cls) -> FullData: ...

@final
class UniformRandom(Policy):
    def __new__(cls, prune_fraction: float) -> UniformRandom: ...

@final
class EpsilonGreedy(Policy):
    DEFAULT_EPSILON: ClassVar[float]
    DEFAULT_EMA_DECAY: ClassVar[float]
    def __new__(
        cls,
        prune_fraction: float,
        epsilon: float = ...,
        *,
        staleness: _StalenessArg = None,
        statistic: Literal["mean", "last"] = "mean",
        epsilon_decay_rate: Optional[float] = None,
        epsilon_min: float = 0.0,
        epsilon_to: Optional[float] = None,
    ) -> EpsilonGreedy: ...

@final
class Ucb(Policy):
    DEFAULT_C: ClassVar[float]
    def __new__(cls, prune_fraction: float, c: float = ..., *, staleness: _StalenessArg = None) -> Ucb: ...

@final
class InfoBatch(Policy):
    DEFAULT_DROP_PROBABILITY: ClassVar[float]
    DEFAULT_DELTA: ClassVar[float]
    def __new__(
        cls,
        drop_probability: Optional[float] = None,
        *,
        prune_fraction: Optional[float] = None,
        max_drop_probability: float = ...,
        statistic: Literal["mean", "last"] = "last",
    ) -> InfoBatch: ...

@final
class Rs2(Policy):
    def __new__(cls, prune_fraction: float) -> Rs2: ...

@final
class Kakurenbo(Policy):
    DEFAULT_TAU: ClassVar[float]
    def __new__(
        cls, max_fraction: float, *, tau: float = ..., adjust_lr: bool = True, lr: Optional[str] = None
    ) -> Kakurenbo: ...

@final
class Seta(Policy):
    DEFAULT_GROUPS: ClassVar[int]
    DEFAULT_WINDOW_SCALE: ClassVar[float]
    DEFAULT_DELTA: ClassVar[float]
    def __new__(
        cls,
        prune_fraction: float,
        *,
        groups: int = ...,
        window_scale: float = ...,
        delta: float = ...,
        budget: Literal["exact", "reference"] = "exact",
    ) -> Seta: ...

@final
class SelectiveBackprop(Policy):
    DEFAULT_HISTORY: ClassVar[int]
    def __new__(
        cls,
        prune_fraction: Optional[float] = None,
        *,
        beta: Optional[float] = None,
        history: int = ...,
        floor: float = 0.0,
    ) -> SelectiveBackprop: ...
    @property
    def beta(self) -> float: ...
    def selector(self, seed: int) -> BackpropSelector: ...

@final
class BackpropSelector:
    def select(self, losses: npt.ArrayLike) -> npt.NDArray[np.int64]: ...
    def percentile(self, loss: float) -> float: ...
    def keep_probability(self, p: float) -> float: ...
    @property
    def batches(self) -> int: ...
    def state(self) -> bytes: ...
    def restore(self, state: bytes) -> None: ...

@final
class StaticScores(Policy):
    def __new__(
        cls,
        scores: npt.ArrayLike,
        prune_fraction: float,
        *,
        keep: Literal["highest", "lowest"] = "highest",
        skip_fraction: Optional[float] = None,
        name: str = "static-scores",
    ) -> StaticScores: ...

@final
class StaticRandom(Policy):
    def __new__(cls, prune_fraction: float) -> StaticRandom: ...

@final
class Schedule:
    def __new__(
        cls,
        epochs: int,
        *,
        warmup: int = 0,
        interval: int = 1,
        anneal: int = 0,
        anneal_fraction: Optional[float] = None,
    ) -> Schedule: ...
    @property
    def epochs(self) -> int: ...
    @property
    def warmup(self) -> int: ...
    @property
    def interval(self) -> int: ...
    @property
    def anneal(self) -> int: ...
    @property
    def pruned_epochs(self) -> int: ...
    def phase(self, epoch: int) -> _Phase: ...
    def budget_matched_fraction(self, prune_fraction: float) -> float: ...

@final
class Shard:
    @property
    def indices(self) -> npt.NDArray[np.int64]: ...
    @property
    def weights(self) -> Optional[npt.NDArray[np.float32]]: ...
    @property
    def own(self) -> int: ...
    @property
    def padding(self) -> int: ...
    @property
    def rank(self) -> int: ...
    @property
    def world_size(self) -> int: ...
    @property
    def own_indices(self) -> npt.NDArray[np.int64]: ...
    @property
    def padding_indices(self) -> npt.NDArray[np.int64]: ...
    def __len__(self) -> int: ...

@final
class Plan:
    @property
    def indices(self) -> npt.NDArray[np.int64]: ...
    @property
    def weights(self) -> Optional[npt.NDArray[np.float32]]: ...
    @property
    def stats(self) -> dict[str, Any]: ...
    @property
    def phase(self) -> _Phase: ...
    @property
    def epoch(self) -> int: ...
    @property
    def lr_factor(self) -> float: ...
    def shard(self, rank: int, world_size: int) -> Shard: ...
    def __len__(self) -> int: ...
    def batches(
        self, batch_size: int
    ) -> list[tuple[npt.NDArray[np.int64], Optional[npt.NDArray[np.float32]]]]: ...

@final
class Pruner:
    def __new__(
        cls,
        n: int,
        policy: Optional[Policy] = None,
        schedule: Union[Schedule, int, None] = None,
        *,
        seed: int = 0,
        ema_decay: Optional[float] = None,
        buffer: Literal["ema", "last"] = "ema",
        rescore_every: int = 0,
    ) -> Pruner: ...
    def plan(self, epoch: int) -> Plan: ...
    def observe(self, indices: npt.ArrayLike, losses: npt.ArrayLike) -> None: ...
    def observe_predictions(
        self,
        indices: npt.ArrayLike,
        losses: npt.ArrayLike,
        correct: npt.ArrayLike,
        confidence: npt.ArrayLike,
    ) -> None: ...
    def stale(self, epoch: int, max_age: int) -> npt.NDArray[np.int64]: ...
    def rescore_request(self, epoch: int) -> npt.NDArray[np.int64]: ...
    def selection_counts(self) -> npt.NDArray[np.uint32]: ...
    def pruned_selection_counts(self) -> npt.NDArray[np.uint32]: ...
    def state(self) -> bytes: ...
    def restore(self, data: bytes) -> None: ...
    def phase(self, epoch: int) -> _Phase: ...
    @property
    def n(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def schedule(self) -> Schedule: ...
    @property
    def policy_name(self) -> str: ...
    @property
    def epochs_planned(self) -> int: ...
    @property
    def last_epoch(self) -> Optional[int]: ...
    def __len__(self) -> int: ...

def _shard_positions(length: int, rank: int, world_size: int) -> tuple[npt.NDArray[np.int64], int]: ...
