"""The checks Click makes on the command line's options, made on the API's keyword arguments:
a bad value is one `BioclassError` naming the argument, before any model loads."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from bioclass.core.errors import BioclassError

DEVICES = ("auto", "cpu", "cuda", "mps")
MODES = ("fast", "exact")
PRECISIONS = ("auto", "fp32", "bf16", "amp")


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise BioclassError(f"{name} must be a number, got {value!r}")
    return float(value)


def positive(name: str, value: Any) -> float:
    if _real(name, value) <= 0:
        raise BioclassError(f"{name} must be positive, got {value!r}")
    return float(value)


def at_least_zero(name: str, value: Any) -> float:
    if _real(name, value) < 0:
        raise BioclassError(f"{name} must be 0 or more, got {value!r}")
    return float(value)


def fraction(name: str, value: Any) -> float:
    if not 0 <= _real(name, value) <= 1:
        raise BioclassError(f"{name} must be between 0 and 1, got {value!r}")
    return float(value)


def overlap(name: str, value: Any) -> float:
    if not 0 <= _real(name, value) < 1:
        raise BioclassError(f"{name} must be at least 0 and below 1, got {value!r}")
    return float(value)


def count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise BioclassError(f"{name} must be a whole number of at least 1, got {value!r}")
    return int(value)


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BioclassError(f"{name} must be True or False, got {value!r}")
    return value


def path(name: str, value: Any) -> Path:
    if not isinstance(value, (str, Path)) or not str(value):
        raise BioclassError(f"{name} must be a file path, got {value!r}")
    return Path(value)


def one_of(choices: Iterable[str]) -> Callable[[str, Any], str]:
    allowed = tuple(choices)

    def check(name: str, value: Any) -> str:
        if value not in allowed:
            raise BioclassError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        return value

    return check


def channels(name: str, value: Any) -> str | int:
    if value in ("mix", "each"):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0:
        return int(value)
    raise BioclassError(f"{name} must be 'mix', 'each' or a channel number (0 = first)")


def formats(name: str, value: Any) -> tuple[str, ...]:
    from bioclass.scan.options import FORMATS

    chosen = (value,) if isinstance(value, str) else tuple(value)
    unknown = [f for f in chosen if f not in FORMATS]
    if not chosen or unknown:
        raise BioclassError(f"{name} must name some of {', '.join(FORMATS)}, got {value!r}")
    return chosen


def backend(name: str, value: Any) -> str:
    from bioclass.scan.options import BACKENDS

    return one_of(BACKENDS)(name, value)


Rule = Callable[[str, Any], Any]

# The inference options `predict`, `scan` and `embed` share (as the CLI's options check them).
INFERENCE = {
    "channels": channels,
    "batch_size": count,
    "device": one_of(DEVICES),
    "mode": one_of(MODES),
    "precision": one_of(PRECISIONS),
}

SCAN = {
    **INFERENCE,
    "hop_seconds": positive,
    "overlap": overlap,
    "workers": count,
    "keep_background": flag,
    "merge": flag,
    "min_gap_s": at_least_zero,
    "min_duration_s": at_least_zero,
    "event_edges": one_of(("window", "centre")),
    "split_valleys": at_least_zero,
    "threshold": fraction,
    "thresholds_csv": path,
    "formats": formats,
    "scores_path": path,
    "max_failures": count,
    "metadata": flag,
    "calibration": one_of(("on", "off")),
    "backend": backend,
}

EMBED = {**INFERENCE, "window_seconds": positive, "hop_seconds": positive}


def checked(what: str, given: Mapping[str, Any], rules: Mapping[str, Rule]) -> dict[str, Any]:
    """`given` with every value checked by its rule (None means the default and passes);
    an argument without a rule is refused by name."""
    unknown = sorted(set(given) - set(rules))
    if unknown:
        raise BioclassError(
            f"{what}: unknown argument(s) {', '.join(unknown)} (known: {', '.join(sorted(rules))})"
        )
    return {k: v if v is None else rules[k](k, v) for k, v in given.items()}
