"""Outputs that cannot be written: a folder without permission, a read-only or full disk, a run
killed mid-write. Each is one line naming the path and the reason, exit code 1, before the work
where it can be known before, and never a temporary file left behind; finished files get the
mode the umask gives any new file.

Faults are injected at the calls the atomic writer makes (os.open, os.mkdir, os.write,
os.replace), for the paths of one folder only, as a read-only or full file system would refuse
them.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from helpers import run_cli_streams, write_recipe

from bioclass.checkpoint import atomic_save
from bioclass.core import filemode, tempnames
from bioclass.core.atomic import OutputError, atomic_file, atomic_write_text
from bioclass.core.oserrors import os_error_reason
from bioclass.outputs import writers
from bioclass.outputs.event import Event
from bioclass.runtime.rundir import RunDirectory

ROOT = Path(__file__).resolve().parents[1]
READ_ONLY, FULL = errno.EROFS, errno.ENOSPC
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT

needs_proc = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="tells a descriptor's file by /proc/self/fd"
)


def refuse(
    monkeypatch: pytest.MonkeyPatch,
    folder: Path,
    code: int,
    calls: tuple[str, ...],
    name_part: str = "",
) -> None:
    """Make `calls` on paths below `folder` (whose name holds `name_part`) fail with `code`.

    os.open only when opening for writing; os.write by the descriptor's path (Linux).
    """
    below = os.path.realpath(folder) + os.sep

    def hit(path: object) -> bool:
        text = os.path.realpath(os.fspath(path))  # type: ignore[arg-type]
        return text.startswith(below) and name_part in os.path.basename(text)

    def fail() -> None:
        raise OSError(code, os.strerror(code))

    real = {name: getattr(os, name) for name in ("open", "mkdir", "write", "replace")}

    def fake_open(path, flags, *args, **kwargs):
        if "open" in calls and flags & WRITE_FLAGS and hit(path):
            fail()
        return real["open"](path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if "mkdir" in calls and hit(path):
            fail()
        return real["mkdir"](path, *args, **kwargs)

    def fake_write(fd, data):
        if "write" in calls:
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                target = ""
            if hit(target):
                fail()
        return real["write"](fd, data)

    def fake_replace(src, dst, *args, **kwargs):
        if "replace" in calls and hit(dst):
            fail()
        return real["replace"](src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    monkeypatch.setattr(os, "write", fake_write)
    monkeypatch.setattr(os, "replace", fake_replace)


def read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    refuse(monkeypatch, folder, READ_ONLY, ("open", "mkdir", "write", "replace"))


def temporaries(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.tmp"))


def one_error_line(code: int, stderr: str, *parts: str) -> str:
    """The command failed with exit code 1 and one error line holding `parts`; no traceback."""
    assert code == 1, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, stderr
    for part in parts:
        assert part in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """Six seconds of chirps at 8 kHz: several windows for the tiny model."""
    t = np.arange(6 * 8000) / 8000
    wave = (0.4 * np.sin(2 * np.pi * (300 + 200 * t) * t)).astype(np.float32)
    path = tmp_path / "audio" / "rec_20240501_053000.wav"
    path.parent.mkdir()
    sf.write(str(path), wave, 8000, subtype="PCM_16")
    return path


# --- the words ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.EACCES, "permission denied"),
        (errno.EPERM, "permission denied"),
        (errno.EROFS, "read-only file system"),
        (errno.ENOSPC, "no space left on device"),
        (getattr(errno, "EDQUOT", errno.ENOSPC), None),
        (errno.EIO, "input/output error (failing disk or network share?)"),
        (errno.ENOTCONN, os.strerror(errno.ENOTCONN)),  # not in the table: the system's words
    ],
)
def test_errno_values_in_plain_words(code: int, words: str | None) -> None:
    if words is None:  # EDQUOT where the platform has it
        if not hasattr(errno, "EDQUOT"):
            pytest.skip("no disk quotas on this platform")
        words = "disk quota exceeded"
    assert os_error_reason(OSError(code, os.strerror(code))) == words


# --- up-front checks: before the models load, nothing done -------------------------------------


def _commands(tmp_path: Path, dataset: Path, out: Path) -> dict[str, list[object]]:
    """Each command writing below `out`, with a model that does not exist: a folder error
    instead of 'not found' shows that the folder was checked first."""
    missing = tmp_path / "missing.pt"
    detections = tmp_path / "det.csv"
    detections.write_text("file,start_time,end_time,label,score,mean_score,n_windows\n")
    table = tmp_path / "truth.csv"
    table.write_text("file,start_time,end_time,label\nx.wav,0,1,a\n")
    recipe = write_recipe(tmp_path, dataset / "labels.csv")
    return {
        "scan": ["scan", dataset, "--model", missing, "--out", out / "det.csv"],
        "scan-scores": [
            "scan",
            dataset,
            "--model",
            missing,
            "--out",
            tmp_path / "det2.csv",
            "--scores",
            out / "s.csv",
        ],
        "embed": ["embed", dataset, "--model", missing, "--out", out / "emb.csv"],
        "evaluate": ["evaluate", missing, dataset / "labels.csv", "--out", out / "m.json"],
        "evaluate-predictions": [
            "evaluate",
            missing,
            dataset / "labels.csv",
            "--predictions",
            out / "p.csv",
        ],
        "evaluate-annotations": [
            "evaluate",
            missing,
            "--annotations",
            table,
            "--out",
            out / "r.json",
        ],
        "train": ["train", recipe, "--out", out / "run"],
        "pretrain": [
            "pretrain",
            dataset,
            "--recipe",
            ROOT / "recipes" / "pretrain_simclr.yaml",
            "--out",
            out / "run",
        ],
        "review": ["review", detections, "--out", out / "review"],
    }


COMMANDS = [
    "scan",
    "scan-scores",
    "embed",
    "evaluate",
    "evaluate-predictions",
    "evaluate-annotations",
    "train",
    "pretrain",
    "review",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_read_only_output_folder_is_one_line_before_any_work(
    command: str, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "results"
    out.mkdir()
    args = _commands(tmp_path, dataset, out)[command]
    read_only(monkeypatch, out)
    code, _, stderr = run_cli_streams(*args)
    line = one_error_line(code, stderr, str(out), "read-only file system")
    assert len(stderr.strip().splitlines()) == 1, stderr  # nothing started: no progress, no log
    assert "missing.pt" not in line
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("command", ["scan", "train", "review", "evaluate"])
def test_full_disk_is_found_before_any_work(
    command: str, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full disk still makes an empty file: only a byte written shows it.
    out = tmp_path / "results"
    out.mkdir()
    args = _commands(tmp_path, dataset, out)[command]
    if sys.platform != "linux":
        pytest.skip("tells a descriptor's file by /proc/self/fd")
    refuse(monkeypatch, out, FULL, ("write",))
    code, _, stderr = run_cli_streams(*args)
    one_error_line(code, stderr, str(out), "no space left on device")
    assert temporaries(out) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in any folder, whatever its mode")
@pytest.mark.parametrize("command", COMMANDS)
def test_unwritable_output_folder_is_one_line_before_any_work(
    command: str, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    out.mkdir()
    args = _commands(tmp_path, dataset, out)[command]
    out.chmod(0o500)
    try:
        code, _, stderr = run_cli_streams(*args)
    finally:
        out.chmod(0o700)
    line = one_error_line(code, stderr, str(out), "permission denied")
    assert "missing.pt" not in line
    assert list(out.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in any folder, whatever its mode")
def test_unwritable_folder_in_a_real_process(tmp_path: Path) -> None:
    out = tmp_path / "locked"
    out.mkdir(mode=0o500)
    result = subprocess.run(
        [sys.executable, "-m", "bioclass", "scan", str(tmp_path), "--model", "none.pt", "--out"]
        + [str(out / "det.csv")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: cannot write in the output folder {out}: permission denied"
    )


# --- faults during the scan --------------------------------------------------------------------


def _scan(recording: Path, model: Path, out: Path, *extra: object) -> tuple[int, str, str]:
    return run_cli_streams(
        "scan", recording, "--model", model, "--out", out / "det.csv", "--format", "csv", *extra
    )


@needs_proc
@pytest.mark.parametrize(
    ("code", "calls", "words"),
    [(FULL, ("write",), "no space left on device"), (READ_ONLY, ("replace",), "read-only")],
)
def test_fault_while_writing_parts(
    code: int,
    calls: tuple[str, ...],
    words: str,
    trained: Path,
    recording: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out"
    refuse(monkeypatch, out / "det.parts", code, calls, name_part=".npz")
    status, _, stderr = _scan(recording, trained / "model.pt", out)
    line = one_error_line(status, stderr, str(out / "det.parts"), ".npz", words)
    assert line.startswith("error: cannot write ")
    assert temporaries(out) == []
    assert not (out / "det.csv").exists()
    assert list((out / "det.parts").iterdir()) == []


@needs_proc
@pytest.mark.parametrize(
    ("target", "code", "calls", "words"),
    [
        ("det.csv", FULL, ("write",), "no space left on device"),
        ("det.scores.csv", FULL, ("write",), "no space left on device"),
        ("det.scores.parquet", FULL, ("write",), "no space left on device"),
        ("det.selections.txt", FULL, ("write",), "no space left on device"),
        ("det.csv", READ_ONLY, ("replace",), "read-only file system"),
        ("det.manifest.json", READ_ONLY, ("open",), "read-only file system"),
    ],
)
def test_fault_while_writing_the_final_outputs(
    target: str,
    code: int,
    calls: tuple[str, ...],
    words: str,
    trained: Path,
    recording: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out"
    scores = out / (target if "scores" in target else "det.scores.csv")
    extra = ("--scores", scores, "--raven-combined")
    # The temporary file of `target` is `.<target>.<host>-<pid>.<random>.tmp`.
    name_part = f".{target}." if "write" in calls or "open" in calls else target
    with monkeypatch.context() as patch:
        refuse(patch, out, code, calls, name_part=name_part)
        status, _, stderr = _scan(recording, trained / "model.pt", out, *extra)
    one_error_line(status, stderr, str(out / target), words)
    assert temporaries(out) == []
    if target != "det.manifest.json":  # the manifest is written after the detections table
        assert not (out / "det.csv").exists(), "the detections table means: all is complete"
    assert len(list((out / "det.parts").glob("*.npz"))) == 1, "the scores are kept"
    # Once there is room again, the same command finishes from the stored scores.
    status, _, stderr = _scan(recording, trained / "model.pt", out, *extra)
    assert status == 0, stderr
    assert "1 from an earlier run" in stderr
    assert (out / "det.csv").is_file() and temporaries(out) == []


def _events(n: int) -> list[Event]:
    return [
        Event("/data/rec.wav", None, k * 0.5, k * 0.5 + 1.0, "bird", 0.9, 0.8, 1) for k in range(n)
    ]


def _fill(kind: str, target: Path) -> None:
    """Write a table far larger than the write buffer, so the disk sees it before the end."""
    n = 5000
    if kind == "detections":
        table = writers.DetectionsCsv(target, False, False, None, target.parent)
        table.add(_events(n))
    elif kind == "raven":
        table = writers.CombinedRavenTable(target, target.with_suffix(".list"), (0.0, 4000.0))
        table.add("/data/rec.wav", n / 2, _events(n))
    else:
        table = writers.ScoreMatrix(target)
        starts = np.arange(n) * 0.5
        frame = pd.DataFrame({"file": "/data/rec.wav", "start_time": starts, "bird": 0.5})
        table.add(frame)
        table.add(frame)


@needs_proc
@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("detections", "det.csv"),
        ("raven", "det.selections.txt"),
        ("scores", "s.csv"),
        ("scores", "s.parquet"),
    ],
)
def test_full_disk_in_the_middle_of_a_table(
    kind: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse(monkeypatch, tmp_path, FULL, ("write",))
    with pytest.raises(OutputError, match=rf"cannot write .*{name}: no space left on device"):
        _fill(kind, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_inside_a_library_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torch reports a failed write through a file object as its own RuntimeError; the writer
    # remembers the OSError underneath.
    if sys.platform != "linux":
        pytest.skip("tells a descriptor's file by /proc/self/fd")
    refuse(monkeypatch, tmp_path, FULL, ("write",), name_part="model.pt")
    with pytest.raises(OutputError, match=r"cannot write .*model\.pt: no space left on device"):
        atomic_save({"weights": torch.zeros(300_000)}, tmp_path / "model.pt")
    assert list(tmp_path.iterdir()) == []


def test_other_exceptions_pass_unchanged(tmp_path: Path) -> None:
    with pytest.raises(KeyError), atomic_file(tmp_path / "a.txt") as f:
        f.write("x")
        raise KeyError("not a disk problem")
    assert list(tmp_path.iterdir()) == []


@needs_proc
def test_full_disk_while_cutting_review_clips(
    recording: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    detections = tmp_path / "det.csv"
    detections.write_text(
        "file,start_time,end_time,label,score,mean_score,n_windows\n"
        f"{recording},0.0,6.0,bird,0.9,0.9,1\n"  # 96 kB of WAV: written before the end
    )
    out = tmp_path / "review"
    refuse(monkeypatch, out, FULL, ("write",), name_part=".wav")
    # An exception a C callback swallows is printed as a traceback by sys.unraisablehook.
    swallowed: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", swallowed.append)
    code, _, stderr = run_cli_streams("review", detections, "--out", out, "--clip-format", "wav")
    one_error_line(code, stderr, ".wav", "no space left on device")
    assert swallowed == []
    assert temporaries(out) == []


# --- what a killed run left --------------------------------------------------------------------


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def leftover(folder: Path, target: str, pid: int, host: str = tempnames.HOST) -> Path:
    """A temporary file as the writer names it, for `target`, of process `pid` on `host`."""
    folder.mkdir(parents=True, exist_ok=True)
    name = tempnames.prefix(target, pid).replace(f".{tempnames.HOST}-", f".{host}-")
    path = folder / f"{name}k1ll3d_x{tempnames.SUFFIX}"
    path.write_text("half a table")
    return path


def test_temporary_files_of_killed_runs_are_removed_by_the_next_scan(
    trained: Path, recording: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    pid = dead_pid()
    stale = [
        leftover(out, "det.csv", pid),
        leftover(out, "det.scores.csv", pid),
        leftover(out / "det.parts", "0123456789abcdef0123.npz", pid),
        leftover(out / "det.audacity" / "sub", "rec.txt", pid),
    ]
    kept = [
        leftover(out, "det.csv", os.getpid()),  # a live writer's
        leftover(out, "det.csv", pid, host="elsewhere"),  # another machine's
    ]
    unrelated = out / ".det.csv.abc123.tmp"  # not a name bioclass writes: not ours to judge
    unrelated.write_text("x")
    code, _, stderr = _scan(
        recording,
        trained / "model.pt",
        out,
        "--format",
        "audacity",
        "--scores",
        out / "det.scores.csv",
    )
    assert code == 0, stderr
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept) and unrelated.exists()
    assert "removed" in stderr and "killed" in stderr


def test_run_directory_with_only_a_killed_runs_temporary_is_new(tmp_path: Path) -> None:
    run = tmp_path / "run"
    stale = leftover(run, "last.pt", dead_pid())
    assert RunDirectory.create(run).path == run
    assert not stale.exists() and list(run.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "gone"),
    [
        (".det.csv.{host}-{dead}.ab_c9.tmp", True),
        (".my.table.v2.csv.{host}-{dead}.ab_c9.tmp", True),
        (".det.csv.{host}-{live}.ab_c9.tmp", False),
        (".det.csv.otherhost-{dead}.ab_c9.tmp", False),
        (".det.csv.{host}-0.ab_c9.tmp", False),
        (".det.csv.ab_c9.tmp", False),
        ("det.csv.{host}-{dead}.ab_c9.tmp", False),
        (".det.csv.{host}-{dead}.ab_c9.tmp.bak", False),
    ],
)
def test_which_temporary_files_are_certainly_stale(name: str, gone: bool) -> None:
    filled = name.format(host=tempnames.HOST, dead=dead_pid(), live=os.getpid())
    assert tempnames.writer_gone(filled) is gone


# --- file modes --------------------------------------------------------------------------------


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request: pytest.FixtureRequest) -> int:
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_files_get_the_umask_mode(umask: int, tmp_path: Path) -> None:
    expected = 0o666 & ~umask
    atomic_write_text(tmp_path / "table.csv", "a\n")
    RunDirectory.create(tmp_path / "run").save_checkpoint("model.pt", {"w": torch.zeros(3)})
    assert mode(tmp_path / "table.csv") == expected
    assert mode(tmp_path / "run" / "model.pt") == expected


def test_scan_outputs_get_the_umask_mode(
    umask: int, trained: Path, recording: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, _, stderr = _scan(
        recording,
        trained / "model.pt",
        out,
        "--raven-combined",
        "--format",
        "audacity",
        "--format",
        "kaleidoscope",
        "--scores",
        out / "det.scores.parquet",
    )
    assert code == 0, stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {
        "det.csv",
        "det.selections.txt",
        "det.selections.files.txt",
        "rec_20240501_053000.selections.txt",
        "det.kaleidoscope.csv",
        "det.scores.parquet",
        "det.manifest.json",
        "det.failed.csv",
        "rec_20240501_053000.txt",
    }
    assert any(p.suffix == ".npz" for p in files)
    assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(0o666 & ~umask) for p in files}


def test_umask_without_proc_is_the_one_read_at_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(filemode, "_FROM_PROC", False)
    monkeypatch.setattr(filemode, "_AT_IMPORT", 0o027)
    atomic_write_text(tmp_path / "a.csv", "x")
    assert mode(tmp_path / "a.csv") == 0o640


def test_umask_is_read_without_changing_it() -> None:
    code = (
        "import os; os.umask(0o002); from bioclass.core import filemode; "
        "print(oct(filemode.current_umask()), oct(os.umask(0o002)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.stdout.split() == ["0o2", "0o2"]
