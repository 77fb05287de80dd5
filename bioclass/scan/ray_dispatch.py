"""The driver of `bioclass scan --ray`: the scan's files scored by a pool of Ray workers.

The driver does what the local scan does with its files (journal keys, resuming stored parts,
storing each finished file's part, handing outcomes over in input order); the pool's workers
only score segments (see `inference.ray_pool`). Each file's part is stored as soon as its last
segment is in, so a driver killed and re-run with the same command resumes from every finished
file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from bioclass.inference.ray_pool import RayPool, RayProgress, SpanJob
from bioclass.inference.ray_worker import SpanScorer
from bioclass.runtime.ray_cluster import RaySettings
from bioclass.scan.distribute import ScoreJob
from bioclass.scan.journal import save_result
from bioclass.scan.options import ScanOptions
from bioclass.scan.work import FileOutcome, stored_outcome


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
        self.pool = RayPool(settings, scorer=scorer)
        self.on_progress = on_progress

    @property
    def progress(self) -> RayProgress:
        return self.pool.progress

    @property
    def ray(self) -> object | None:
        """The Ray module while the workers run, else None."""
        return self.pool.ray

    def start(self, model_paths: list[Path], options: ScanOptions) -> torch.device:
        self.pool.on_progress = self.on_progress
        return self.pool.start(model_paths, options.device, options.calibration)

    def close(self) -> None:
        self.pool.close()

    def run(
        self,
        files: list[Path],
        job: ScoreJob,
        consume: Callable[[FileOutcome], None],
        enough: Callable[[], bool],
    ) -> None:
        self.progress.files_total = len(files)
        outcomes: list[FileOutcome | None] = [None] * len(files)
        keys: dict[int, str] = {}
        for i, path in enumerate(files):
            known = stored_outcome(path, job.parts, job.params)
            if isinstance(known, FileOutcome):
                outcomes[i] = known.light()
            else:
                keys[i] = known
        options = job.options
        span_job = SpanJob(
            job.plan, options.mode, options.batch_size, options.channels, options.precision,
            job.output,
        )  # fmt: skip
        finished = self.pool.score_files({i: files[i] for i in keys}, span_job)
        next_out = 0
        # Workers still busy when the scan stops (--max-failures, Ctrl-C, an error) are killed
        # by `close`; what they were scoring is not needed.
        while next_out < len(files) and not enough():
            outcome = outcomes[next_out]
            if outcome is None:
                i, result = next(finished)
                if isinstance(result, str):
                    outcomes[i] = FileOutcome(files[i], keys[i], error=result)
                else:
                    save_result(job.parts, keys[i], result)
                    outcomes[i] = FileOutcome(files[i], keys[i], result=result).light()
                continue
            consume(outcome)
            self.progress.file_done(outcome.duration_s)
            if self.on_progress is not None:
                self.on_progress(self.progress)
            next_out += 1
