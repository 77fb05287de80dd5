"""The driver of `bioclass scan --ray`: deals segments to Ray workers, keeps the journal.

The driver does what the local scan does with its files (journal keys, resuming stored parts,
storing each finished file's part, handing outcomes over in input order); the workers only score
segments (see `segments`, `ray_worker`). Segments are dealt out largest file first, one per idle
worker, so a 24-hour recording spreads over every worker while short files fill in at the end.

A worker that dies (its process killed, its node lost) is replaced by a new one and its segment
dealt out again; a segment that kills MAX_ATTEMPTS workers fails its file instead of the scan.
Each file's part is stored as soon as its last segment is in, so a driver killed and re-run with
the same command resumes from every finished file.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from bioclass.core.errors import BioclassError
from bioclass.inference.score import FileScoringError, SpanScores, join_spans
from bioclass.runtime.ray_cluster import RaySettings, connect
from bioclass.scan.distribute import ScoreJob
from bioclass.scan.journal import save_result
from bioclass.scan.options import ScanOptions
from bioclass.scan.ray_worker import SpanScorer
from bioclass.scan.segments import (
    Segment,
    auto_segment_seconds,
    file_length,
    file_spans,
    segments_largest_first,
)
from bioclass.scan.work import FileOutcome, stored_outcome

log = logging.getLogger(__name__)

# Workers that may die on one segment before its file is given up as failed (a file that
# crashes the decoder would otherwise take down every worker in turn).
MAX_ATTEMPTS = 3
# Seconds the workers may take to start and load the models before the scan gives up (a cluster
# without the CPUs/GPUs asked for would otherwise wait for ever).
START_TIMEOUT_S = 300.0
# Seconds between progress reports while segments are in flight.
TICK_S = 0.5


@dataclass
class RayProgress:
    """Where a Ray scan stands, for the progress bar."""

    files_total: int
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


@dataclass
class _File:
    """A file being scored: its segments' results as they come in."""

    path: Path
    key: str
    spans: list[SpanScores | None]
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.error is not None or all(s is not None for s in self.spans)


