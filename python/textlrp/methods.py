"""The registries of explanation methods and LRP product rules.

One entry per name, with its parameters and a one-line doc. The API checks names against
these, the CLI builds its ``--method``/``--rule`` choices and help from them, the experiments
and the tests iterate over them: a new method or rule is added here once. The engine's own
list (``_core.RULES``) is checked against this one at import.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    name: str
    doc: str
    params: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProductRule:
    name: str
    doc: str
    cells: tuple[str, ...] = ("lstm",)  # cells the rule is defined for


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("lrp", "Layer-wise Relevance Propagation (epsilon rule; product rule at gates)",
           ("eps", "bias_factor", "rule")),
    Method("sa", "sensitivity analysis: squared norm of d score / d x_t"),
    Method("gi", "gradient x input: d score / d x_t . x_t"),
    Method("occlusion", "drop of the target score when x_t is set to zero"),
    Method("random", "seeded uniform values, a baseline", ("seed",)),
)}

RULES: dict[str, ProductRule] = {r.name: r for r in (
    ProductRule("signal-take-all", "the signal (source) takes all of a product's relevance "
                "(Arras et al. 2017)", ("lstm", "gru")),
    ProductRule("prop", "split in proportion to the two factors' values"),
    ProductRule("half", "split in two equal halves"),
    ProductRule("abs", "split in proportion to the factors' absolute values (Arras et al. 2019)"),
)}

DEFAULT_RULE = "signal-take-all"


def check_method(name: str) -> Method:
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}") from None


def check_rule(name: str, cells: set[str] | None = None) -> ProductRule:
    """The rule called ``name``; ValueError if unknown or not defined for one of ``cells``."""
    try:
        rule = RULES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown rule {name!r}; expected one of {', '.join(RULES)}") from None
    missing = sorted((cells or set()) - set(rule.cells))
    if missing:
        raise ValueError(f"rule {name!r} is defined for {'/'.join(rule.cells)} cells only; this "
                         f"model has {'/'.join(missing)} layers (use {DEFAULT_RULE!r})")
    return rule
