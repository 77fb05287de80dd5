"""YAML as recipes are read: PyYAML's safe loader with bounds on what a text may expand to.

A recipe holds a few hundred values, five levels deep. YAML lets a short text stand for far
more: anchors whose aliases repeat other anchors multiply (a list of 9 names, then 8 levels of
lists of 9 aliases of the level below, is 9**9 = 387 million names in under 500 bytes), and a
list nested 50,000 deep overflows Python's recursion while it is composed. The loader counts,
while it composes, the values each node stands for with its aliases expanded, and its nesting
depth, and refuses a text beyond generous bounds before anything is built from it. Everything
else is `yaml.SafeLoader` (no Python objects).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_VALUES = 100_000  # values (scalars, lists, mappings) a recipe may stand for, aliases expanded
MAX_DEPTH = 64  # levels of nesting (pretrain.views.mask.prob is 5; recursion fails near 300)


class RecipeBoundsError(yaml.MarkedYAMLError):
    """A YAML text beyond the bounds of a recipe (`problem` says which, `problem_mark` where)."""


class BoundedLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses texts that expand beyond `MAX_VALUES` or nest deeper than
    `MAX_DEPTH`, and aliases to a value that contains them."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._composed = 0  # nodes written in the text (an alias is not one)
        self._expanded: dict[int, int] = {}  # id(node) -> values it stands for, aliases expanded

    def fetch_flow_collection_start(self, TokenClass: type) -> None:  # noqa: N803 (PyYAML's name)
        # Each "[" or "{" may open a mapping key, so the scanner reads every one of them before
        # the composer sees the first: refuse deep brackets here, before the scan goes on.
        if self.flow_level >= MAX_DEPTH:
            raise RecipeBoundsError(problem=_too_deep(), problem_mark=self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        alias = self.check_event(AliasEvent)
        mark = self.peek_event().start_mark
        if self._depth >= MAX_DEPTH:
            raise RecipeBoundsError(problem=_too_deep(), problem_mark=mark)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if alias:
            if id(node) not in self._expanded:  # its anchor's node is still being composed
                raise RecipeBoundsError(
                    problem="an alias refers to a value that contains it", problem_mark=mark
                )
            size = self._expanded[id(node)]
        else:
            self._composed += 1
            size = 1 + sum(self._expanded[id(child)] for child in _children(node))
            self._expanded[id(node)] = size
        if size > MAX_VALUES:
            by = "aliases expand this value to" if size > self._composed else "this value holds"
            raise RecipeBoundsError(
                problem=f"{by} more than {MAX_VALUES:,} values (a recipe holds a few hundred)",
                problem_mark=mark,
            )
        return node

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        # A tagged scalar that is not what its tag says (`!!int abc`, an int of 5000 digits)
        # raises ValueError in PyYAML's constructors, not a YAMLError.
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ConstructorError(
                problem=f"cannot read this {node.tag.rsplit(':', 1)[-1]}: {exc}",
                problem_mark=node.start_mark,
            ) from None


def _too_deep() -> str:
    return f"values nested more than {MAX_DEPTH} levels deep"


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return node.value
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_yaml(text: str) -> Any:
    """The data of one YAML document, read with `BoundedLoader`.

    Raises:
        RecipeBoundsError: the text expands or nests beyond a recipe's bounds.
        yaml.YAMLError: the text is not valid YAML (or asks for a Python object).
    """
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
