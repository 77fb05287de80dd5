"""Training on several processes (torchrun, DistributedDataParallel): which rank this process
is, the process group, and the few collectives `train` and `pretrain` need.

Without torchrun's environment (WORLD_SIZE unset or 1) no process group is started and every
helper here is the identity, so a single process runs exactly as it always did.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from bioclass.core.console import alerts, console
from bioclass.core.errors import BioclassError

T = TypeVar("T")

# How long a rank waits in a collective (rank 0 validating, a rank that died) before it gives
# up; validation of a large set can take minutes, so the default is generous.
TIMEOUT_ENV = "BIOCLASS_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run.

    Attributes:
        rank: 0..world_size-1; rank 0 validates and writes every file.
        world_size: how many processes train together (1: no process group).
        backend: 'gloo' (CPU) or 'nccl' (CUDA); '' for a single process.
    """

    rank: int = 0
    world_size: int = 1
    backend: str = ""

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_current = Ranks()


def current() -> Ranks:
    """The ranks of the run in progress (a single process outside `process_group`)."""
    return _current


def launched() -> bool:
    """Whether torchrun started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1") or "1") > 1


def _timeout() -> timedelta:
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        seconds = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise BioclassError(f"{TIMEOUT_ENV}={raw!r}: give seconds, e.g. 600") from None
    if not seconds > 0:
        raise BioclassError(f"{TIMEOUT_ENV}={raw!r}: give a positive number of seconds")
    return timedelta(seconds=seconds)


_USER_QUIET = [False]  # --quiet as given, kept when a rank speaks again


def _quiet(on: bool) -> None:
    """Silence (or not) everything this rank prints: info, bars and tables (still silent under
    --quiet), and the errors and warnings the command line prints through `alerts`."""
    console.quiet = on or _USER_QUIET[0]
    alerts.quiet = on


@contextmanager
def process_group(dev: torch.device) -> Iterator[torch.device]:
    """Join torchrun's process group for the block (nothing without torchrun); yields the
    device this rank trains on (its own GPU under CUDA).

    Ranks other than 0 are quiet (rank 0 speaks for the run); an error a rank meets is still
    printed, prefixed with its rank. A collective that fails (another rank crashed or was
    killed, or the timeout passed) becomes one clear error.
    """
    global _current
    if not launched():
        yield dev
        return
    world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ.get("RANK", "0"))
    if dev.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise BioclassError(
                f"local rank {local} has no GPU ({torch.cuda.device_count()} visible): "
                "start at most one process per GPU (--nproc-per-node)"
            )
        torch.cuda.set_device(local)
        dev, backend = torch.device("cuda", local), "nccl"
    elif dev.type == "cpu":
        backend = "gloo"
    else:
        raise BioclassError(
            f"torchrun trains on CPU (gloo) or CUDA (nccl), not {dev.type}: use --device cpu/cuda"
        )
    try:
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=_timeout())
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BioclassError(f"cannot join the torchrun process group: {first}") from None
    _current = Ranks(rank, world, backend)
    _USER_QUIET[0] = console.quiet
    _quiet(rank != 0)
    console.print(f"distributed: {world} ranks (world size {world}), backend {backend}")
    try:
        yield dev
        _quiet(False)
    except ReportedByMain:
        raise  # rank 0 prints it; this rank stays quiet
    except BioclassError as exc:
        _quiet(False)
        raise BioclassError(_ranked(rank, str(exc))) from None
    except RuntimeError as exc:
        if not isinstance(exc, dist.DistError) and "gloo" not in str(exc).lower():
            raise
        _quiet(False)
        raise BioclassError(
            _ranked(
                rank,
                "lost the other ranks (one of them failed, was stopped, or did not answer "
                f"within {_timeout().total_seconds():.0f} s); files already written are complete",
            )
        ) from None
    finally:
        _current = Ranks()
        if dist.is_initialized():
            dist.destroy_process_group()


class ReportedByMain(BioclassError):
    """An error rank 0 met and reports; the other ranks stop with it without repeating it."""


def on_main(work: Callable[[], T]) -> T | None:
    """Run `work` on rank 0 only (making the run directory, say) and let every rank know how
    it went: an error there stops all ranks, not rank 0 alone while the others wait."""
    if not _current.distributed:
        return work()
    failure: list[str | None] = [None]
    result = None
    if _current.is_main:
        try:
            result = work()
        except BioclassError as exc:
            failure[0] = str(exc)
            dist.broadcast_object_list(failure, src=0)
            raise
        dist.broadcast_object_list(failure, src=0)
        return result
    dist.broadcast_object_list(failure, src=0)
    if failure[0] is not None:
        raise ReportedByMain(failure[0])
    return None


def refuse(message: str) -> NoReturn:
    """Stop every rank for a reason all of them see alike (an option combination, the batch
    size), said once: by rank 0."""
    raise (BioclassError if _current.is_main else ReportedByMain)(message)


def _ranked(rank: int, message: str) -> str:
    return message if rank == 0 else f"rank {rank}: {message}"


def barrier() -> None:
    """Wait until every rank gets here (rank 0 writing files, validating)."""
    if _current.distributed:
        dist.barrier()


def launch_command(world_size: int | None = None) -> str:
    """How to start bioclass on `world_size` ranks (this run's by default): `bioclass` for one,
    torchrun with this machine's processes per node (and the nodes) for several."""
    world = _current.world_size if world_size is None else world_size
    if world == 1:
        return "bioclass"
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "0") or "0") or world
    if world % local:
        local = world
    nodes = f"--nnodes {world // local} " if world > local else ""
    return f"torchrun {nodes}--nproc-per-node {local} -m bioclass"


