"""The ground floor, used by every other package: the user-facing error type, the console,
atomic file writing (with its temporary names, the files' modes and OS errors in plain words)
and score activations. Imports nothing else from bioclass."""
