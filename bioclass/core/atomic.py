"""The one way bioclass writes a file: to a temporary file beside the target, flushed to disk,
then renamed over it.

A crash, a full disk or Ctrl-C mid-write leaves the previous file (or none) instead of a
truncated one, which a resumed run or another program would take for complete. The temporary
file sits in the target's folder because a rename is only atomic within one file system.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from bioclass.core.errors import BioclassError


class OutputError(BioclassError):
    """An output file that cannot be written (missing permission, full disk, not a folder)."""


def folder_error_reason(folder: Path, exc: OSError) -> str:
    """Why `folder` (or a file in it) could not be made: the errno's words, or, where mkdir met
    a file where a folder must be, which file that is (the errno alone does not say)."""
    if isinstance(exc, FileExistsError | NotADirectoryError):
        candidates = (folder, *folder.parents)
        blocker = next((p for p in candidates if p.exists() and not p.is_dir()), folder)
        return f"{blocker} is a file, not a folder"
    return exc.strerror or type(exc).__name__


def _describe(path: Path, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {path}: {folder_error_reason(path.parent, exc)}")


class StagedFile:
    """A file written under a temporary name and renamed into place by `commit`.

    `handle` is open for writing (text: UTF-8, newlines as written; or binary). Either `commit`
    or `discard` must be called; `discard` is safe to call after a failed commit.
    """

    def __init__(self, target: str | Path, binary: bool = False) -> None:
        self.target = Path(target)
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent
            )
        except OSError as exc:
            raise _describe(self.target, exc) from None
        self.tmp = Path(tmp)
        text_args = {} if binary else {"encoding": "utf-8", "newline": ""}
        self.handle: IO = os.fdopen(fd, "wb" if binary else "w", **text_args)

    def commit(self) -> None:
        """Flush to disk and rename over the target; on failure the target is untouched."""
        try:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()
            os.replace(self.tmp, self.target)
        except OSError as exc:
            self.discard()
            raise _describe(self.target, exc) from None

    def discard(self) -> None:
        """Close and delete the temporary file; the target keeps its previous content."""
        if not self.handle.closed:
            # A full disk may refuse the last buffered bytes: the file is deleted anyway.
            with contextlib.suppress(OSError):
                self.handle.close()
        self.tmp.unlink(missing_ok=True)


@contextmanager
def atomic_file(path: str | Path, binary: bool = False) -> Iterator[IO]:
    """`with atomic_file(p) as f:` writes `p` atomically: committed when the block ends
    normally, discarded when it raises."""
    staged = StagedFile(path, binary)
    try:
        yield staged.handle
    except OSError as exc:  # writing into the temporary file failed (e.g. the disk is full)
        staged.discard()
        raise _describe(staged.target, exc) from None
    except BaseException:
        staged.discard()
        raise
    staged.commit()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """`with atomic_path(p) as tmp:` for writers that take a file name rather than a handle
    (torch.jit.save writes a large model by name several times faster): `tmp` is a temporary
    file beside `p`, to be overwritten in place, renamed over `p` when the block ends normally
    and deleted when it raises."""
    staged = StagedFile(path, binary=True)
    try:
        yield staged.tmp
    except OSError as exc:
        staged.discard()
        raise _describe(staged.target, exc) from None
    except BaseException:
        staged.discard()
        raise
    # fsync flushes the file, whichever descriptor wrote it: the staged handle covers it.
    staged.commit()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_file(path) as f:
        f.write(text)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_file(path, binary=True) as f:
        f.write(data)
