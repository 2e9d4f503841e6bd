"""Provider-neutral errors. Each carries a message a person can act on; the
exporter decides from the type whether to fail, retry or reschedule.

Default messages name the provider through ``{provider}``: raise them with
``provider=<label>`` (``TemporaryFailure(detail=..., provider=self.label)``);
without one they read "The accounting system ..."."""
from __future__ import annotations


class IntegrationError(Exception):
    user_message = "{provider} could not process this."

    def __init__(self, user_message: str | None = None, *, detail: str = "", provider: str = ""):
        self.provider = provider
        self.user_message = (user_message or self.user_message).replace("{provider}",
                                                                        provider or "The accounting system")
        self.detail = detail  # for logs; never contains secrets
        super().__init__(self.user_message)


class ValidationFailed(IntegrationError):
    """The provider refused the data. Fixing the record is the way forward."""

    def __init__(self, messages: list[str], field_errors: dict[str, list[str]] | None = None, *, provider: str = ""):
        self.messages = messages or ["The data was refused."]
        self.field_errors = field_errors or {}
        super().__init__(" ".join(self.messages), provider=provider)


def client_not_sent(error: ValidationFailed, label: str) -> ValidationFailed:
    """An invoice's push stopped at its client, which the provider refused: say it
    was the client (its messages name the client's fields, not the invoice's), as
    a bulk send does. Retried once the client is corrected."""
    return ValidationFailed([f"Its client could not be sent to {label}: {error.user_message}"], error.field_errors)


class RecordLocked(IntegrationError):
    """The remote record can no longer be changed (e.g. an approved invoice)."""

    def __init__(self, user_message: str, remote_status: str, external_id: str = ""):
        self.remote_status = remote_status
        self.external_id = external_id
        super().__init__(user_message)


class BlockedByDependency(IntegrationError):
    """Refused because of another record's state at the provider (an invoice
    whose contact is archived there): retrying cannot help until that record
    changes, so the push fails explained and offers no Retry until it has."""

    def __init__(self, user_message: str, record_type: str, record_id: int, remote_status: str):
        self.record_type = record_type
        self.record_id = record_id
        self.remote_status = remote_status
        super().__init__(user_message)


class RateLimited(IntegrationError):
    """Too many calls: try again after ``retry_after`` seconds, not before."""

    user_message = "{provider} asked us to slow down; the push will continue shortly."

    def __init__(self, retry_after: float, problem: str = "", *, provider: str = ""):
        self.retry_after = max(1.0, float(retry_after))
        self.problem = problem
        super().__init__(detail=f"rate limited ({problem or 'unknown'}), retry after {self.retry_after}s",
                         provider=provider)


class TemporaryFailure(IntegrationError):
    """A 5xx, a timeout or a dropped connection: worth retrying with backoff."""

    user_message = "{provider} could not be reached or had a problem on its side."


class AnswerWithoutId(TemporaryFailure):
    """The provider answered a write as done but named no record: nothing can
    be linked, so it is no success. Retrying is safe, because every push looks
    for the record (by PlanMan's reference or number) before creating one."""

    user_message = ("{provider} answered without saying which record it saved, so PlanMan cannot link it. "
                    "PlanMan will look for it and try again.")


class NeedsReconnect(IntegrationError):
    """The connection no longer works until an admin reconnects it."""

    user_message = "{provider} needs reconnecting: an admin must reconnect it under Setup > Integrations."


class NotConnected(IntegrationError):
    user_message = "This firm is not connected to {provider}."


class RemoteNotFound(IntegrationError):
    user_message = "The record no longer exists in {provider}."
