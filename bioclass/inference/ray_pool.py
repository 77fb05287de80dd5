"""A pool of Ray workers that score recordings segment by segment (`scan` and `embed --ray`).

The pool deals segments (see `segments`) to its workers (see `ray_worker`), largest file first,
one per idle worker, so a 24-hour recording spreads over every worker while short files fill in
at the end, and joins each file's segments into its FileScores, bit for bit what `score_file`
gives on one machine. Files come back as they finish; the caller puts them in order, and keeps
whatever it keeps (the scan's journal, the embedding table).

A worker that dies (its process killed, its node lost) is replaced by a new one and its segment
dealt out again; a segment that kills MAX_ATTEMPTS workers fails its file instead of the run.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from bioclass.core.errors import BioclassError
from bioclass.inference.ray_worker import SpanScorer
from bioclass.inference.score import (
    FileScores,
    FileScoringError,
    SpanScores,
    WindowOutput,
    join_spans,
)
from bioclass.inference.segments import (
    Segment,
    auto_segment_seconds,
    file_length,
    file_spans,
    segments_largest_first,
)
from bioclass.inference.stream import WindowPlan
from bioclass.runtime.ray_cluster import RaySettings, connect

log = logging.getLogger(__name__)

# Workers that may die on one segment before its file is given up as failed (a file that
# crashes the decoder would otherwise take down every worker in turn).
MAX_ATTEMPTS = 3
# Seconds the workers may take to start and load the models before the run gives up (a cluster
# without the CPUs/GPUs asked for would otherwise wait for ever).
START_TIMEOUT_S = 300.0
# Seconds between progress reports while segments are in flight.
TICK_S = 0.5


@dataclass
class RayProgress:
    """Where a Ray run stands, for the progress bar (the caller counts files as it keeps them)."""

    files_total: int = 0
    files_done: int = 0
    audio_seconds: float = 0.0
    workers: int = 0
    workers_replaced: int = 0  # died and were replaced
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        """Audio seconds per wall second so far."""
        return self.audio_seconds / max(time.monotonic() - self.started, 1e-9)

    def line(self) -> str:
        return (
            f"{self.audio_seconds / 3600:.2f} h audio, {self.rate:.0f}x real time, "
            f"{self.workers} workers"
            + (f" ({self.workers_replaced} replaced)" if self.workers_replaced else "")
        )

    def file_done(self, seconds: float) -> None:
        self.files_done += 1
        self.audio_seconds += seconds


@dataclass(frozen=True)
class SpanJob:
    """How every file of a run is scored (what a worker needs besides the file and span)."""

    plan: WindowPlan
    mode: str  # resolved: fast or exact
    batch_size: int
    channels: str | int
    precision: str
    output: WindowOutput  # the driver's, for the finite-scores check


@dataclass
class _File:
    """A file being scored: its segments' results as they come in."""

    path: Path
    spans: list[SpanScores | None]
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.error is not None or all(s is not None for s in self.spans)


