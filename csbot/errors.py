"""The errors csbot raises on purpose.

Every message says what was expected, what was found, and how to fix it. The CLI and the
web app catch `CsbotError` and show its message; anything else is a bug and keeps its traceback.
"""


class CsbotError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class SettingsError(CsbotError):
    """A setting has a value that cannot work."""


class DataError(CsbotError):
    """An input file or message is malformed; nothing was changed."""

    def __init__(self, message: str, *, problems: list[str] | None = None):
        self.problems = problems or []
        if self.problems:
            shown = self.problems[:20]
            more = len(self.problems) - len(shown)
            message += "\n  " + "\n  ".join(shown)
            if more:
                message += f"\n  ... and {more} more"
        super().__init__(message)


class TemplateError(CsbotError):
    """A reply template does not parse or names a slot nobody can fill."""


class StoreUnavailable(CsbotError):
    """The database cannot be reached (PostgreSQL down, a wrong URL or password)."""


class ModelError(CsbotError):
    """A model version folder is missing, incomplete or does not match this code."""


class AnswerIndexError(CsbotError):
    """The answer index on disk is missing, damaged or built with another encoder."""


class TrainingError(CsbotError):
    """Training cannot start or did not produce a usable model."""


class TrainingCancelled(TrainingError):
    """A training run was cancelled; the serving model is untouched."""


class AccessDenied(CsbotError):
    """The caller is not logged in, or their role may not do this."""


class RateLimited(CsbotError):
    """Too many requests from one client; try again after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float):
        self.retry_after = retry_after
        super().__init__(message)


class StaleEdit(DataError):
    """A save made from a copy that another person changed since it was opened; nothing was saved."""


class AccountSlowed(RateLimited):
    """An account had many failed logins from browsers it never used, from any address: such
    logins wait `retry_after` seconds (service/auth.py); a browser that logged in before does not."""


class ReplyFailed(Exception):
    """An unexpected error (a bug, a failing disk or model) while answering a message that was
    already stored: the message is in the staff inbox as 'error', and `error_id` names the logged
    traceback. Not a CsbotError: the customer cannot fix it, and the edge answers 500."""

    def __init__(self, error_id: str, *, conversation_id: str, message_id: int):
        self.error_id = error_id
        self.conversation_id = conversation_id
        self.message_id = message_id
        super().__init__(f"something went wrong on our side while answering (error {error_id}); the message "
                         "was kept and passed to our team")


class IdentityRefused(CsbotError):
    """A customer identity token that is missing its signature, forged, expired, too long-lived or
    for another customer than the conversation's: refused, never trusted (service/identity.py)."""
