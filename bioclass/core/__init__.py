"""The ground floor, used by every other package: the user-facing error type, the console,
atomic file writing and score activations. Imports nothing else from bioclass."""
