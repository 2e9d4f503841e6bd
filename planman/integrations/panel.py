"""What a record's integration panel shows, decided in one place.

The template only renders the ``PanelState``; every rule about which button
appears (Send, Update, Retry, none) and what it says lives here."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property
from typing import Optional

import sqlalchemy as sa

from planman.extensions import db
from planman.integrations import links, push, remote_status
from planman.integrations.base import Provider
from planman.integrations.push import progress_token
from planman.models import Connection, ExternalLink, PushJob, client_name_key


CHIPS = {
    "never_sent": ("Not sent", "idle"), "pushing": ("Sending…", "busy"), "failed": ("Failed", "bad"),
    "needs_reconnect": ("Reconnect", "bad"), "not_connected": ("Not connected", "idle"),
    "choosing": ("Not set up", "idle"), "blocked": ("Blocked", "bad"), "void_pending": ("Void here, open there", "warn"),
    "closed": ("Void", "idle"),
}


@dataclass
class PanelState:
    provider: Provider
    record_type: str
    record: object
    # not_connected | needs_reconnect | choosing | pushing | locked | gone | failed | blocked | sent | never_sent
    # | void_pending (void in PlanMan, live at the provider) | closed (void in PlanMan, nothing live there)
    kind: str
    connection: Optional[Connection] = None
    link: Optional[ExternalLink] = None
    push: Optional[PushJob] = None  # the active push, or the latest one
    view_url: Optional[str] = None
    remote_status_label: str = ""
    changed_since_sent: bool = False
    message: str = ""
    checking_status: bool = False  # a worker is reading the remote status right now
    settings_problems: tuple[str, ...] = ()
    total_mismatch: str = ""  # the provider's total differs from PlanMan's for what was sent
    warnings: tuple[str, ...] = ()  # what the provider would refuse about the record
    confirm: str = ""  # the question the provider asks before this Update (Provider.confirm_update)

    @cached_property
    def notice(self) -> str:
        """What to know about the record's state at the provider (an archived
        contact, where a paid invoice's payments went). Worked out when the
        panel shows it, not for a closed tab: a paid invoice's costs a query."""
        notice = ""
        if self.kind == "sent":
            notice = (self.provider.remote_notice(self.record_type, self.link.remote_status)
                      or renamed_notice(self.provider, self.link, self.record))
        if self.record_type == "invoice" and self.record.status == "paid" and self.kind in ("sent", "never_sent"):
            notice = paid_notice(self.provider, self.connection, self.record)
        return notice

    @property
    def button(self) -> Optional[str]:
        """The label of the one action the panel offers, if any."""
        if self.kind in ("never_sent",):
            return "Send"
        if self.kind == "sent":
            return "Update"
        if self.kind == "failed":
            return "Retry"
        if self.kind == "gone":
            return "Send again as a new draft"
        if self.kind == "void_pending":
            return f"Void in {self.provider.label}"
        return None

    @property
    def chip(self) -> tuple[str, str]:
        """The tab's status chip, (words, tone), so the state shows while the
        panel is closed. Where the record stands remotely, the provider's own
        words for it (``remote_status_label``)."""
        if self.kind == "sent":
            if self.changed_since_sent:
                return "Changed since sent", "warn"
            return ("Totals differ", "warn") if self.total_mismatch else ("Sent", "ok")
        if self.kind in ("locked", "gone"):
            return self.remote_status_label or "Locked", "locked"
        return CHIPS.get(self.kind, ("", "idle"))

    @property
    def opens_by_default(self) -> bool:
        """A failed push, unsent changes or another total there need the user's attention."""
        return self.kind in ("failed", "blocked", "void_pending") or (
            self.kind == "sent" and bool(self.changed_since_sent or self.total_mismatch))

    @property
    def polling(self) -> bool:
        return self.kind == "pushing" or self.checking_status

    @property
    def seen_push(self) -> str:
        """While pushing, the push as this panel shows it; polls send it back."""
        return progress_token(self.push) if self.kind == "pushing" else ""


