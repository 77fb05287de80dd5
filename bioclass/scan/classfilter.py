"""`scan --classes` / `--exclude-classes`: which labels a scan writes.

The filters choose labels at the output stage: a window's labels are decided by the scan's rule
over all the model's classes (a filter never lets another class win a window), and the labels
filtered out are not written. The stored scores do not depend on them, so changing a filter
re-uses every stored part.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bioclass.core.errors import BioclassError
from bioclass.core.oserrors import os_error_reason
from bioclass.scan.options import ScanOptions


def class_list(value: str | None, flag: str) -> tuple[str, ...] | None:
    """Class names from `a,b` or `@FILE` (one name per line, blank lines and `#` comments
    skipped); None when the option was not given.

    Raises:
        BioclassError: an unreadable file, or no name at all.
    """
    if value is None:
        return None
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise BioclassError(f"{flag} {value}: {os_error_reason(exc)}") from None
        except UnicodeDecodeError:
            raise BioclassError(f"{flag} {value}: not a UTF-8 text file") from None
        names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    else:
        names = [name.strip() for name in value.split(",")]
    chosen = tuple(dict.fromkeys(name for name in names if name))
    if not chosen:
        raise BioclassError(f"{flag} {value}: no class name in it")
    return chosen


def written_classes(classes: list[str], options: ScanOptions) -> np.ndarray:
    """(C,) bool: the classes whose labels the scan writes.

    Raises:
        BioclassError: a name the model does not have (the known ones are listed), or filters
            that leave no class to write.
    """
    known = set(classes)
    given = (("--classes", options.classes_filter), ("--exclude-classes", options.exclude_classes))
    for flag, names in given:
        unknown = [n for n in names or () if n not in known]
        if unknown:
            raise BioclassError(
                f"{flag}: the model has no class {', '.join(map(repr, unknown))}; "
                f"its classes are {', '.join(classes)}"
            )
    keep = np.ones(len(classes), dtype=bool)
    if options.classes_filter is not None:
        keep &= np.isin(classes, options.classes_filter)
    keep &= ~np.isin(classes, list(options.exclude_classes))
    if not keep.any():
        raise BioclassError("--classes and --exclude-classes leave no class to write")
    return keep
