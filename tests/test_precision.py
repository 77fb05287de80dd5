"""`--precision`: auto resolves from what the CPU is found to do (native bf16, and a probe of
its speed), explicit choices are kept (bf16 without native support warns), and scan and embed
record what they asked for, what ran and why."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import run_cli

from bioclass import cli
from bioclass.api import checks
from bioclass.core.errors import BioclassError
from bioclass.runtime import precision
from bioclass.runtime.cpuinfo import cpu_flags, cpu_model, read_cpuinfo
from bioclass.runtime.precision import PRECISIONS, resolve_precision

CPU = torch.device("cpu")
REAL_PROBE = precision.bf16_probe_speedup.__wrapped__  # the uncached probe (conftest pins it)


def cpu_says(monkeypatch: pytest.MonkeyPatch, native: bool, speedup: float | None) -> list[int]:
    """Make the detection answer `native` and the probe `speedup`; returns the probe's calls."""
    found = "avx512_bf16" if native else "avx512_bf16, amx, /proc/cpuinfo bf16 flags absent"
    monkeypatch.setattr(precision, "cpu_bf16_support", lambda: (native, found))
    calls: list[int] = []

    def probe(threads: int) -> float:
        calls.append(threads)
        if speedup is None:
            raise AssertionError("the probe must not run without native bf16")
        return speedup

    monkeypatch.setattr(precision, "bf16_probe_speedup", probe)
    return calls


def test_auto_is_fp32_without_native_bf16_and_runs_no_probe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = cpu_says(monkeypatch, native=False, speedup=None)
    choice = resolve_precision(CPU, "auto")
    assert (choice.asked, choice.used) == ("auto", "fp32")
    assert choice.describe() == (
        "auto -> fp32: no native bf16 (avx512_bf16, amx, /proc/cpuinfo bf16 flags absent)"
    )
    assert calls == []


def test_auto_is_bf16_where_native_and_the_probe_finds_it_faster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = cpu_says(monkeypatch, native=True, speedup=2.4)
    choice = resolve_precision(CPU, "auto")
    assert choice.used == "bf16"
    assert choice.reason == "native bf16 (avx512_bf16), faster in the probe (2.40x fp32)"
    assert calls == [torch.get_num_threads()]


@pytest.mark.parametrize("speedup", [0.5, 1.0, precision.BF16_MIN_SPEEDUP - 0.01])
def test_auto_stays_fp32_where_native_bf16_is_not_clearly_faster(
    monkeypatch: pytest.MonkeyPatch, speedup: float
) -> None:
    cpu_says(monkeypatch, native=True, speedup=speedup)
    choice = resolve_precision(CPU, "auto")
    assert choice.used == "fp32"
    assert "not faster in the probe" in choice.reason


def test_explicit_bf16_without_native_support_warns_and_runs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cpu_says(monkeypatch, native=False, speedup=None)
    with caplog.at_level(logging.WARNING, logger=precision.__name__):
        choice = resolve_precision(CPU, "bf16")
    assert choice.used == "bf16" and "emulated" in choice.reason
    assert "no native bfloat16" in caplog.text and "emulated" in caplog.text


