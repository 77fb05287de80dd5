"""The one error type users see: the CLI turns it into a one-line message and exit code 1."""

from __future__ import annotations


class BioclassError(Exception):
    """A problem with the user's input (recipe, data, audio, checkpoint), not a bug."""
