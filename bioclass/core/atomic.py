"""The one way bioclass writes a file: to a temporary file beside the target, flushed to disk,
then renamed over it.

A crash, a full disk or Ctrl-C mid-write leaves the previous file (or none) instead of a
truncated one, which a resumed run or another program would take for complete. The temporary
file sits in the target's folder because a rename is only atomic within one file system; its
name says which process writes it, so that the next run can remove what a killed one left (see
`tempnames`). Finished files get the mode the umask gives any new file (see `filemode`).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from bioclass.core import tempnames
from bioclass.core.errors import BioclassError
from bioclass.core.filemode import new_file_mode
from bioclass.core.oserrors import os_error_reason


class OutputError(BioclassError):
    """An output file that cannot be written (missing permission, full disk, not a folder)."""


def folder_error_reason(folder: Path, exc: OSError) -> str:
    """Why `folder` (or a file in it) could not be made: the errno's words, or, where mkdir met
    a file where a folder must be, which file that is (the errno alone does not say)."""
    if isinstance(exc, FileExistsError | NotADirectoryError):
        candidates = (folder, *folder.parents)
        blocker = next((p for p in candidates if p.exists() and not p.is_dir()), folder)
        return f"{blocker} is a file, not a folder"
    return os_error_reason(exc)


def _describe(path: Path, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {path}: {folder_error_reason(path.parent, exc)}")


class _DiskFile(io.FileIO):
    """The temporary file's raw layer, writing through `os.write` and remembering the first
    error: libraries that write through a file object (torch, soundfile) may report a full disk
    as an exception of their own, which the error kept here explains."""

    error: OSError | None = None

    def write(self, data: bytes) -> int:  # type: ignore[override]
        try:
            return os.write(self.fileno(), data)
        except OSError as exc:
            if self.error is None:
                self.error = exc
            raise


class StagedFile:
    """A file written under a temporary name and renamed into place by `commit`.

    `handle` is open for writing (text: UTF-8, newlines as written; or binary). Either `commit`
    or `discard` must be called; `discard` is safe to call after a failed commit. Writes to
    `handle` outside `atomic_file` go inside `with staged.writing():`, which turns a failed
    write into an `OutputError` naming the target.
    """

    def __init__(self, target: str | Path, binary: bool = False) -> None:
        self.target = Path(target)
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                prefix=tempnames.prefix(self.target.name),
                suffix=tempnames.SUFFIX,
                dir=self.target.parent,
            )
        except OSError as exc:
            raise _describe(self.target, exc) from None
        self.tmp = Path(tmp)
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, new_file_mode())  # mkstemp's 0600 would hide it from colleagues
        except OSError as exc:
            os.close(fd)
            self.tmp.unlink(missing_ok=True)
            raise _describe(self.target, exc) from None
        self.raw = _DiskFile(fd, "wb")
        buffered = io.BufferedWriter(self.raw)
        self.handle: IO = (
            buffered if binary else io.TextIOWrapper(buffered, encoding="utf-8", newline="")
        )

    def failure(self, exc: BaseException) -> OutputError | None:
        """The one-line error for `exc` raised while writing, when a write to disk failed."""
        if isinstance(exc, OSError):
            return _describe(self.target, exc)
        if isinstance(exc, Exception) and self.raw.error is not None:
            return _describe(self.target, self.raw.error)
        return None

    @contextmanager
    def writing(self) -> Iterator[IO]:
        """Write to `handle` in this block: a failed write discards the file and raises an
        `OutputError` naming the target; any other exception passes unchanged."""
        try:
            yield self.handle
        except BaseException as exc:
            error = self.failure(exc)
            if error is None:
                raise
            self.discard()
            raise error from None

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
    normally, discarded when it raises (a failed write as an `OutputError` naming `p`)."""
    staged = StagedFile(path, binary)
    try:
        with staged.writing() as handle:
            yield handle
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


def check_output_folder(
    folder: str | Path, what: str = "the output folder", recursive: bool = False
) -> None:
    """Make `folder` if missing and write a byte in it, so that a folder nothing can be written
    in (permissions, a read-only or full disk) stops a command before its long work, not after.

    First removes the temporary files killed runs left in it (below it too, with `recursive`).

    Raises:
        OutputError: one line naming the folder and why.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create {what} {folder}: {folder_error_reason(folder, exc)}"
        ) from None
    tempnames.remove_stale(folder, recursive)
    try:
        fd, probe = tempfile.mkstemp(
            prefix=tempnames.prefix("write-test"), suffix=tempnames.SUFFIX, dir=folder
        )
    except OSError as exc:
        raise OutputError(f"cannot write in {what} {folder}: {os_error_reason(exc)}") from None
    try:
        try:
            os.write(fd, b"\n")  # a full disk accepts a new empty file, not its first byte
            os.fsync(fd)
        finally:
            os.close(fd)  # a network file system may report a full disk only here
    except OSError as exc:
        raise OutputError(f"cannot write in {what} {folder}: {os_error_reason(exc)}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)
