"""One scan at a time per output: a lock file beside the outputs, held while a scan runs.

Two scans into the same `--out` share the stored parts and each would write the detections
table over the other's. The lock file `<stem>.lock` holds an exclusive `flock` for as long as
its scan runs and says who holds it (pid, host, start time, command) so a refusal can name it.
The kernel drops a `flock` when its process dies, however it dies (even `kill -9`), so a lock
file left behind on this host is known to be stale and is taken over with a note. A lock file
left by another host is not taken over: some network file systems (NFS mounted `nolock`) keep
locks local to each host, so a free `flock` there proves nothing about a scan on the other host.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shlex
import socket
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from bioclass.core.atomic import OutputError, folder_error_reason
from bioclass.core.errors import BioclassError

log = logging.getLogger(__name__)


class OutputLocked(BioclassError):
    """Another scan is writing the same outputs."""


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock, as written in the lock file."""

    pid: int
    host: str
    started: str
    command: str

    @classmethod
    def me(cls) -> Holder:
        return cls(
            pid=os.getpid(),
            host=socket.gethostname(),
            started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            command=shlex.join(sys.argv),
        )

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        """The holder a lock file names; None for an empty or unreadable one."""
        try:
            fields = json.loads(text)
            pid, host, started, command = (fields[k] for k in ("pid", "host", "started", "command"))
            return cls(int(pid), str(host), str(started), str(command))
        except (ValueError, KeyError, TypeError):
            return None

    def text(self) -> str:
        return json.dumps(asdict(self)) + "\n"

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started}: {self.command}"


def pid_running(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True


class OutputLock:
    """The lock of one scan's outputs: `with OutputLock(path): ...` holds it for the block.

    Raises (on entry):
        OutputLocked: a running scan holds it, or a scan on another host left it.
        OutputError: the lock file cannot be made (e.g. an unwritable folder).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = folder_error_reason(self.path.parent, exc)
            raise OutputError(f"cannot write {self.path}: {reason}") from None
        # A holder that releases deletes the file; one that opened it just before must then
        # lock the file now at the path, not the deleted one: hence the check and the retry.
        while True:
            fd = self._open()
            try:
                locked = self._flock(fd)
                if self._same_file(fd):
                    self._claim(fd, locked)
                    self._fd = fd
                    return
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)

    def release(self) -> None:
        """Delete the lock file and let go (a no-op when not held)."""
        if self._fd is None:
            return
        try:
            if self._same_file(self._fd):
                self.path.unlink()
        except OSError as exc:
            log.warning("could not remove the lock file %s (%s)", self.path, exc.strerror)
        finally:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            reason = folder_error_reason(self.path.parent, exc)
            raise OutputError(f"cannot write {self.path}: {reason}") from None

    def _flock(self, fd: int) -> bool:
        """Take the flock: True when taken, False where the file system has no locks."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = Holder.parse(self._read(fd))
            who = holder.describe() if holder else "details not written yet"
            raise OutputLocked(
                f"another scan is writing these outputs ({who}): wait for it to finish or "
                f"give another --out (lock file {self.path})"
            ) from None
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                raise OutputError(f"cannot lock {self.path}: {exc.strerror}") from None
            return False
        return True

    def _same_file(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)

    def _claim(self, fd: int, locked: bool) -> None:
        """Write this scan in the lock file, after checking that whoever it names is gone."""
        holder = Holder.parse(self._read(fd))
        me = Holder.me()
        if holder is not None:
            if holder.host != me.host:
                raise OutputLocked(
                    f"a scan on {holder.host} holds these outputs ({holder.describe()}): "
                    f"if it is no longer running there, delete {self.path} and re-run"
                )
            # On this host a free flock proves the holder is gone; without flock support
            # only a dead pid does.
            if not locked and pid_running(holder.pid):
                raise OutputLocked(
                    f"another scan is writing these outputs ({holder.describe()}): wait for it "
                    f"to finish or give another --out (lock file {self.path})"
                )
            log.warning(
                "taking over the lock %s left by a scan that is no longer running (%s)",
                self.path,
                holder.describe(),
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, me.text().encode(), 0)

    @staticmethod
    def _read(fd: int) -> str:
        return os.pread(fd, 1 << 16, 0).decode("utf-8", errors="replace")
