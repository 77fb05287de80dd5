"""The one way recipe rules are written: a `Rules` object that collects readable problems.

Every rule is one call that names the key, the value and the bound or vocabulary, and appends
"<key> must be <rule>, got <value>" (or a fixed sentence) when the value breaks it. The wording
of every rule comes from here, so a rule reads the same wherever it is used; only one-off
sentences are written by the caller (`Rules.require`).
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Iterable, Sequence

from bioclass.recipe.quote import quote


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """The hint "; did you mean 'x'?" for the closest option, or "" when none is close."""
    options = list(options)
    # Similarity 2M / (len(a) + len(b)) cannot reach the cutoff 0.6 once `name` is longer than
    # 7/3 of an option: skip names over 3 times the longest (costly for a name of megabytes).
    if not options or len(name) > 3 * max(len(o) for o in options):
        return ""
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


class Each(tuple):
    """Several values judged by one rule and named together (see `each`)."""


def each(*values: object) -> Each:
    """Judge `values` together: the rule fails if any fails, and the message names no value."""
    return Each(values)


def _finite_real(value: object) -> bool:
    """A finite real number that is not a bool (bool is an int in Python)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


class Rules:
    """Collects the problems of one part of a recipe, in the order the rules are called.

    Args:
        prefix: dotted key every rule's key is written under (None: keys are given in full).
        finite: how numbers are judged.
            False, for values the loader has already type-checked: None means "not set" and
            passes; NaN and infinities break every rule ("<key> must be finite and <rule>"),
            since a comparison with NaN is false whichever way it is written and no recipe
            number means anything infinite.
            True, for sections that are also checked outside the loader: every number must be
            a finite real (not a bool); None, NaN, infinities and other types break the rule.

    Every value a message quotes is cut short (`bioclass.recipe.quote`).
    """

    def __init__(self, prefix: str | None = None, finite: bool = False) -> None:
        self.prefix = prefix
        self.finite = finite
        self.problems: list[str] = []

    # --------------------------------------------------------------------- the one primitive

    def require(self, ok: bool, message: str) -> bool:
        """Record `message` unless `ok`; returns `ok`."""
        if not ok:
            self.problems.append(message)
        return ok

    # --------------------------------------------------------------------- numbers

    def positive(self, key: str, value: object) -> bool:
        """ "<key> must be positive": value > 0."""
        return self._number(key, value, lambda x: x <= 0, "positive")

    def above(self, key: str, value: object, bound: float) -> bool:
        """ "<key> must be > <bound>": the same rule as `positive`, written as a comparison."""
        return self._number(key, value, lambda x: x <= bound, f"> {bound:g}")

    def at_least(
        self,
        key: str,
        value: object,
        bound: float,
        *,
        what: str = "",
        note: str = "",
        bound_text: str | None = None,
    ) -> bool:
        """ "<key> must be [<what> ]>= <bound>[ <note>]": value >= bound.

        `bound_text` writes a bound that is not a plain number (such as another key).
        """
        text = bound_text if bound_text is not None else f"{bound:g}"
        rule = f"{what} >= {text}".lstrip() + (f" {note}" if note else "")
        return self._number(key, value, lambda x: x < bound, rule)

    def in_range(
        self,
        key: str,
        value: object,
        low: float,
        high: float,
        ends: str = "[]",
        *,
        between: bool = False,
        low_text: str | None = None,
        note: str = "",
        got: bool = True,
    ) -> bool:
        """ "<key> must be in [low, high]", each end open "(" / ")" or closed "[" / "]".

        `between` writes the rule as "between <low> and <high>" (the ends then go unsaid);
        `low_text` writes a low end that is not a plain number; `got=False` leaves the value
        out of the message.
        """
        closed_low, closed_high = ends[0] == "[", ends[1] == "]"

        def breaks(x: float) -> bool:
            above_low = low <= x if closed_low else low < x
            below_high = x <= high if closed_high else x < high
            return not (above_low and below_high)

        low_str = low_text if low_text is not None else f"{low:g}"
        if between:
            rule = f"between {low_str} and {high:g}"
        else:
            rule = f"in {ends[0]}{low_str}, {high:g}{ends[1]}"
        rule += f" {note}" if note else ""
        return self._number(key, value, breaks, rule, got=got)

    def count(self, key: str, value: object) -> bool:
        """ "<key> must be an integer >= 0": a whole count (an int, not a bool or a float)."""
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return self.require(ok, f"{self._key(key)} must be an integer >= 0, got {quote(value)}")

    def ordered(
        self,
        section: str,
        low_name: str,
        low: object,
        high_name: str,
        high: object,
        *,
        above: float | None = None,
        note: str = "",
    ) -> bool:
        """ "<section>.<low_name> must be [> <above> and ]<= <high_name>": a [low, high] pair.

        The message shows both values, since either may be the wrong one.
        """
        rule = f"> {above:g} and " if above is not None else ""
        rule += f"<= {high_name}" + (f" {note}" if note else "")
        ok = self._usable(low) and self._usable(high)
        if ok and low is not None and high is not None:
            ok = (above is None or low > above) and low <= high  # type: ignore[operator]
        return self.require(
            ok,
            f"{self._key(section)}.{low_name} must be {rule}, "
            f"got {low_name}={quote(low)}, {high_name}={quote(high)}",
        )

    def flag(self, key: str, value: object) -> bool:
        """ "<key> must be true or false": a bool."""
        ok = isinstance(value, bool)
        return self.require(ok, f"{self._key(key)} must be true or false, got {quote(value)}")

    # --------------------------------------------------------------------- names

    def one_of(
        self, key: str, value: object, vocabulary: Sequence[str], *, suggest: bool = True
    ) -> bool:
        """ "<key> must be one of a, b, c[; did you mean 'x'?]": a name from `vocabulary`."""
        hint = did_you_mean(value, vocabulary) if suggest and isinstance(value, str) else ""
        return self.require(
            value in vocabulary,
            f"{self._key(key)} must be one of {', '.join(vocabulary)}{hint}",
        )

    def known(self, key: str, value: object, vocabulary: Sequence[str], what: str) -> bool:
        """ "<key>: unknown <what> 'x' (valid: a, b)": the rule of `one_of`, worded per item."""
        return self.require(
            value in vocabulary,
            f"{self._key(key)}: unknown {what} {quote(value)} (valid: {', '.join(vocabulary)})",
        )

    def names_in(self, key: str, values: object, vocabulary: Sequence[str], what: str) -> bool:
        """A non-empty list of names from `vocabulary`; each unknown name is its own problem."""
        if not isinstance(values, list | tuple) or not values:
            return self.require(
                False,
                f"{self._key(key)} must list at least one {what} (valid: {', '.join(vocabulary)})",
            )
        # A list, not a generator: every unknown name is reported, not only the first.
        return all([self.known(key, v, vocabulary, what) for v in values])

    def unique(self, key: str, values: Sequence[object] | None, what: str) -> bool:
        """ "<key> lists a <what> twice": no repeats (None passes)."""
        ok = values is None or len(set(values)) == len(values)
        return self.require(ok, f"{self._key(key)} lists a {what} twice")

    def not_both(self, first: str, first_given: bool, second: str, second_given: bool) -> bool:
        """ "give either <first> or <second>, not both": at most one of two alternatives."""
        return self.require(
            not (first_given and second_given), f"give either {first} or {second}, not both"
        )

    # --------------------------------------------------------------------- plumbing

    def _key(self, key: str) -> str:
        return key if self.prefix is None else f"{self.prefix}.{key}"

    def _usable(self, value: object) -> bool:
        """Whether a number may be compared at all (see `finite` in the class docstring)."""
        if self.finite:
            return _finite_real(value)
        return not (isinstance(value, float) and not math.isfinite(value))

    def _number(
        self,
        key: str,
        value: object,
        breaks: Callable[[float], bool],
        rule: str,
        *,
        got: bool = True,
    ) -> bool:
        """Apply `breaks` to `value` (or to each value of an `Each`) and word the problem."""
        values = value if isinstance(value, Each) else (value,)
        unusable = not all(self._usable(v) for v in values)
        broken = unusable or any(
            v is not None and breaks(v)  # type: ignore[arg-type]
            for v in values
        )
        # Said outright for the loader's values: "must be positive, got inf" would puzzle.
        finite = "finite and " if unusable and not self.finite else ""
        message = f"{self._key(key)} must be {finite}{rule}"
        if got and not isinstance(value, Each):
            message += f", got {quote(value)}"
        return self.require(not broken, message)
