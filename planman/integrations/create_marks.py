"""Creates sent to a provider without idempotency keys, remembered in Redis.

Such a provider's exporter looks a record up before creating it, so a retry
after a lost answer finds the record instead of creating it twice. What the
lookup cannot tell is whether the record found is PlanMan's own create (the
push's outcome is "created") or one somebody made there ("linked", sending
only what PlanMan holds): the mark noted just before the create says so."""
from __future__ import annotations

CREATE_MARK_SECONDS = 7 * 24 * 3600  # longer than any push retries


class CreateMarks:
    """Creates sent to one tenant of one provider, remembered for a week."""

    def __init__(self, redis, provider_key: str, tenant_id: str):
        self.redis = redis
        self.prefix = f"{provider_key}:create-sent:{tenant_id}"

    def note(self, record_type: str, record_id: int) -> None:
        self.redis.set(f"{self.prefix}:{record_type}:{record_id}", "1", ex=CREATE_MARK_SECONDS)

    def sent_before(self, record_type: str, record_id: int) -> bool:
        try:
            return bool(self.redis.exists(f"{self.prefix}:{record_type}:{record_id}"))
        except Exception:  # Redis trouble only costs the word "created": the record is still linked
            return False
