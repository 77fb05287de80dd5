"""The executable's exit without the interpreter's teardown (`core.process_exit`): what a normal
exit does for the outside world still happens — exit handlers, flushed output, exit codes, other
threads waited for — checked in fresh processes, since the exit ends the process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

import bioclass

ROOT = Path(bioclass.__file__).resolve().parents[1]


def python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def test_exit_handlers_run_and_buffered_output_is_flushed(tmp_path: Path) -> None:
    result = python(
        "import atexit, logging, pathlib\n"
        "from bioclass.core.process_exit import quick_exit\n"
        "log = logging.getLogger('t'); h = logging.FileHandler('log.txt', delay=True)\n"
        "log.addHandler(h); log.warning('kept')\n"
        "atexit.register(lambda: pathlib.Path('handler.txt').write_text('ran'))\n"
        "print('out' * 1000, end='')\n"  # stays in the pipe's buffer until the exit flushes it
        "quick_exit(3)\n",
        tmp_path,
    )
    assert result.returncode == 3
    assert result.stdout == "out" * 1000
    assert (tmp_path / "handler.txt").read_text() == "ran"
    assert (tmp_path / "log.txt").read_text() == "kept\n"


def test_status_means_what_sys_exit_makes_of_it(tmp_path: Path) -> None:
    prefix = "from bioclass.core.process_exit import quick_exit\n"
    assert python(prefix + "quick_exit(None)", tmp_path).returncode == 0
    text = python(prefix + "quick_exit('stopped: reason')", tmp_path)
    assert (text.returncode, text.stderr.strip()) == (1, "stopped: reason")


def test_a_running_thread_is_waited_for(tmp_path: Path) -> None:
    """A non-daemon thread still at work: the normal exit (which waits for it) runs instead."""
    result = python(
        "import pathlib, threading, time\n"
        "from bioclass.core.process_exit import quick_exit\n"
        "def work():\n"
        "    time.sleep(0.5); pathlib.Path('thread.txt').write_text('done')\n"
        "threading.Thread(target=work).start()\n"
        "quick_exit(4)\n",
        tmp_path,
    )
    assert result.returncode == 4
    assert (tmp_path / "thread.txt").read_text() == "done"


def test_a_failed_flush_of_stdout_is_reported(tmp_path: Path) -> None:
    """Standard output redirected to a full disk: one line on stderr and Python's status 120,
    as a normal exit would give, not a silent success."""
    result = python(
        "import errno, io, sys\n"
        "from bioclass.core.process_exit import quick_exit\n"
        "class Full(io.StringIO):\n"
        "    def flush(self):\n"
        "        raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "sys.stdout = Full()\n"
        "quick_exit(0)\n",
        tmp_path,
    )
    assert result.returncode == 120
    assert result.stderr.strip() == (
        "error: writing standard output failed: [Errno 28] No space left on device"
    )


def test_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    """`bioclass ... | head`: the reader leaving is its choice; the status stays the command's."""
    code = (
        "from bioclass.core.process_exit import quick_exit\n"
        "print('line\\n' * 2000, end='')\n"
        "quick_exit(0)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert writer.stdout is not None and writer.stderr is not None
    writer.stdout.read(5)
    writer.stdout.close()
    assert writer.wait(timeout=120) == 0
    assert writer.stderr.read() == b""


def test_the_executable_scans_and_reports_as_before(trained: Path, tmp_path: Path) -> None:
    """`python -m bioclass` goes through the quick exit: the outputs are whole, the report is
    printed, and errors keep their exit codes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def bioclass_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bioclass", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )

    sf.write(tmp_path / "a.wav", 0.1 * np.ones(3 * 8000, np.float32), 8000)
    out = tmp_path / "d.csv"
    done = bioclass_cli("scan", str(tmp_path / "a.wav"), "--no-such-option")
    assert done.returncode == 2 and "--no-such-option" in done.stderr  # click's usage status
    done = bioclass_cli(
        "scan", str(tmp_path / "a.wav"), "--model", str(trained / "model.pt"), "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert "detections" in done.stderr  # the report table
    rows = out.read_text().splitlines()
    assert rows[0].startswith("file,")
    assert json.loads((tmp_path / "d.manifest.json").read_text())["detections"] == len(rows) - 1
    missing = bioclass_cli(
        "scan", str(tmp_path / "nothing.wav"), "--model", str(trained / "model.pt"),
        "--out", str(tmp_path / "e.csv"),
    )  # fmt: skip
    assert missing.returncode == 1
    assert missing.stderr.strip().startswith("error:") and "nothing.wav" in missing.stderr