@cache
def _connection_link_and_latest_push() -> sa.Select:
    """The firm's connection, the record's link in its current tenant and the
    record's latest push there, in one statement built once: open panels are
    polled, and this is the same as ``links.connection_for``, ``links.find_link``
    and ``push.latest_push`` in a third of the time."""
    latest_push_id = (
        sa.select(PushJob.id)
        .where(PushJob.firm_id == Connection.firm_id, PushJob.provider == Connection.provider,
               PushJob.tenant_id == Connection.tenant_id, PushJob.record_type == sa.bindparam("record_type"),
               PushJob.record_id == sa.bindparam("record_id"))
        .order_by(PushJob.id.desc()).limit(1)
        .correlate(Connection).scalar_subquery()
    )
    return (
        sa.select(Connection, ExternalLink, PushJob)
        .where(Connection.firm_id == sa.bindparam("firm_id"), Connection.provider == sa.bindparam("provider"))
        .outerjoin(ExternalLink, sa.and_(
            ExternalLink.provider == Connection.provider, ExternalLink.tenant_id == Connection.tenant_id,
            ExternalLink.record_type == sa.bindparam("record_type"), ExternalLink.record_id == sa.bindparam("record_id"),
        ))
        .outerjoin(PushJob, PushJob.id == latest_push_id)
    )


def paid_notice(provider: Provider, connection: Connection, invoice) -> str:
    """What happened to a paid invoice's payments at this ledger, in words."""
    from planman.payments import ledger  # the payments layer sits beside this one, not below it

    label = provider.label
    if type(provider).record_payment is Provider.record_payment:  # the provider does not declare it
        return (f"Marked paid in PlanMan. PlanMan does not record payments in {label} yet, so the invoice is "
                f"sent and updated as any other: record the payment in {label}.")
    counting, not_sent = ledger.payments_not_sent(invoice.id, provider.key, connection.tenant_id)
    if not counting:
        return (f"Marked paid in PlanMan without a payment recorded there, so nothing was recorded in {label}: "
                f"record the payment in {label}.")
    if not_sent:
        them = "it" if not_sent == 1 else "them"
        which = ("Its payment was" if counting == 1 else "Its payments were" if not_sent == counting
                 else f"{not_sent} of its {counting} payments {'was' if not_sent == 1 else 'were'}")
        return (f"Marked paid in PlanMan. {which} received before the invoice reached {label} (or while {label} "
                f"was not connected), so PlanMan did not record {them} there: record {them} in {label}.")
    return (f"Marked paid in PlanMan. Its {'payment is' if counting == 1 else 'payments are'} recorded in {label} "
            f"by PlanMan: under Payments, each says whether {label} has it.")


def _void_rules(state: PanelState, provider: Provider, latest: Optional[PushJob]) -> None:
    """A PlanMan-void invoice is never sent as new; one still live at the
    provider offers to void it there, unless the provider refused that."""
    link = state.link
    failed_since_sent = (latest is not None and latest.state == "failed" and link is not None
                         and latest.finished_at and latest.finished_at >= link.pushed_at)
    if link is None:
        state.kind, state.message = "closed", push.void_not_sent_message(provider)
    elif provider.is_closed(state.record_type, link.remote_status):
        state.kind, state.message = "closed", provider.closed_message(state.record_type, link.remote_status)
    elif failed_since_sent and latest.outcome == "locked":  # the provider refused to void it (payments)
        state.kind, state.message = "locked", latest.error_message
    elif failed_since_sent:
        state.kind, state.message = "failed", latest.error_message  # Retry voids it again
    else:
        state.kind = "void_pending"
        state.message = f"This invoice is void in PlanMan but still open in {provider.label}."


def _still_blocked(provider: Provider, connection: Connection, record_type: str, record) -> bool:
    """The record another one needs (an invoice's client) is still in the state
    the provider refused (say archived), as far as PlanMan last heard."""
    dependency_type, attribute = push.DEPENDENCIES.get(record_type, (None, None))
    if dependency_type is None:
        return False
    blocker = links.find_link(connection, dependency_type, getattr(record, attribute))
    return blocker is not None and bool(provider.remote_notice(dependency_type, blocker.remote_status))
