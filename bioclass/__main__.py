"""Allow `python -m bioclass`."""

from bioclass.cli import run

run()
