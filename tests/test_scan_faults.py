"""`bioclass scan` under faults: unreadable files retried, replaced files re-scanned, one scan
per output (the lock), impossible channel choices, progress where stderr is a log file."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from helpers import run_cli

import bioclass.scan.progress as progress
from bioclass.audio import AudioError, audio_info
from bioclass.core.errors import BioclassError
from bioclass.core.oserrors import os_error_reason
from bioclass.scan.journal import BLOCK, BLOCKS, fingerprint
from bioclass.scan.lock import OutputLock, OutputLocked
from bioclass.scan.progress import ProgressLog
from bioclass.synthetic.dataset import make_long_recording

RATE = 8000


def write_recording(path: Path, seed: int, seconds: float = 6.0) -> Path:
    make_long_recording(
        path, np.random.default_rng(seed), seconds, RATE, n_calls=2, species=["harmonic", "pulses"]
    )
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three 6 s mono recordings, scanned in name order."""
    root = tmp_path / "rec"
    root.mkdir()
    for i in range(3):
        write_recording(root / f"r{i}.wav", seed=i)
    return root


def scan(folder: Path, trained: Path, out: Path, *args: object) -> tuple[int, str]:
    return run_cli("scan", folder, "--model", trained / "model.pt", "--out", out, *args)


def deny_reading(monkeypatch: pytest.MonkeyPatch, victim: Path) -> None:
    """Make opening `victim` fail as a file without read permission does (works as root too)."""
    real_open = os.open

    def guarded(path, flags, *args, **kwargs):
        if Path(path).resolve() == victim.resolve():
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded)


def chmod_bites(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.write_bytes(b"x")
    probe.chmod(0)
    try:
        probe.read_bytes()
    except PermissionError:
        return True
    finally:
        probe.chmod(0o644)
    return False


# --- a failure is retried, never counted again ------------------------------------------------


def fail_decoding(monkeypatch: pytest.MonkeyPatch, victim: Path) -> None:
    """Make scoring `victim` fail as a transient read error would (e.g. a network share)."""
    import bioclass.scan.runner as runner

    real = runner.score_file

    def flaky(path, *args, **kwargs):
        if Path(path) == victim:
            raise AudioError(f"{path}: cannot decode audio (System error.)")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(runner, "score_file", flaky)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [(deny_reading, "cannot read file (permission denied)"), (fail_decoding, "System error.")],
)
def test_failed_file_is_retried_and_old_failures_do_not_stop_a_rerun(
    trained: Path,
    folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault,
    reason: str,
) -> None:
    out = tmp_path / "det.csv"
    with monkeypatch.context() as m:
        fault(m, folder / "r1.wav")
        code, output = scan(folder, trained, out, "--max-failures", "1")
        assert code == 1 and "stopped after 1 unreadable files" in output
        failed = pd.read_csv(tmp_path / "det.failed.csv")
        assert list(failed["file"]) == [str(folder / "r1.wav")]
        assert reason in failed["error"].iloc[0]
        # Still failing: it fails again (and counts, as a failure of this run).
        code, output = scan(folder, trained, out, "--max-failures", "1")
        assert code == 1 and "1 from an earlier run, 1 failed" in output
    # Fixed: the re-run scans it instead of repeating the old failure.
    code, output = scan(folder, trained, out, "--max-failures", "1")
    assert code == 0, output
    assert "3 (2 scanned, 1 from an earlier run, 0 failed)" in output
    assert pd.read_csv(tmp_path / "det.failed.csv").empty
    reference = tmp_path / "reference.csv"
    assert scan(folder, trained, reference)[0] == 0
    assert out.read_text() == reference.read_text()


def test_chmod_unreadable_file_is_retried_after_chmod(
    trained: Path, folder: Path, tmp_path: Path
) -> None:
    if not chmod_bites(tmp_path):
        pytest.skip("file permissions do not bite here (root with CAP_DAC_OVERRIDE)")
    victim = folder / "r0.wav"
    victim.chmod(0)
    try:
        code, output = scan(folder, trained, tmp_path / "det.csv")
        assert code == 0, output
        assert "cannot read file (permission denied)" in output
    finally:
        victim.chmod(0o644)
    code, output = scan(folder, trained, tmp_path / "det.csv", "--max-failures", "1")
    assert code == 0, output
    assert "1 scanned, 2 from an earlier run, 0 failed" in output


