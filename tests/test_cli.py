"""The command line as a guide: help, -v/-q anywhere, one argument order, early refusals, class
filters and top-n, and no library noise on stderr."""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from click.testing import CliRunner
from helpers import run_cli, run_cli_streams

from bioclass.cli import WORKFLOW, main
from bioclass.core.stderr_filter import library_noise_filtered
from bioclass.runtime import workers
from bioclass.synthetic.dataset import make_long_recording

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["background", "harmonic", "pulses"]  # the `trained` fixture's


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two short recordings with calls of both species."""
    folder = tmp_path_factory.mktemp("cli_recordings")
    rng = np.random.default_rng(11)
    for i in range(2):
        make_long_recording(
            folder / f"rec{i}.wav", rng, 10.0 + 2 * i, 8000, n_calls=3, species=CLASSES[1:]
        )
    return folder


def help_text(*args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


# --- help ---


def test_help_lists_the_commands_in_workflow_order_with_whole_summaries() -> None:
    text = help_text()
    section = text[text.index("Commands:") :].splitlines()[1:]
    rows = [line.split(None, 1) for line in section if line.strip()]
    assert [name for name, _ in rows] == list(WORKFLOW)
    for name, summary in rows:
        assert not summary.rstrip().endswith("..."), f"{name}: summary cut off: {summary}"
        assert summary == main.commands[name].short_help, name


@pytest.mark.parametrize("command", WORKFLOW)
def test_every_command_help_ends_with_examples(command: str) -> None:
    lines = [line.strip() for line in help_text(command).splitlines() if line.strip()]
    examples = lines[lines.index("Examples:") + 1 :]
    assert 1 <= len(examples) <= 2
    assert all(line.startswith(f"bioclass {command} ") for line in examples), examples


def test_scan_help_groups_its_options() -> None:
    text = help_text("scan")
    headings = ["Inputs:", "Windows:", "Decisions:", "Outputs:", "Performance:", "Other options:"]
    positions = [text.index(h) for h in headings]
    assert positions == sorted(positions)
    decisions = text[text.index("Decisions:") : text.index("Outputs:")]
    for flag in ("--threshold", "--classes", "--exclude-classes", "--top-n", "--min-gap"):
        assert flag in decisions
    assert "--model" in text[: text.index("Windows:")]
    assert "--workers" in text[text.index("Performance:") :]


# --- -v / -q ---


def test_verbose_and_quiet_after_the_command(
    trained: Path, recordings: Path, tmp_path: Path
) -> None:
    model = trained / "model.pt"
    out = tmp_path / "d.csv"
    code, stdout, stderr = run_cli_streams("scan", recordings, "--model", model, "--out", out)
    assert code == 0 and "detections" in stderr and "scanning" in stderr
    quiet = tmp_path / "q.csv"
    code, stdout, stderr = run_cli_streams(
        "scan", recordings, "--model", model, "--out", quiet, "-q"
    )
    assert code == 0 and stderr == "" and stdout == ""
    assert quiet.read_text() == out.read_text()
    # Errors still print with -q, given before or after the command.
    for args in (["-q", "scan", tmp_path / "none.wav"], ["scan", tmp_path / "none.wav", "-q"]):
        code, output = run_cli(*args, "--model", model, "--out", tmp_path / "e.csv")
        assert code == 1 and "no such file or folder" in output
    logger = logging.getLogger("bioclass")
    code, _ = run_cli("models", "--classes", "2", "-v")
    assert code == 0 and logger.level == logging.DEBUG
    code, _ = run_cli("-v", "models", "--classes", "2", "--quiet")  # the last one given wins
    assert code == 0 and logger.level == logging.WARNING
    code, _ = run_cli("models", "--classes", "2")  # and the next invocation starts afresh
    assert code == 0 and logger.level == logging.INFO


# --- embed: the argument order of scan ---


def test_embed_takes_model_as_scan_does_and_the_old_order_with_a_note(
    trained: Path, recordings: Path, tmp_path: Path
) -> None:
    model = trained / "model.pt"
    new, old = tmp_path / "new.csv", tmp_path / "old.csv"
    code, output = run_cli("embed", recordings, "--model", model, "--out", new)
    assert code == 0, output
    assert "deprecated" not in output
    code, output = run_cli("embed", model, recordings, "--out", old)
    assert code == 0, output
    assert "deprecated" in output and f"--model {model}" in output
    assert old.read_text() == new.read_text()
    code, output = run_cli("embed", recordings, "--out", tmp_path / "x.csv")
    assert code == 1 and "give the model with --model" in output


# --- checks before any progress bar ---


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "checkpoint not found"),
        ("text", "not a readable"),
        ("hop", "longer than the model's window"),
        ("class", "the model has no class 'owl'; its classes are background, harmonic, pulses"),
        ("exclude", "the model has no class 'frog'"),
        ("none-left", "leave no class to write"),
        ("truth", "truth table not found"),
    ],
)
def test_scan_refuses_before_the_progress_bar(
    trained: Path, recordings: Path, tmp_path: Path, case: str, expected: str
) -> None:
    model = trained / "model.pt"
    text = tmp_path / "notes.pt"
    text.write_text("not a model\n")
    extra = {
        "missing": ["--model", tmp_path / "nowhere.pt"],
        "text": ["--model", text],
        "hop": ["--model", model, "--hop", "1.5"],
        "class": ["--model", model, "--classes", "harmonic,owl"],
        "exclude": ["--model", model, "--exclude-classes", "frog"],
        "none-left": ["--model", model, "--classes", "pulses", "--exclude-classes", "pulses"],
        "truth": ["--model", model, "--truth", tmp_path / "truth.csv"],
    }[case]
    out = tmp_path / "d.csv"
    code, output = run_cli("scan", recordings, *extra, "--out", out)
    assert code == 1, output
    assert expected in output
    assert "scanning" not in output  # no progress bar was drawn
    assert "Traceback" not in output
    assert not out.exists()


def test_embed_refuses_a_bad_model_before_the_progress_bar(
    recordings: Path, tmp_path: Path
) -> None:
    code, output = run_cli(
        "embed", recordings, "--model", tmp_path / "nowhere.pt", "--out", tmp_path / "e.csv"
    )
    assert code == 1 and "checkpoint not found" in output
    assert "embedding" not in output


# --- class filters and top-n ---


def scan_table(*args: object) -> tuple[pd.DataFrame, dict, str]:
    out = Path(str(args[args.index("--out") + 1]))
    code, output = run_cli("scan", *args)
    assert code == 0, output
    manifest = json.loads(out.with_name(out.stem + ".manifest.json").read_text())
    return pd.read_csv(out), manifest, output


def test_class_filters_keep_a_subset_and_reuse_the_stored_scores(
    trained: Path, recordings: Path, tmp_path: Path
) -> None:
    out = tmp_path / "d.csv"
    model = trained / "model.pt"
    # Every window labelled with every class (a tiny model's top class is always the same).
    common = [recordings, "--model", model, "--out", out, "--threshold", "0", "--keep-background"]
    common += ["--top-n", "3", "--no-merge"]
    full, manifest, _ = scan_table(*common)
    assert full["label"].value_counts().to_dict() == {c: len(full) // 3 for c in CLASSES}
    assert manifest["files_scanned"] == 2 and manifest["classes_filter"] is None

    only, manifest, _ = scan_table(*common, "--classes", "harmonic")
    assert manifest["files_resumed"] == 2 and manifest["files_scanned"] == 0
    assert manifest["classes"] == CLASSES  # the model's classes, as before
    assert manifest["classes_filter"] == ["harmonic"] and manifest["exclude_classes"] == []
    expected = full[full["label"] == "harmonic"].reset_index(drop=True)
    pd.testing.assert_frame_equal(only, expected)

    listing = tmp_path / "species.txt"
    listing.write_text("# not these\nbackground\n\npulses\n")
    excluded, manifest, _ = scan_table(*common, "--exclude-classes", f"@{listing}")
    assert manifest["exclude_classes"] == ["background", "pulses"]
    assert manifest["files_resumed"] == 2
    pd.testing.assert_frame_equal(excluded, expected)


def test_top_n_labels_each_window_with_its_best_classes(
    trained: Path, recordings: Path, tmp_path: Path
) -> None:
    out, scores = tmp_path / "w.csv", tmp_path / "w.scores.csv"
    common = [recordings, "--model", trained / "model.pt", "--out", out, "--no-merge"]
    top1, _, _ = scan_table(*common, "--threshold", "0", "--scores", scores)
    same, _, _ = scan_table(*common, "--threshold", "0", "--top-n", "1")
    pd.testing.assert_frame_equal(same, top1)  # one label per window: the default rule

    matrix = pd.read_csv(scores)
    values = matrix[CLASSES].to_numpy()
    tables = {}
    for n in (2, 3):
        table, manifest, _ = scan_table(*common, "--threshold", "0", "--top-n", str(n))
        assert manifest["top_n"] == n and manifest["files_resumed"] == 2
        expected = set()
        for row, window in zip(matrix.itertuples(index=False), values, strict=True):
            for c in np.argsort(-window, kind="stable")[:n]:
                if CLASSES[c] != "background":
                    expected.add((row.file, round(row.start_time, 6), CLASSES[c]))
        got = {(r.file, round(r.start_time, 6), r.label) for r in table.itertuples(index=False)}
        assert got == expected and len(table) == len(got)
        tables[n] = table
    assert len(tables[3]) == 2 * len(matrix)  # every species on every window

    # top-n ranks over every class, then the filter removes labels: never a new winner.
    filtered, _, _ = scan_table(*common, "--threshold", "0", "--top-n", "3", "--classes", "pulses")
    pulses = tables[3][tables[3]["label"] == "pulses"].reset_index(drop=True)
    assert len(pulses) == len(matrix)
    pd.testing.assert_frame_equal(filtered, pulses)


def test_class_list_file_errors_are_one_line(
    trained: Path, recordings: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    for value, expected in [
        (f"@{tmp_path / 'missing.txt'}", "file not found"),
        (f"@{empty}", "no class name in it"),
        (" , ", "no class name in it"),
    ]:
        code, output = run_cli(
            "scan", recordings, "--model", trained / "model.pt", "--classes", value
        )
        assert code == 1 and expected in output, output


# --- no library noise on stderr ---


def test_stderr_filter_drops_mpg123_notes_and_passes_the_rest(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with library_noise_filtered():
        os.write(2, b"Note: Illegal Audio-MPEG-Header 0x34a20f0b at offset 2266.\n")
        os.write(2, b"Note: Hit end of (available) data during resync.\n")
        os.write(2, b"[src/libmpg123/layer3.c:INT123_do_layer3():1774] error: part2_3\n")
        os.write(2, b"a real message\n")
        os.write(2, b"\rprogress 3/10")  # an unfinished line is passed on
        os.write(2, b"\nNote: something else entirely\n")
    assert capfd.readouterr().err == (
        "a real message\n\rprogress 3/10\nNote: something else entirely\n"
    )
    with library_noise_filtered(enabled=False):
        os.write(2, b"Note: Trying to resync...\n")
    assert capfd.readouterr().err == "Note: Trying to resync...\n"


def mp3_in_wav(path: Path, mp3: bytes, sample_rate: int) -> None:
    """A WAV file whose data is MP3 (format tag 0x55), as some recorders and converters write."""
    fmt = struct.pack("<HHIIHHHHIHHH", 0x55, 1, sample_rate, 4000, 1, 0, 12, 1, 2, 0, 144, 1393)
    chunks = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"data" + struct.pack("<I", len(mp3)) + mp3 + b"\0" * (len(mp3) % 2)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(chunks)) + chunks)


def test_scan_of_a_damaged_mp3_in_wav_keeps_mpg123_quiet(
    trained: Path, tmp_path: Path, make_sine
) -> None:
    if "MP3" not in sf.available_formats():
        pytest.skip("libsndfile here cannot write MP3")
    tone = tmp_path / "tone.mp3"
    sf.write(str(tone), make_sine(440.0, 3.0, 16000), 16000, format="MP3")
    data = tone.read_bytes()
    middle = len(data) // 2
    junk = b"junk" * 75  # no MPEG sync byte in it: libmpg123 notes it and resyncs
    mp3_in_wav(tmp_path / "20240501_053000.wav", data[:middle] + junk + data[middle:], 16000)
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bioclass", "scan", str(tmp_path / "20240501_053000.wav")]
            + ["--model", str(trained / "model.pt"), "--out", str(tmp_path / "d.csv"), *extra],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )

    loud = run("-v")  # -v lets the libraries speak: the noise is there to hide
    assert loud.returncode == 0, loud.stderr
    if "Illegal Audio-MPEG-Header" not in loud.stderr:
        pytest.skip("this libmpg123 does not note the damage")
    quiet = run()
    assert quiet.returncode == 0, quiet.stderr
    assert "MPEG" not in quiet.stderr and "resync" not in quiet.stderr
    assert "libmpg123" not in quiet.stderr and "Xing" not in quiet.stderr
    assert re.search(r"detections\s", quiet.stderr)  # bioclass's own report still prints


# --- data-loader workers ---


def test_loader_workers_are_capped_at_the_available_cores(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(workers, "_said", set())
    logger = logging.getLogger("bioclass")
    monkeypatch.setattr(logger, "propagate", True)
    with caplog.at_level(logging.INFO, logger="bioclass"):
        assert workers.loader_workers(0) == 0
        assert workers.loader_workers(2) == 2
        assert not caplog.records
        assert workers.loader_workers(8) == 2
        said = {r.getMessage() for r in caplog.records}
        n_records = len(caplog.records)
        assert workers.loader_workers(8) == 2
        assert len(caplog.records) == n_records  # said once
    assert said == {
        "train.num_workers 8 is more than the 2 core(s) available: using 2 data-loader workers"
    }
