"""Allow `python -m bioclass`."""

from bioclass.cli import main

main()