class RayDistributor:
    """Scores a scan's files on Ray workers (a `distribute.Distributor`).

    Args:
        settings: the --ray options.
        on_progress: called with the progress now and then (and after every file).
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
        self.progress = RayProgress(0)
        self._actor_args: tuple[Any, ...] = ()

    # --- workers ---------------------------------------------------------------------------

    def start(self, model_paths: list[Path], options: ScanOptions) -> torch.device:
        self.ray, self.started_ray = connect(self.settings)
        n = self._n_workers()
        threads = max(1, int(self.settings.cpus_per_worker))
        self._remote = self.ray.remote(
            num_cpus=self.settings.cpus_per_worker, num_gpus=self.settings.gpus_per_worker
        )(self.scorer)
        self._actor_args = (list(model_paths), options.device, options.calibration, threads)
        self.actors = [self._new_actor() for _ in range(n)]
        where = self._get([a.where.remote() for a in self.actors], START_TIMEOUT_S, "start")
        devices = sorted({d for d, _, _ in where})
        if len({torch.device(d).type for d in devices}) > 1:
            raise BioclassError(
                f"the Ray workers resolved --device {options.device} to different devices "
                f"({', '.join(devices)}): give --device cpu or --device cuda"
            )
        hosts = sorted({h for _, h, _ in where})
        log.info(
            "Ray: %d worker(s) on %d node(s) (%s), %g CPU(s) and %g GPU(s) each, scoring on %s",
            n,
            len(hosts),
            ", ".join(hosts),
            self.settings.cpus_per_worker,
            self.settings.gpus_per_worker,
            devices[0],
        )
        self.progress.workers = n
        self.pids = [pid for _, _, pid in where]
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
        if self.ray is None:
            return
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self.started_ray:
            self.ray.shutdown()
        self.ray = None

    # --- the scan ---------------------------------------------------------------------------

    def run(
        self,
        files: list[Path],
        job: ScoreJob,
        consume: Callable[[FileOutcome], None],
        enough: Callable[[], bool],
    ) -> None:
        self.progress = RayProgress(len(files), workers=len(self.actors))
        outcomes: list[FileOutcome | None] = [None] * len(files)
        keys: dict[int, str] = {}
        for i, path in enumerate(files):
            known = stored_outcome(path, job.parts, job.params)
            if isinstance(known, FileOutcome):
                outcomes[i] = known.light()
            else:
                keys[i] = known
        lengths = {i: file_length(files[i], job.plan, job.options.channels) for i in keys}
        if self.settings.segment_minutes is None:
            chosen = auto_segment_seconds(
                list(lengths.values()), len(self.actors), job.plan.sample_rate
            )
            seconds = dict(zip(lengths, chosen, strict=True))
        else:
            seconds = dict.fromkeys(lengths, self.settings.segment_minutes * 60)
        spans = {
            i: file_spans(
                lengths[i], job.plan, job.options.mode, job.options.batch_size, seconds[i]
            )
            for i in keys
        }
        scoring = {i: _File(files[i], keys[i], [None] * len(spans[i])) for i in keys}
        samples = {i: 0 if n is None else n.samples for i, n in lengths.items()}
        queue = deque(segments_largest_first(spans, samples, job.plan))
        attempts: dict[tuple[int, int], int] = {}
        idle = deque(self.actors)
        in_flight: dict[Any, tuple[Any, Segment]] = {}
        next_out = 0
        last_tick = 0.0
        # Workers still busy when the scan stops (--max-failures, Ctrl-C, an error) are killed
        # by `close`; what they were scoring is not needed.
        while next_out < len(files):
            if outcomes[next_out] is not None:
                if enough():
                    break
                outcome = outcomes[next_out]
                assert outcome is not None
                consume(outcome)
                self._done(outcome)
                next_out += 1
                continue
            while idle and queue:
                segment = queue.popleft()
                if outcomes[segment.file_index] is not None:
                    continue  # its file already failed: the rest of it is not needed
                actor = idle.popleft()
                ref = actor.score.remote(
                    files[segment.file_index],
                    job.plan,
                    segment.span,
                    job.options.channels,
                    job.options.batch_size,
                    job.options.mode,
                    job.options.precision,
                )
                in_flight[ref] = (actor, segment)
            if not in_flight:
                raise RuntimeError("Ray scan: nothing in flight, yet files are unfinished")
            ready, _ = self.ray.wait(list(in_flight), num_returns=1, timeout=TICK_S)
            for ref in ready:
                actor, segment = in_flight.pop(ref)
                result = self._result(ref, segment, attempts, queue, idle, actor)
                if result is None or outcomes[segment.file_index] is not None:
                    continue  # a dead worker's segment (queued again), or a failed file's
                state = scoring[segment.file_index]
                if isinstance(result, str):
                    state.error = state.error or result
                else:
                    state.spans[segment.index] = result
                if state.complete and outcomes[segment.file_index] is None:
                    outcomes[segment.file_index] = self._finish(state, job)
                    del scoring[segment.file_index]  # its scores are stored now
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

    def _finish(self, state: _File, job: ScoreJob) -> FileOutcome:
        """A file whose segments are all in: its part stored, its (light) outcome."""
        if state.error is not None:
            return FileOutcome(state.path, state.key, error=self._failure(state))
        spans = [s for s in state.spans if s is not None]
        try:
            result = join_spans(state.path, spans, job.output, job.plan)
        except FileScoringError as exc:
            return FileOutcome(state.path, state.key, error=str(exc))
        save_result(job.parts, state.key, result)
        return FileOutcome(state.path, state.key, result=result).light()

    @staticmethod
    def _failure(state: _File) -> str:
        error = state.error or ""
        return error if error.startswith(str(state.path)) else f"{state.path}: {error}"

    def _done(self, outcome: FileOutcome) -> None:
        self.progress.files_done += 1
        self.progress.audio_seconds += outcome.duration_s
        if self.on_progress is not None:
            self.on_progress(self.progress)
