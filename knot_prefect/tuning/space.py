"""Search spaces: which values each hyperparameter may take, as plain serializable data.

A search space maps parameter names to one of:

- a list of values: the grid's values, or a uniform choice in a random search;
- a distribution, as a model or the same thing as a dict (what a deployment parameter
  holds): ``{"kind": "uniform", "low": 0, "high": 1}``, ``{"kind": "log_uniform",
  "low": 1e-4, "high": 1}``, ``{"kind": "int", "low": 2, "high": 8, "step": 2}``
  (both ends included) or ``{"kind": "choice", "values": ["gini", "entropy"]}``;
- any other value: a constant passed to every trial.

Grid search takes every combination; continuous distributions have no grid, so a grid
over them is refused with the parameter named. Random search draws ``trials`` points
from a seeded generator: the same seed gives the same trials.

Examples:
    >>> space = parse_search_space({
    ...     "C": {"kind": "log_uniform", "low": 0.01, "high": 10},
    ...     "penalty": ["l1", "l2"],
    ...     "max_iter": 200,
    ... })
    >>> [p["penalty"] for p in random_points(space, 3, seed=1)] == [
    ...     p["penalty"] for p in random_points(space, 3, seed=1)]
    True
    >>> grid_points(parse_search_space({"depth": {"kind": "int", "low": 2, "high": 4},
    ...                                 "loss": ["log", "hinge"]}))[:3]
    [{'depth': 2, 'loss': 'log'}, {'depth': 2, 'loss': 'hinge'}, {'depth': 3, 'loss': 'log'}]
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from knot_prefect.errors import ConfigurationError


class SearchSpaceError(ConfigurationError):
    """A search space cannot be used; the message names the parameter and the fix."""


class _Distribution(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def sample(self, rng: random.Random) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def grid(self) -> list[Any]:
        raise SearchSpaceError(
            f"a {self.kind} distribution has no finite grid: give a list of values "  # type: ignore[attr-defined]
            "instead, or use strategy='random'."
        )


class _FloatRange(_Distribution):
    low: float = Field(description="Smallest value.")
    high: float = Field(description="Largest value.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be smaller than high ({self.high})")
        return self


class Uniform(_FloatRange):
    """A float drawn uniformly between ``low`` and ``high``.

    Examples:
        >>> 0.5 <= Uniform(low=0.5, high=0.9).sample(random.Random(0)) <= 0.9
        True
    """

    kind: Literal["uniform"] = Field(default="uniform", description="Always 'uniform'.")

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


class LogUniform(_FloatRange):
    """A positive float whose logarithm is uniform: each decade is equally likely.

    Examples:
        >>> 1e-3 <= LogUniform(low=1e-3, high=1.0).sample(random.Random(0)) <= 1.0
        True
    """

    kind: Literal["log_uniform"] = Field(default="log_uniform", description="Always 'log_uniform'.")
    low: float = Field(description="Smallest value; greater than 0.")

    @model_validator(mode="after")
    def _positive(self) -> LogUniform:
        if self.low <= 0:
            raise ValueError(f"low must be greater than 0 for a log scale, not {self.low}")
        return self

    def sample(self, rng: random.Random) -> float:
        return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))


class IntRange(_Distribution):
    """An integer from ``low`` to ``high`` (both included) in steps of ``step``.

    Examples:
        >>> IntRange(low=2, high=8, step=3).grid()
        [2, 5, 8]
    """

    kind: Literal["int"] = Field(default="int", description="Always 'int'.")
    low: int = Field(description="Smallest value.")
    high: int = Field(description="Largest value (included).")
    step: int = Field(default=1, ge=1, description="Distance between allowed values.")

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not be larger than high ({self.high})")
        return self

    def sample(self, rng: random.Random) -> int:
        return rng.choice(self.grid())

    def grid(self) -> list[Any]:
        return list(range(self.low, self.high + 1, self.step))


class Choice(_Distribution):
    """One of ``values``, each equally likely.

    Examples:
        >>> Choice(values=["gini", "entropy"]).grid()
        ['gini', 'entropy']
    """

    kind: Literal["choice"] = Field(default="choice", description="Always 'choice'.")
    values: list[Any] = Field(min_length=1, description="The values to choose from.")

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.values)

    def grid(self) -> list[Any]:
        return list(self.values)


class Constant(_Distribution):
    """The same value in every trial."""

    kind: Literal["constant"] = Field(default="constant", description="Always 'constant'.")
    value: Any = Field(description="The value passed to every trial.")

    def sample(self, rng: random.Random) -> Any:
        return self.value

    def grid(self) -> list[Any]:
        return [self.value]


Distribution = Annotated[
    Uniform | LogUniform | IntRange | Choice | Constant, Field(discriminator="kind")
]
_KINDS = ("uniform", "log_uniform", "int", "choice", "constant")
_adapter: TypeAdapter[Any] = TypeAdapter(Distribution)

SearchSpace = dict[str, Uniform | LogUniform | IntRange | Choice | Constant]


def parse_search_space(space: Mapping[str, Any]) -> SearchSpace:
    """Turn a search space given as plain data (or models) into distributions.

    Raises:
        SearchSpaceError: When the space is empty, a name is not a string, or a
            parameter's specification is malformed; the message names the parameter.

    Examples:
        >>> parse_search_space({"alpha": [0.1, 1.0]})["alpha"]
        Choice(kind='choice', values=[0.1, 1.0])
    """
    if not isinstance(space, Mapping) or not space:
        raise SearchSpaceError(
            "The search space is empty: give a dict of parameter name -> list of values "
            "or distribution, e.g. {'C': {'kind': 'log_uniform', 'low': 0.01, 'high': 10}}."
        )
    parsed: SearchSpace = {}
    for name, spec in space.items():
        if not isinstance(name, str) or not name:
            raise SearchSpaceError(f"Search-space parameter names must be strings, not {name!r}.")
        parsed[name] = _parse_one(name, spec)
    return parsed


def _parse_one(name: str, spec: Any) -> Uniform | LogUniform | IntRange | Choice | Constant:
    if isinstance(spec, _Distribution):
        return spec  # type: ignore[return-value]
    if isinstance(spec, list | tuple):
        if not spec:
            raise SearchSpaceError(
                f"Search-space parameter {name!r} has an empty list of values: give at "
                "least one value."
            )
        return Choice(values=list(spec))
    if isinstance(spec, Mapping) and "kind" in spec:
        if spec["kind"] not in _KINDS:
            raise SearchSpaceError(
                f"Search-space parameter {name!r} has kind {spec['kind']!r}; the kinds are "
                f"{', '.join(_KINDS)}."
            )
        try:
            return _adapter.validate_python(dict(spec))  # type: ignore[no-any-return]
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc'][1:]) or 'value'}: {error['msg']}"
                for error in exc.errors()
            )
            raise SearchSpaceError(
                f"Search-space parameter {name!r} ({spec['kind']}) is malformed: {problems}."
            ) from None
    return Constant(value=spec)


def grid_points(space: SearchSpace) -> list[dict[str, Any]]:
    """Every combination of the space's values, the last parameter varying fastest.

    Raises:
        SearchSpaceError: When a parameter has a continuous distribution (no grid).
    """
    values: list[list[Any]] = []
    for name, distribution in space.items():
        try:
            values.append(distribution.grid())
        except SearchSpaceError as exc:
            raise SearchSpaceError(f"Search-space parameter {name!r}: {exc}") from None
    names = list(space)
    return [dict(zip(names, combination, strict=True))
            for combination in itertools.product(*values)]


def random_points(space: SearchSpace, trials: int, seed: int) -> list[dict[str, Any]]:
    """``trials`` points drawn independently from the space with a seeded generator."""
    rng = random.Random(seed)
    return [{name: d.sample(rng) for name, d in space.items()} for _ in range(trials)]


def plan_trials(
    space: Mapping[str, Any], trials: int | None, strategy: str, seed: int
) -> list[dict[str, Any]]:
    """The parameters of each trial of a search.

    Args:
        space: The search space (see the module's documentation).
        trials: Trials of a random search; for a grid, None or at least the grid's size
            (a larger grid is refused rather than silently cut).
        strategy: ``"grid"`` or ``"random"``.
        seed: Seed of the random search.

    Raises:
        SearchSpaceError: For a malformed space, an unknown strategy or a bad count.

    Examples:
        >>> plan_trials({"a": [1, 2], "b": ["x"]}, None, "grid", seed=0)
        [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'x'}]
    """
    parsed = parse_search_space(space)
    if strategy == "grid":
        points = grid_points(parsed)
        if trials is not None and trials < len(points):
            raise SearchSpaceError(
                f"The grid has {len(points)} combinations but trials={trials}: raise trials "
                "(or pass None) to run the whole grid, trim the lists, or use "
                "strategy='random'."
            )
        return points
    if strategy == "random":
        if trials is None or trials < 1:
            raise SearchSpaceError(
                f"A random search needs trials >= 1 (how many points to draw), not {trials}."
            )
        return random_points(parsed, trials, seed)
    raise SearchSpaceError(f"strategy must be 'grid' or 'random', not {strategy!r}.")
