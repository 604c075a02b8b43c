"""Who may do what to a job: the rules of the three roles, in one place.

A caller that may not see a job is told the job does not exist (never that it is forbidden), so
a key learns nothing of other submitters' jobs, not even that their ids are taken.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.domain.enums import Role


@dataclass(frozen=True, slots=True)
class Caller:
    """Whoever asks: an API key's name and role, or the CLI (an operator, since it holds the
    database URL)."""

    name: str
    role: Role

    def sees(self, submitted_by: str) -> bool:
        return self.role is not Role.SUBMIT or submitted_by == self.name

    def changes(self, submitted_by: str) -> bool:
        """Cancel, retry, revert: operators any job, submitters their own."""
        return self.role is Role.OPERATE or (self.role is Role.SUBMIT and submitted_by == self.name)

    @property
    def submits(self) -> bool:
        return self.role in (Role.SUBMIT, Role.OPERATE)

    @property
    def sees_all(self) -> bool:
        return self.role is not Role.SUBMIT

    @property
    def manages_keys(self) -> bool:
        return self.role is Role.OPERATE


def operator(name: str = "cli") -> Caller:
    return Caller(name, Role.OPERATE)