def check_batch(batch_size: int, what: str) -> None:
    """Refuse a batch the ranks cannot share equally (their losses would weigh differently)."""
    n = _current.world_size
    if batch_size % n:
        refuse(
            f"{what} {batch_size} does not split over {n} ranks: make it a multiple of {n} "
            "(each rank trains on batch / world size of every batch)"
        )


def check_resume(saved: dict[str, Any]) -> None:
    """Refuse to resume a run on another number of ranks: its per-rank random streams (dropout,
    augmentation) would not continue, so the run would not be the one that was stopped."""
    before = int(saved.get("world_size", 1))
    if before != _current.world_size:
        refuse(
            f"this run was trained on {before} rank(s) and cannot resume on "
            f"{_current.world_size}: resume it with {launch_command(before)}"
        )


def seed_torch(seed: int) -> None:
    """Seed the global torch RNG: `seed` on rank 0 (a single process's own stream), a stream of
    its own on every other rank (dropout masks differ across ranks as across batch rows)."""
    torch.manual_seed(seed if _current.rank == 0 else seed * 1_000_003 + _current.rank)


def rank_key(*key: int) -> list[int]:
    """A numpy seed key, extended with the rank when there are several (augmentation draws of
    a single process stay what they were)."""
    return [*key, _current.rank] if _current.distributed else list(key)


def rank_state() -> dict[str, Any]:
    """Checkpoint entries for several ranks: the world size and every rank's torch RNG state
    (collective: every rank calls it)."""
    if not _current.distributed:
        return {}
    states: list[Any] = [None] * _current.world_size
    dist.all_gather_object(states, torch.get_rng_state())
    return {"world_size": _current.world_size, "rank_rng": states}


def restore_rank_rng(saved: dict[str, Any]) -> None:
    """Put this rank's torch RNG back from a checkpoint of `rank_state`."""
    if _current.distributed and saved.get("rank_rng") is not None:
        torch.set_rng_state(saved["rank_rng"][_current.rank])


