"""The error raised when a work pool type cannot satisfy a compute request."""

from __future__ import annotations

from knot_prefect.errors import ConfigurationError


class ProfileNotSatisfiableError(ConfigurationError):
    """A work pool type cannot give a flow run what its compute profile asks for.

    The message names the profile, the pool type, what is wrong and what to change.
    """

    def __init__(self, profile: str, pool_type: str, problem: str, fix: str) -> None:
        self.profile = profile
        self.pool_type = pool_type
        self.problem = problem
        self.fix = fix
        super().__init__(
            f"Compute profile {profile!r} cannot run on a {pool_type!r} work pool: "
            f"{problem} To fix it: {fix}"
        )
