"""One error that lists every problem found, so a user fixes everything in one round."""

from __future__ import annotations

from enum import StrEnum

from pydantic import ValidationError


class Problems(ValueError):
    def __init__(self, subject: str, problems: list[str]) -> None:
        self.subject = subject
        self.problems = list(problems)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        count = len(self.problems)
        listing = "\n".join(f"  - {p}" for p in self.problems)
        noun = "problem" if count == 1 else "problems"
        return f"{self.subject}: {count} {noun}:\n{listing}"


def format_validation_error(err: ValidationError) -> list[str]:
    """Pydantic's errors as 'where: what' lines in the user's vocabulary."""
    lines = []
    for error in err.errors(include_url=False):
        where = ""
        for part in error["loc"]:
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "is required"
        elif error["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return lines


class RefusalKind(StrEnum):
    """Why an action was refused; the HTTP API answers 403, 409 or 422 accordingly."""

    FORBIDDEN = "Forbidden"  # this person may not do this
    CONFLICT = "Conflict"  # not now: the state does not allow it
    INVALID = "Invalid"  # what was sent is incomplete or wrong


class Refusal(str):
    """The message a person reads when their action is refused, with its kind."""

    kind: RefusalKind

    def __new__(cls, message: str, kind: RefusalKind) -> Refusal:
        refusal = super().__new__(cls, message)
        refusal.kind = kind
        return refusal


def forbidden(message: str) -> Refusal:
    return Refusal(message, RefusalKind.FORBIDDEN)


def conflict(message: str) -> Refusal:
    return Refusal(message, RefusalKind.CONFLICT)


def invalid(message: str) -> Refusal:
    return Refusal(message, RefusalKind.INVALID)