def test_audio_info_names_permission_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_recording(tmp_path / "a.wav", seed=0)
    deny_reading(monkeypatch, path)
    with pytest.raises(AudioError, match=r"cannot read file \(permission denied\)"):
        audio_info(path)
    assert os_error_reason(OSError(errno.EIO, "Input/output error")).startswith("input/output")
    assert os_error_reason(OSError(errno.ENOSPC, "No space left on device")) == (
        "no space left on device"
    )


# --- the content fingerprint ------------------------------------------------------------------


def test_replaced_file_with_same_size_and_mtime_is_rescanned(trained: Path, tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    folder.mkdir()
    path = write_recording(folder / "a.wav", seed=1)
    out = tmp_path / "det.csv"
    args = ("--keep-background", "--threshold", "0")
    assert scan(folder, trained, out, *args)[0] == 0
    before = os.stat(path)
    write_recording(path, seed=2)  # other audio, same length and format: same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # as `cp -p` or `rsync -t`
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    code, output = scan(folder, trained, out, *args)
    assert code == 0, output
    assert "1 (1 scanned, 0 from an earlier run" in output
    fresh = tmp_path / "fresh.csv"
    assert scan(folder, trained, fresh, *args)[0] == 0
    assert out.read_text() == fresh.read_text()


def fingerprint_of(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY)
    try:
        return fingerprint(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def test_fingerprint_covers_sampled_blocks_only(tmp_path: Path) -> None:
    size = 40 * BLOCK
    data = bytearray(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    original = fingerprint_of(path)
    starts = [i * (size - BLOCK) // (BLOCKS - 1) for i in range(BLOCKS)]
    for offset in (0, starts[2] + 5, size - 1):  # first block, a middle block, the last byte
        changed = bytearray(data)
        changed[offset] ^= 0xFF
        path.write_bytes(changed)
        assert fingerprint_of(path) != original, offset
    # The documented limit: a byte between sampled blocks is not seen.
    unsampled = BLOCK + (starts[1] - BLOCK) // 2
    changed = bytearray(data)
    changed[unsampled] ^= 0xFF
    path.write_bytes(changed)
    assert fingerprint_of(path) == original
    # A file no longer than the sampled blocks is read whole.
    small = tmp_path / "small.bin"
    small.write_bytes(bytes(data[: BLOCKS * BLOCK]))
    first = fingerprint_of(small)
    small.write_bytes(bytes(data[: BLOCKS * BLOCK - 1]) + b"\x00")
    assert fingerprint_of(small) != first


# --- one scan per output ----------------------------------------------------------------------

HOLD = """
import sys
from pathlib import Path
from bioclass.scan.lock import OutputLock
with OutputLock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_second_scan_into_the_same_output_is_refused(
    trained: Path, folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "det.csv"
    lock = tmp_path / "det.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, output = scan(folder, trained, out)
        assert code == 1
        assert f"pid {holder.pid} on {socket.gethostname()}" in output
        assert "another scan is writing these outputs" in output
        assert "Traceback" not in output
        assert not out.exists() and not (tmp_path / "det.parts").exists()
        assert json.loads(lock.read_text())["pid"] == holder.pid  # the holder's lock is intact
    finally:
        holder.communicate("")
    assert holder.returncode == 0
    assert not lock.exists(), "the holder releases the lock on exit"
    code, output = scan(folder, trained, out)
    assert code == 0, output
    assert not lock.exists()


def test_stale_lock_of_a_dead_process_is_taken_over(
    trained: Path, folder: Path, tmp_path: Path
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lock = tmp_path / "det.lock"
    stale = {
        "pid": gone.pid,
        "host": socket.gethostname(),
        "started": "2024-05-01T05:30:00+00:00",
        "command": "bioclass scan old",
    }
    lock.write_text(json.dumps(stale))
    code, output = scan(folder, trained, tmp_path / "det.csv")
    assert code == 0, output
    assert "taking over the lock" in output and f"pid {gone.pid}" in output
    assert not lock.exists()


def test_lock_left_by_another_host_is_not_taken(
    trained: Path, folder: Path, tmp_path: Path
) -> None:
    lock = tmp_path / "det.lock"
    other = {"pid": 1, "host": "elsewhere.invalid", "started": "t", "command": "bioclass scan"}
    lock.write_text(json.dumps(other))
    code, output = scan(folder, trained, tmp_path / "det.csv")
    assert code == 1
    assert "a scan on elsewhere.invalid holds these outputs" in output
    assert f"delete {lock}" in output
    assert json.loads(lock.read_text()) == other


def test_lock_is_released_on_error_and_ctrl_c(
    trained: Path, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = tmp_path / "det.lock"
    code, output = run_cli(
        "scan", folder, "--model", tmp_path / "missing.pt", "--out", tmp_path / "det.csv"
    )
    assert code == 1 and not lock.exists()

    import bioclass.scan.runner as runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "score_file", interrupted)
    code, output = scan(folder, trained, tmp_path / "det.csv")
    assert code == 130
    assert not lock.exists()


def test_lock_is_exclusive_within_one_process(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with OutputLock(path):
        assert json.loads(path.read_text())["pid"] == os.getpid()
        with pytest.raises(OutputLocked, match=f"pid {os.getpid()}"):
            OutputLock(path).acquire()
    assert not path.exists()
    with OutputLock(path):  # free again
        assert path.exists()


def test_lock_in_an_unwritable_folder_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(BioclassError, match="is a file, not a folder"):
        OutputLock(tmp_path / "file" / "x.lock").acquire()


# --- channels that do not exist, and scans where every file fails -------------------------------


def test_channel_that_no_input_has_is_refused_up_front(
    trained: Path, folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "det.csv"
    code, output = scan(folder, trained, out, "--channels", "5")
    assert code == 1
    assert "--channels 5: no input file has a channel 5" in output
    assert "have 1 channel(s)" in output
    assert not (tmp_path / "det.failed.csv").exists() and not (tmp_path / "det.lock").exists()


def test_channel_some_inputs_have_scans_those(trained: Path, folder: Path, tmp_path: Path) -> None:
    mono, _ = sf.read(folder / "r0.wav", dtype="float32")
    sf.write(folder / "r9_stereo.wav", np.stack([mono, mono], axis=1), RATE, subtype="PCM_16")
    code, output = scan(folder, trained, tmp_path / "det.csv", "--channels", "1")
    assert code == 0, output
    failed = pd.read_csv(tmp_path / "det.failed.csv")
    assert len(failed) == 3 and failed["error"].str.contains("channel 1 asked for").all()
    assert "4 (1 scanned" in output


def test_every_file_failing_is_an_error(trained: Path, tmp_path: Path) -> None:
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "a.wav").write_text("not audio")
    (folder / "b.flac").write_text("not audio either")
    code, output = scan(folder, trained, tmp_path / "det.csv")
    assert code == 1
    assert "none of the 2 file(s) could be scanned" in output
    assert len(pd.read_csv(tmp_path / "det.failed.csv")) == 2


# --- progress where stderr is not a terminal ----------------------------------------------------


def test_progress_log_writes_a_line_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    line = ProgressLog(total=5, interval_s=60, clock=lambda: now[0])
    with caplog.at_level("INFO", logger="bioclass.scan.progress"):
        for t in (30.0, 61.0, 90.0, 125.0, 130.0):
            now[0] = t
            line(Path("x.wav"), 1800.0)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "scan progress: 2/5 files, 1.00 h of audio in 1.0 min (59x real time)",
        "scan progress: 4/5 files, 2.00 h of audio in 2.1 min (58x real time)",
    ]


def test_scan_logs_progress_lines_when_stderr_is_not_a_terminal(
    trained: Path, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "INTERVAL_S", 0.0)
    code, output = scan(folder, trained, tmp_path / "det.csv")
    assert code == 0, output
    for done in (1, 2, 3):
        assert f"scan progress: {done}/3 files" in output
    monkeypatch.setattr(progress, "INTERVAL_S", 3600.0)
    code, output = scan(folder, trained, tmp_path / "again.csv")
    assert code == 0, output
    assert "scan progress" not in output
