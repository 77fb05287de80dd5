"""`bioclass scan --ray`: the Ray distributor built from the command's options.

Imported only when `--ray` is given; Ray itself is imported when the scan starts its workers
(`runtime.ray_cluster`), so a missing Ray is one line that says how to install it.
"""

from __future__ import annotations

from bioclass.runtime.ray_cluster import RaySettings, import_ray
from bioclass.scan.ray_dispatch import RayDistributor


def ray_distributor(
    address: str,
    workers: int | None,
    cpus_per_worker: float,
    gpus_per_worker: float,
    segment_minutes: float | None,
) -> RayDistributor:
    """A distributor for `--ray ADDRESS` and the --ray-* options, checked before anything runs
    (the options, and that Ray is installed)."""
    settings = RaySettings(address, workers, cpus_per_worker, gpus_per_worker, segment_minutes)
    import_ray()
    return RayDistributor(settings)