def total_mismatch(provider: Provider, link: ExternalLink, record, changed_since_sent: bool) -> str:
    """Plain words when the provider's total for what was sent differs from PlanMan's."""
    ours = getattr(record, "total", None)
    theirs = link.remote_total
    if theirs is None or ours is None or changed_since_sent or theirs == ours:
        return ""
    said = f"{provider.label}'s total for this invoice is {theirs:,.2f} {record.currency}, but PlanMan's is {ours:,.2f}."
    if provider.maps_tax_rates:
        return (f"{said} Check the {provider.label} tax rate each PlanMan tax rate is mapped to under "
                f"Setup > Integrations > {provider.label}, then Update.")
    return (f"{said} {provider.label} works out tax or rounding differently for this invoice, so Update would not "
            f"change it: check the invoice in {provider.label} before you send it to your client.")



def renamed_notice(provider: Provider, link: ExternalLink, record) -> str:
    """Plain words when the record was renamed at the provider after PlanMan last sent it."""
    theirs, ours = link.remote_name, getattr(record, "name", None)
    if not theirs or ours is None or client_name_key(theirs) == client_name_key(ours):
        return ""
    if link.remote_updated_at is None or link.remote_updated_at < link.pushed_at:
        return ""  # read before PlanMan's last push, which sent PlanMan's name
    return (f"Renamed in {provider.label}: it is “{theirs}” there and “{ours}” here. Update sends PlanMan's name "
            f"back to {provider.label}; or rename it here to match.")


def panel_state(provider: Provider, record_type: str, record, firm_id: int) -> PanelState:
    row = db.session.execute(_connection_link_and_latest_push(), {
        "firm_id": firm_id, "provider": provider.key, "record_type": record_type, "record_id": record.id,
    }).first()
    connection, link, latest = row if row is not None else (None, None, None)
    state = PanelState(provider=provider, record_type=record_type, record=record, kind="not_connected",
                       connection=connection)
    if connection is None or connection.state == "disconnected":
        return state
    if connection.state == "needs_reconnect":
        state.kind, state.message = "needs_reconnect", connection.state_reason
        return state
    if connection.state != "connected":
        state.kind = "choosing"
        return state

    state.link = link
    if latest is not None:
        latest = push.reconcile_lost(latest)
    state.push = latest
    if state.link is not None:
        state.view_url = provider.view_url(connection, record_type, state.link.external_id)
        state.remote_status_label = provider.remote_status_label(record_type, state.link.remote_status) \
            if state.link.remote_status else ""
        state.changed_since_sent = links.changed_since_sent(state.link, record)
        state.total_mismatch = total_mismatch(provider, state.link, record, state.changed_since_sent)
    if record_type == "invoice":
        state.settings_problems = tuple(provider.settings_problems(connection))
    state.warnings = tuple(provider.record_warnings(connection, record_type, record))

    if latest is not None and latest.is_active:
        state.kind = "pushing"
        state.message = latest.error_message if latest.state == "retrying" else ""
    elif push.is_void(record_type, record):
        _void_rules(state, provider, latest)
    elif state.link is not None and provider.is_locked(record_type, state.link.remote_status):
        state.kind, state.message = "locked", provider.locked_message(record_type, state.link.remote_status)
    elif state.link is not None and provider.is_gone(record_type, state.link.remote_status):
        state.kind = "gone"
        state.message = provider.gone_message(record_type, state.link.remote_status)
    elif latest is not None and latest.state == "failed" and (state.link is None or latest.finished_at and
                                                              latest.finished_at >= state.link.pushed_at):
        state.kind, state.message = "failed", latest.error_message
        if latest.outcome == "blocked" and _still_blocked(provider, connection, record_type, record):
            state.kind = "blocked"  # Retry cannot help until what blocks it changes
    elif state.link is not None:
        state.kind = "sent"
    else:
        state.kind = "never_sent"

    if state.kind in ("sent", "failed") and state.link is not None:
        state.confirm = provider.confirm_update(record_type, state.link.remote_status)
    if state.kind in ("sent", "locked") and record_type == "invoice" and remote_status.is_stale(state.link):
        state.checking_status = remote_status.request_check(state.link)
    return state
