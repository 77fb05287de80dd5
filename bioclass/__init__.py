"""bioclass: train species classifiers on labelled clips and scan long field recordings.

The Python API (`bioclass.load_model`, `scan`, `train`, `distill`, `evaluate`, `embed`,
`BioclassError`) is imported on first use, so `import bioclass` stays as cheap as the command
line needs it.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

_API = ("load_model", "Model", "train", "distill", "evaluate")
# Commands whose API function shares its name with the package that implements the command.
_COMMAND_PACKAGES = ("scan", "embed")

__all__ = ["BioclassError", "__version__", *_API, *_COMMAND_PACKAGES]


class _CommandPackage(types.ModuleType):
    """`bioclass.scan` and `bioclass.embed`: the command's package (`bioclass.scan.runner`,
    `import bioclass.scan.options as options` and patching by dotted name work as for any
    module) that, called, is the API function of the same name (`bioclass.api.scan`)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from bioclass import api

        return getattr(api, self.__name__.rpartition(".")[2])(*args, **kwargs)


class _CommandAttribute:
    """The root package's attribute for one of `_COMMAND_PACKAGES`: the import system stores the
    submodule here when it loads it (made callable then); reading it loads it if need be."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, package: types.ModuleType | None, owner: type) -> Any:
        if package is None:
            return self
        if self.name not in package.__dict__:
            importlib.import_module(f"{package.__name__}.{self.name}")  # comes back by __set__
        return package.__dict__[self.name]

    def __set__(self, package: types.ModuleType, value: Any) -> None:
        if type(value) is types.ModuleType:
            value.__class__ = _CommandPackage
        package.__dict__[self.name] = value


class _Root(types.ModuleType):
    scan = _CommandAttribute()
    embed = _CommandAttribute()


sys.modules[__name__].__class__ = _Root


def __getattr__(name: str) -> Any:
    if name in _API:
        from bioclass import api

        return getattr(api, name)
    if name == "BioclassError":
        from bioclass.core.errors import BioclassError

        return BioclassError
    raise AttributeError(f"module 'bioclass' has no attribute {name!r}")