def test_explicit_bf16_with_native_support_is_silent(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cpu_says(monkeypatch, native=True, speedup=None)  # an explicit choice runs no probe
    with caplog.at_level(logging.WARNING, logger=precision.__name__):
        assert resolve_precision(CPU, "bf16").used == "bf16"
    assert caplog.text == ""


def test_amp_on_a_cpu_and_unknown_precisions_are_refused() -> None:
    with pytest.raises(BioclassError, match="needs a CUDA device"):
        resolve_precision(CPU, "amp")
    with pytest.raises(BioclassError, match="unknown precision 'fp8'"):
        resolve_precision(CPU, "fp8")


def test_auto_on_mps_is_fp32() -> None:
    assert resolve_precision(torch.device("mps"), "auto").used == "fp32"


def test_detection_falls_back_to_cpuinfo_flags(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in precision._TORCH_CHECKS.values():
        monkeypatch.delattr(torch.cpu, name, raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n")
    monkeypatch.setattr(precision, "cpu_flags", lambda: cpu_flags(cpuinfo))
    assert precision.cpu_bf16_support() == (True, "avx512_bf16 in /proc/cpuinfo")
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert precision.cpu_bf16_support() == (False, "/proc/cpuinfo bf16 flags absent")
    monkeypatch.setattr(precision, "cpu_flags", lambda: None)
    assert precision.cpu_bf16_support()[0] is False


def test_arm_bf16_is_found_in_cpuinfo_where_torch_checks_say_no(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # PyTorch's checks are x86 ones: on Arm they exist and answer False.
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    monkeypatch.setattr(precision, "cpu_flags", lambda: cpu_flags(cpuinfo))
    assert precision.cpu_bf16_support() == (True, "bf16 in /proc/cpuinfo")
    cpuinfo.write_text("processor\t: 0\nFeatures\t: fp asimd\n")
    assert precision.cpu_bf16_support() == (
        False,
        "avx512_bf16, amx, /proc/cpuinfo bf16 flags absent",
    )


def test_torch_checks_decide_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    monkeypatch.setattr(precision, "cpu_flags", lambda: set())
    assert precision.cpu_bf16_support() == (True, "amx")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert precision.cpu_bf16_support() == (
        False,
        "avx512_bf16, amx, /proc/cpuinfo bf16 flags absent",
    )


def test_the_probe_measures_a_speed_ratio() -> None:
    ratio = REAL_PROBE(torch.get_num_threads())
    assert math.isfinite(ratio) and ratio > 0


def test_cli_and_api_offer_every_precision() -> None:
    assert list(cli.PRECISION_CHOICES.choices) == list(PRECISIONS)
    assert checks.PRECISIONS == PRECISIONS


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "rec.wav"
    sf.write(str(path), (0.1 * rng.standard_normal(8000 * 3)).astype(np.float32), 8000)
    return path


@pytest.mark.parametrize(
    ("native", "speedup", "asked", "used", "reason"),
    [
        (
            "no",
            None,
            "auto",
            "fp32",
            "no native bf16 (avx512_bf16, amx, /proc/cpuinfo bf16 flags absent)",
        ),
        ("yes", 2.0, "auto", "bf16", "native bf16 (avx512_bf16), faster in the probe (2.00x fp32)"),
        ("no", None, "fp32", "fp32", "as asked"),
    ],
)
def test_scan_manifest_records_the_precision_asked_used_and_why(
    monkeypatch: pytest.MonkeyPatch,
    trained: Path,
    recording: Path,
    tmp_path: Path,
    native: str,
    speedup: float | None,
    asked: str,
    used: str,
    reason: str,
) -> None:
    cpu_says(monkeypatch, native=native == "yes", speedup=speedup)
    out = tmp_path / "det.csv"
    args = [recording, "--model", trained / "model.pt", "--out", out, "--device", "cpu"]
    if asked != "auto":
        args += ["--precision", asked]  # auto is the default
    code, output = run_cli("scan", *args)
    assert code == 0, output
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert manifest["precision"] == used
    assert manifest["precision_asked"] == asked
    assert manifest["precision_reason"] == reason


def test_scan_with_bf16_on_a_cpu_without_it_warns_and_scans(
    monkeypatch: pytest.MonkeyPatch, trained: Path, recording: Path, tmp_path: Path
) -> None:
    cpu_says(monkeypatch, native=False, speedup=None)
    out = tmp_path / "det.csv"
    model = trained / "model.pt"
    code, output = run_cli("scan", recording, "--model", model, "--out", out, "--precision", "bf16")
    assert code == 0, output
    assert "no native bfloat16" in output
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert manifest["precision"] == "bf16"
    assert manifest["precision_reason"].startswith("as asked; emulated")


def test_embed_manifest_records_the_precision(
    monkeypatch: pytest.MonkeyPatch, trained: Path, recording: Path, tmp_path: Path
) -> None:
    cpu_says(monkeypatch, native=False, speedup=None)
    out = tmp_path / "emb.csv"
    code, output = run_cli("embed", recording, "--model", trained / "model.pt", "--out", out)
    assert code == 0, output
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert manifest["precision"] == "fp32" and manifest["precision_asked"] == "auto"
    assert manifest["precision_reason"].startswith("no native bf16")


def test_auto_reuses_the_scores_of_the_precision_it_resolves_to(
    monkeypatch: pytest.MonkeyPatch, trained: Path, recording: Path, tmp_path: Path
) -> None:
    cpu_says(monkeypatch, native=False, speedup=None)
    out = tmp_path / "det.csv"
    model = trained / "model.pt"
    code, output = run_cli("scan", recording, "--model", model, "--out", out, "--precision", "fp32")
    assert code == 0, output
    code, output = run_cli("scan", recording, "--model", model, "--out", out)  # auto -> fp32
    assert code == 0, output
    assert json.loads(out.with_suffix(".manifest.json").read_text())["files_resumed"] == 1
    code, output = run_cli("scan", recording, "--model", model, "--out", out, "--precision", "bf16")
    assert code == 0, output
    assert json.loads(out.with_suffix(".manifest.json").read_text())["files_resumed"] == 0


def test_a_bf16_scan_records_how_far_its_scores_moved_from_fp32(
    monkeypatch: pytest.MonkeyPatch, trained: Path, recording: Path, tmp_path: Path
) -> None:
    cpu_says(monkeypatch, native=True, speedup=None)
    model = trained / "model.pt"
    scores, manifests = {}, {}
    for asked in ("bf16", "fp32"):
        out = tmp_path / asked / "det.csv"
        matrix = tmp_path / f"{asked}.scores.csv"
        code, output = run_cli(
            "scan",
            recording,
            "--model",
            model,
            "--out",
            out,
            "--precision",
            asked,
            "--mode",
            "exact",
            "--scores",
            matrix,
        )
        assert code == 0, output
        table = np.loadtxt(matrix, delimiter=",", skiprows=1, usecols=range(4, 7))
        scores[asked], manifests[asked] = (
            table,
            json.loads(out.with_suffix(".manifest.json").read_text()),
        )
    assert manifests["fp32"]["precision_drift"] is None
    drift = manifests["bf16"]["precision_drift"]
    n = min(16, len(scores["bf16"]))  # the scan's first windows, at most 16
    diff = np.abs(scores["bf16"][:n] - scores["fp32"][:n])
    assert (drift["against"], drift["file"], drift["windows"]) == ("fp32", str(recording), n)
    assert drift["max_score_diff"] == pytest.approx(diff.max(), abs=1e-5)
    assert drift["mean_score_diff"] == pytest.approx(diff.mean(), abs=1e-5)
    same = np.mean(scores["bf16"][:n].argmax(1) == scores["fp32"][:n].argmax(1))
    assert drift["top_class_agreement"] == pytest.approx(same)
    assert 0 < drift["max_score_diff"] < 0.05  # bf16 does move the scores, a little


def test_a_recording_gone_before_the_drift_check_is_a_warning_not_a_failure(
    monkeypatch: pytest.MonkeyPatch, trained: Path, recording: Path, tmp_path: Path
) -> None:
    from bioclass.audio import AudioError
    from bioclass.scan import runner

    def gone(path, *args, **kwargs):
        raise AudioError(f"{path}: file not found")

    monkeypatch.setattr(runner, "precision_drift", gone)
    cpu_says(monkeypatch, native=True, speedup=None)
    out = tmp_path / "det.csv"
    code, output = run_cli(
        "scan", recording, "--model", trained / "model.pt", "--out", out, "--precision", "bf16"
    )
    assert code == 0, output
    assert "precision drift not measured" in output and "file not found" in output
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert manifest["precision_drift"] is None and manifest["files_scanned"] == 1


def test_the_probe_runs_once_per_machine_and_is_kept_on_disk(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bioclass.runtime import probe_cache

    monkeypatch.setattr(probe_cache, "_load_per_core", lambda: 0.1)  # a quiet machine
    monkeypatch.setenv("BIOCLASS_CACHE_DIR", str(tmp_path / "cache"))
    calls = cpu_says(monkeypatch, native=True, speedup=1.5)
    first = resolve_precision(torch.device("cpu"), "auto")
    assert (first.used, calls) == ("bf16", [torch.get_num_threads()])
    assert first.reason == "native bf16 (avx512_bf16), faster in the probe (1.50x fp32)"
    stored = json.loads((tmp_path / "cache" / "probe.json").read_text())
    (key,) = stored
    assert f"torch {torch.__version__}" in key and "avx512_bf16" in key
    assert stored[key]["speedup"] == 1.5
    # A later process (here: the same one again) reads it instead of measuring, and says the
    # same: a manifest does not depend on whether the probe was cached.
    second = resolve_precision(torch.device("cpu"), "auto")
    assert second == first and len(calls) == 1
    # Another thread count is another answer.
    monkeypatch.setattr(torch, "get_num_threads", lambda: 7)
    resolve_precision(torch.device("cpu"), "auto")
    assert calls[-1] == 7 and len(json.loads((tmp_path / "cache" / "probe.json").read_text())) == 2
    assert probe_cache.machine_key(7, "x") != probe_cache.machine_key(8, "x")


@pytest.mark.parametrize("damage", ["not json {", "[1, 2]", '{"k": "no entry"}'])
def test_a_damaged_probe_cache_is_measured_and_written_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, damage: str
) -> None:
    from bioclass.runtime import probe_cache

    monkeypatch.setattr(probe_cache, "_load_per_core", lambda: 0.1)
    (tmp_path / "probe.json").write_text(damage)
    monkeypatch.setenv("BIOCLASS_CACHE_DIR", str(tmp_path))
    calls = cpu_says(monkeypatch, native=True, speedup=0.6)
    assert resolve_precision(torch.device("cpu"), "auto").used == "fp32" and len(calls) == 1
    stored = json.loads((tmp_path / "probe.json").read_text())
    entries = [e for e in stored.values() if isinstance(e, dict) and "speedup" in e]
    assert [e["speedup"] for e in entries] == [0.6] and entries[0]["load_per_core"] == 0.1


def test_an_unwritable_probe_cache_only_means_measuring_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bioclass.runtime import probe_cache

    monkeypatch.setattr(probe_cache, "_load_per_core", lambda: 0.1)
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("BIOCLASS_CACHE_DIR", str(blocker / "bioclass"))
    calls = cpu_says(monkeypatch, native=True, speedup=2.0)
    for _ in range(2):
        choice = resolve_precision(torch.device("cpu"), "auto")
        assert choice.used == "bf16"
    assert len(calls) == 2


@pytest.mark.parametrize("load", [0.9, None])
def test_a_probe_timed_on_a_busy_machine_is_used_once_not_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, load: float | None
) -> None:
    from bioclass.runtime import probe_cache

    monkeypatch.setattr(probe_cache, "_load_per_core", lambda: load)
    monkeypatch.setenv("BIOCLASS_CACHE_DIR", str(tmp_path))
    calls = cpu_says(monkeypatch, native=True, speedup=0.4)
    for _ in range(2):
        assert resolve_precision(torch.device("cpu"), "auto").used == "fp32"
    assert len(calls) == 2 and not (tmp_path / "probe.json").exists()


def test_a_kept_probe_older_than_a_month_is_measured_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bioclass.runtime import probe_cache

    monkeypatch.setattr(probe_cache, "_load_per_core", lambda: 0.1)
    monkeypatch.setenv("BIOCLASS_CACHE_DIR", str(tmp_path))
    calls = cpu_says(monkeypatch, native=True, speedup=1.6)
    resolve_precision(torch.device("cpu"), "auto")
    stored = json.loads((tmp_path / "probe.json").read_text())
    (key,) = stored
    stored[key] |= {"speedup": 0.5, "measured": "2000-01-01"}
    (tmp_path / "probe.json").write_text(json.dumps(stored))
    assert resolve_precision(torch.device("cpu"), "auto").used == "bf16" and len(calls) == 2


X86_TWO_CORES = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu sse avx2 avx512_bf16

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: A different name
flags\t\t: fpu
"""

ARM_PI = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU part\t: 0xd08

processor\t: 1
Features\t: fp
CPU part\t: 0xd03

Hardware\t: BCM2835
"""


def test_cpuinfo_reads_the_first_processors_model_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(X86_TWO_CORES)
    assert read_cpuinfo(path).model == "Intel(R) Xeon(R) Processor"
    assert cpu_flags(path) == {"fpu", "sse", "avx2", "avx512_bf16"}
    # Arm: no "model name"; the first core's part number names it, its "Features" are the flags.
    path.write_text(ARM_PI)
    assert cpu_model(path) == "0xd08"
    assert cpu_flags(path) == {"fp", "asimd", "evtstrm", "crc32", "cpuid"}


def test_cpuinfo_missing_or_without_flags(tmp_path: Path) -> None:
    assert read_cpuinfo(tmp_path / "absent") is None
    assert cpu_flags(tmp_path / "absent") is None
    assert cpu_model(tmp_path / "absent")  # platform's answer, never empty
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nmodel name\t: Some CPU\n")
    assert cpu_flags(path) is None
    assert cpu_model(path) == "Some CPU"
