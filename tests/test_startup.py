"""Start-up cost: `bioclass --help` (and each command's --help) loads none of the heavy
libraries; a command imports them inside the function that needs them. Checked in a fresh
interpreter, since this test process has imported everything already."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import bioclass

ROOT = Path(bioclass.__file__).resolve().parents[1]
# Each costs 0.1 s (yaml) to 1.5 s (torch) of start-up on the project's 2-core machine.
HEAVY = ("torch", "numpy", "pandas", "pyarrow", "matplotlib", "sklearn", "scipy", "yaml", "soxr")

PROBE = """
import json, sys
from bioclass.cli import main
sys.argv = ["bioclass", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})), file=sys.stderr)
"""


def modules_loaded_by(args: list[str]) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [["--help"], ["scan", "--help"], ["train", "--help"]])
def test_help_loads_no_heavy_library(args: list[str]) -> None:
    loaded = modules_loaded_by(args)
    assert "bioclass" in loaded and "click" in loaded  # the probe saw the command line load
    assert sorted(loaded & set(HEAVY)) == []


def test_importing_the_command_line_loads_no_heavy_library() -> None:
    loaded = modules_loaded_by(["--version"])
    assert sorted(loaded & set(HEAVY)) == []


def test_a_plain_scan_loads_neither_pandas_nor_pyarrow(trained: Path, tmp_path: Path) -> None:
    """A scan writes its detections, Raven, Audacity and Kaleidoscope tables without pandas
    (a quarter of torch's import time); only a score matrix, a thresholds table or a truth
    table bring it in."""
    import numpy as np
    import soundfile as sf

    model = trained / "model.pt"
    sf.write(tmp_path / "a.wav", 0.1 * np.ones(3 * 8000, np.float32), 8000)
    args = ["scan", str(tmp_path / "a.wav"), "--model", str(model), "-q"]
    outputs = ["--format", "csv", "--format", "raven", "--format", "audacity"]
    loaded = modules_loaded_by(
        [*args, "--out", str(tmp_path / "d.csv"), *outputs, "--format", "kaleidoscope"]
    )
    assert (tmp_path / "d.csv").is_file() and (tmp_path / "d.kaleidoscope.csv").is_file()
    assert "torch" in loaded and sorted(loaded & {"pandas", "pyarrow"}) == []
    # The one output built with pandas: it is loaded when asked for.
    loaded = modules_loaded_by(
        [*args, "--out", str(tmp_path / "e.csv"), "--scores", str(tmp_path / "s.csv")]
    )
    assert "pandas" in loaded