class RayPool:
    """Ray workers that load the models once and score segments of recordings.

    Args:
        settings: the --ray options.
        on_progress: called with the progress now and then.
        scorer: the worker class (the tests give one that dies on purpose).
    """

    def __init__(
        self,
        settings: RaySettings,
        on_progress: Callable[[RayProgress], None] | None = None,
        scorer: type = SpanScorer,
    ) -> None:
        self.settings = settings
        self.on_progress = on_progress
        self.scorer = scorer
        self.ray: ModuleType | None = None
        self.started_ray = False
        self.actors: list[Any] = []
        self.progress = RayProgress()
        self._actor_args: tuple[Any, ...] = ()

    # --- workers ---------------------------------------------------------------------------

    def start(
        self,
        model_paths: list[Path],
        device: str,
        calibration: str | None = None,
        embedding: bool = False,
    ) -> torch.device:
        """Join or start Ray and start the workers (each loads the models); their device."""
        self.ray, self.started_ray = connect(self.settings)
        n = self._n_workers()
        threads = max(1, int(self.settings.cpus_per_worker))
        self._remote = self.ray.remote(
            num_cpus=self.settings.cpus_per_worker, num_gpus=self.settings.gpus_per_worker
        )(self.scorer)
        self._actor_args = (list(model_paths), device, calibration, threads, embedding)
        self.actors = [self._new_actor() for _ in range(n)]
        where = self._get([a.where.remote() for a in self.actors], START_TIMEOUT_S, "start")
        devices = sorted({d for d, _, _ in where})
        if len({torch.device(d).type for d in devices}) > 1:
            raise BioclassError(
                f"the Ray workers resolved --device {device} to different devices "
                f"({', '.join(devices)}): give --device cpu or --device cuda"
            )
        hosts = sorted({h for _, h, _ in where})
        log.info(
            "Ray: %d worker(s) on %d node(s) (%s), %g CPU(s) and %g GPU(s) each, on %s",
            n,
            len(hosts),
            ", ".join(hosts),
            self.settings.cpus_per_worker,
            self.settings.gpus_per_worker,
            devices[0],
        )
        self.progress.workers = n
        return torch.device(devices[0])

    def _n_workers(self) -> int:
        """--ray-workers, or as many as the cluster's CPUs (and GPUs) hold; refused when the
        cluster cannot hold them (their actors would wait for ever)."""
        assert self.ray is not None
        total = self.ray.cluster_resources()
        cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
        per_cpu, per_gpu = self.settings.cpus_per_worker, self.settings.gpus_per_worker
        fits = int(cpus // per_cpu)
        if per_gpu > 0:
            fits = min(fits, int(gpus // per_gpu))
        n = self.settings.workers or fits
        if n < 1 or n > fits:
            asked = f"{n} worker(s) x {per_cpu:g} CPU" + (f" + {per_gpu:g} GPU" if per_gpu else "")
            raise BioclassError(
                f"the Ray cluster has {cpus:g} CPU(s) and {gpus:g} GPU(s): it cannot hold "
                f"{asked} (lower --ray-workers, --ray-cpus-per-worker or --ray-gpus-per-worker)"
            )
        return n

    def _new_actor(self) -> Any:
        return self._remote.remote(*self._actor_args)

    def _get(self, refs: list[Any], timeout_s: float, what: str) -> list[Any]:
        assert self.ray is not None
        try:
            return self.ray.get(refs, timeout=timeout_s)
        except self.ray.exceptions.GetTimeoutError:
            raise BioclassError(
                f"the Ray workers did not {what} within {timeout_s:g} s (does the cluster have "
                "the CPUs/GPUs asked for free?)"
            ) from None
        except self.ray.exceptions.RayError as exc:
            cause = getattr(exc, "cause", None) or exc
            first = str(cause).strip().splitlines()[0] if str(cause).strip() else repr(cause)
            raise BioclassError(f"a Ray worker could not {what}: {first}") from None

    def close(self) -> None:
        """Stop the workers (and Ray, when it was started here); what they were doing is
        dropped."""
        if self.ray is None:
            return
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self.started_ray:
            self.ray.shutdown()
        self.ray = None

    # --- scoring ----------------------------------------------------------------------------

    def score_files(
        self, files: dict[int, Path], job: SpanJob
    ) -> Iterator[tuple[int, FileScores | str]]:
        """(index, the file's scores or its failure line) for every file, as each finishes."""
        assert self.ray is not None
        lengths = {i: file_length(path, job.plan, job.channels) for i, path in files.items()}
        if self.settings.segment_minutes is None:
            rate = job.plan.sample_rate
            chosen = auto_segment_seconds(list(lengths.values()), len(self.actors), rate)
            seconds = dict(zip(lengths, chosen, strict=True))
        else:
            seconds = dict.fromkeys(lengths, self.settings.segment_minutes * 60)
        spans = {
            i: file_spans(lengths[i], job.plan, job.mode, job.batch_size, seconds[i]) for i in files
        }
        scoring = {i: _File(files[i], [None] * len(spans[i])) for i in files}
        samples = {i: 0 if n is None else n.samples for i, n in lengths.items()}
        queue = deque(segments_largest_first(spans, samples, job.plan))
        attempts: dict[tuple[int, int], int] = {}
        idle = deque(self.actors)
        in_flight: dict[Any, tuple[Any, Segment]] = {}
        last_tick = 0.0
        while scoring:
            while idle and queue:
                segment = queue.popleft()
                if segment.file_index not in scoring:
                    continue  # its file already failed: the rest of it is not needed
                actor = idle.popleft()
                ref = actor.score.remote(
                    files[segment.file_index],
                    job.plan,
                    segment.span,
                    job.channels,
                    job.batch_size,
                    job.mode,
                    job.precision,
                )
                in_flight[ref] = (actor, segment)
            if not in_flight:
                raise RuntimeError("Ray pool: nothing in flight, yet files are unfinished")
            ready, _ = self.ray.wait(list(in_flight), num_returns=1, timeout=TICK_S)
            for ref in ready:
                actor, segment = in_flight.pop(ref)
                result = self._result(ref, segment, attempts, queue, idle, actor)
                state = scoring.get(segment.file_index)
                if result is None or state is None:
                    continue  # a dead worker's segment (queued again), or a failed file's
                if isinstance(result, str):
                    state.error = state.error or result
                else:
                    state.spans[segment.index] = result
                if state.complete:
                    del scoring[segment.file_index]
                    yield segment.file_index, self._joined(state, job)
            now = time.monotonic()
            if self.on_progress is not None and now - last_tick >= TICK_S:
                last_tick = now
                self.on_progress(self.progress)

    def _result(
        self,
        ref: Any,
        segment: Segment,
        attempts: dict[tuple[int, int], int],
        queue: deque[Segment],
        idle: deque[Any],
        actor: Any,
    ) -> SpanScores | str | None:
        """A segment's result; None when its worker died (a new worker takes its place and the
        segment goes back to the front of the queue)."""
        assert self.ray is not None
        exceptions = self.ray.exceptions
        try:
            result = self.ray.get(ref)
        except (exceptions.RayActorError, exceptions.WorkerCrashedError) as exc:
            key = (segment.file_index, segment.index)
            attempts[key] = attempts.get(key, 0) + 1
            self._replace(actor, idle)
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning(
                "a Ray worker died scoring segment %d of file %d (%s); a new worker takes over",
                segment.index,
                segment.file_index,
                why[:200],
            )
            if attempts[key] < MAX_ATTEMPTS:
                queue.appendleft(segment)
                return None
            return (
                f"the Ray workers scoring windows {segment.span} died {MAX_ATTEMPTS} times; "
                "nothing written for this file"
            )
        idle.append(actor)
        return result

    def _replace(self, dead: Any, idle: deque[Any]) -> None:
        assert self.ray is not None
        self.ray.kill(dead)  # already gone; frees its resources at once
        fresh = self._new_actor()
        self.actors = [fresh if a is dead else a for a in self.actors]
        idle.append(fresh)
        self.progress.workers_replaced += 1

    @staticmethod
    def _joined(state: _File, job: SpanJob) -> FileScores | str:
        """A finished file's scores, or its failure line (starting with its path)."""
        if state.error is not None:
            error = state.error
            return error if error.startswith(str(state.path)) else f"{state.path}: {error}"
        spans = [s for s in state.spans if s is not None]
        try:
            return join_spans(state.path, spans, job.output, job.plan)
        except FileScoringError as exc:
            return str(exc)