def step_summary(loss: float, stop: bool) -> tuple[float, bool]:
    """The mean loss over the ranks and whether any rank was asked to stop, the same on every
    rank, so they all report the same loss and stop after the same step."""
    if not _current.distributed:
        return loss, stop
    t = torch.tensor([loss, float(stop)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t[0]) / _current.world_size, bool(t[1] > 0)


class _AllGather(torch.autograd.Function):
    """Every rank's rows, concatenated in rank order; backward sums the gradient over ranks
    and returns this rank's rows of it.

    Every rank computes the same loss on the gathered rows, and DistributedDataParallel averages
    gradients over ranks: summing here makes that average the gradient of the one global loss.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(dist_size())]
        dist.all_gather(sizes, torch.tensor([x.shape[0]], device=x.device))
        counts = [int(s) for s in sizes]
        padded = x.new_zeros((max(counts), *x.shape[1:]))
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in counts]
        dist.all_gather(parts, padded.contiguous())
        ctx.counts, ctx.rank = counts, dist.get_rank()
        return torch.cat([p[:n] for p, n in zip(parts, counts, strict=True)])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        start = sum(ctx.counts[: ctx.rank])
        return grad[start : start + ctx.counts[ctx.rank]]


def dist_size() -> int:
    return _current.world_size


def all_gather(x: torch.Tensor) -> torch.Tensor:
    """Rows of every rank (rank order) with gradients flowing back to each rank's own rows;
    `x` itself for a single process."""
    if not _current.distributed:
        return x
    return _AllGather.apply(x)


class _AllReduceSum(torch.autograd.Function):
    """The sum over ranks; its gradient is the sum of the ranks' gradients (see _AllGather)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad


class RankSyncedBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics are those of the global batch (all ranks), on CPU
    (gloo) as on CUDA, so N ranks of batch b normalise as one process of batch N*b does (torch's
    SyncBatchNorm is GPU-only). Same parameters and buffers as the layer it replaces, so the
    weights it saves load into the plain model."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _current.distributed):
            return super().forward(x)
        dims = [d for d in range(x.dim()) if d != 1]
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        count = torch.full((1,), xf.numel() / xf.shape[1], dtype=xf.dtype, device=x.device)
        local = torch.cat([xf.sum(dims), (xf * xf).sum(dims), count])
        total = _AllReduceSum.apply(local)
        c = x.shape[1]
        n = total[-1]
        mean = total[:c] / n
        var = (total[c : 2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum
                m = 1.0 / float(self.num_batches_tracked) if m is None else m
                unbiased = var * n / (n - 1).clamp_min(1)
                self.running_mean.mul_(1 - m).add_(mean.to(self.running_mean), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.to(self.running_var), alpha=m)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def sync_batch_norm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm layer below `module` (in place) with a `RankSyncedBatchNorm`
    holding the same tensors."""
    for name, child in module.named_children():
        if isinstance(child, _BatchNorm) and not isinstance(child, RankSyncedBatchNorm):
            synced = RankSyncedBatchNorm(
                child.num_features,
                child.eps,
                child.momentum,
                child.affine,
                child.track_running_stats,
            )
            synced.load_state_dict(child.state_dict())
            synced.to(next(iter(child.state_dict().values())).device)
            synced.train(child.training)
            setattr(module, name, synced)
        else:
            sync_batch_norm(child)
    return module


def wrap(module: nn.Module, dev: torch.device, find_unused: bool = False) -> nn.Module:
    """`module` under DistributedDataParallel (rank 0's weights broadcast to every rank,
    gradients averaged); `module` itself for a single process.

    `find_unused`: some parameters get no gradient on some steps (the classifier during a
    contrastive stage, the head once the encoder is frozen); DDP then looks for them (a
    parameter unused on every rank keeps no gradient, as in one process).
    """
    if not _current.distributed:
        return module
    ids = [dev.index] if dev.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        module, device_ids=ids, find_unused_parameters=find_unused
    )
