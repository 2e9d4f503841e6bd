"""Bulk sends: start one (from the list pages' selection, or "all not yet sent" /
"all changed since last sent"), follow its progress, retry just its failures.

Any user of the firm may send, as with single pushes; every bulk id is looked
up through the firm scope, so another firm's id is a 404."""
from __future__ import annotations

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from planman.extensions import db
from planman.integrations import bulk, links, push, registry
from planman.integrations.panel_views import RECORD_PAGES
from planman.integrations.views import bp
from planman.models import BulkPush
from planman.security import safe_next
from planman.tenancy import firm_select, get_for_firm_or_404

LIST_PAGES = {"client": "clients.index", "invoice": "invoices.index"}
NOUNS = {"client": ("client", "clients"), "invoice": ("invoice", "invoices")}
MAX_SELECTED = 10000  # ids accepted from one form post


@bp.app_context_processor
def _bulk_send_helpers():
    return {"bulk_send_provider": bulk_send_provider, "bulk_send_providers": bulk_send_providers}


def bulk_send_providers() -> list:
    """The providers the list pages' "Send to …" can go to: configured and
    connected for the user's firm, in registry order (the first is the default).
    Looked up once per request, however many rows ask."""
    if "bulk_send_providers" not in g:
        g.bulk_send_providers = []
        if current_user.is_authenticated:
            usable = links.usable_provider_keys(current_user.firm_id)
            g.bulk_send_providers = [
                provider for provider in registry.configured_providers(current_app) if provider.key in usable]
    return g.bulk_send_providers


def bulk_send_provider():
    """The default of bulk_send_providers(), or None (then the list pages show no selection)."""
    return next(iter(bulk_send_providers()), None)


def _provider(key: str):
    provider = registry.get_provider(key)
    if provider is None or not provider.is_configured(current_app):
        abort(404)
    return provider


def _back(record_type: str | None):
    fallback = url_for(LIST_PAGES[record_type]) if record_type in LIST_PAGES else url_for(".bulk_sends")
    return redirect(safe_next(request.form.get("next"), fallback))


@bp.get("/bulk")
@login_required
def bulk_sends():
    """Recent bulk sends, and sending everything not yet sent or changed."""
    recent = db.session.scalars(firm_select(BulkPush).order_by(BulkPush.id.desc()).limit(20)).all()
    rows = [(b, bulk.progress(b)) for b in recent]
    providers = [(p, links.connection_for(current_user.firm_id, p.key)) for p in registry.configured_providers(
        current_app)]
    return render_template("integrations/bulk_index.html", rows=rows, providers=providers, nouns=NOUNS,
                           what_was_sent=_what_was_sent)


def _what_was_sent(record: BulkPush, state: bulk.Progress) -> str:
    """"12 invoices", or "10 invoices and 4 clients" when invoices brought clients the ledger lacked."""
    def counted(record_type: str, n: int) -> str:
        singular, plural = NOUNS[record_type]
        return f"{n} {singular if n == 1 else plural}"

    own = state.by_type.get(record.record_type, {}).get("total", 0)
    brought = sum(kind["total"] for record_type, kind in state.by_type.items() if record_type != record.record_type)
    return counted(record.record_type, own) + (f" and {counted('client', brought)}" if brought else "")


@bp.post("/bulk")
@login_required
def bulk_start():
    """Send to a provider: the selected records, or all not yet sent, or all changed since last sent."""
    record_type = request.form.get("record_type", "")
    mode = request.form.get("mode", "selected")
    if record_type not in push.RECORD_MODELS or mode not in bulk.SELECT_MODES:
        abort(400)
    # Without a provider named: the one the list pages offer (the firm's connected
    # one), else the first that takes records (which then asks to be connected).
    default = bulk_send_provider() or next(iter(registry.configured_providers(current_app)), None)
    provider = _provider(request.form.get("provider") or (default.key if default else ""))
    connection = links.connection_for(current_user.firm_id, provider.key)
    if connection is None or not connection.is_usable:
        flash(f"Connect {provider.label} before sending (Setup > Integrations).", "error")
        return _back(record_type)
    if record_type == "invoice" and provider.settings_problems(connection):
        flash(" ".join(provider.settings_problems(connection)), "error")
        return _back(record_type)
    ids = []
    for value in request.form.getlist("ids")[:MAX_SELECTED]:
        try:
            ids.append(int(value))
        except ValueError:
            abort(400)
    # An id no table can hold names no record (and would make the database raise): dropped
    # like another firm's.
    ids = [record_id for record_id in ids if 0 < record_id < 2**31]
    record_ids = bulk.select_record_ids(connection, record_type, mode, ids)
    if not record_ids:
        singular, plural = NOUNS[record_type]
        flash({"selected": f"Select at least one {singular} to send.",
               "not_sent": f"Every {singular} has been sent to {provider.label} already.",
               "changed": f"No {singular} has changed since it was last sent."}[mode], "info")
        return _back(record_type)
    started = bulk.start_bulk(connection, record_type, record_ids, user_id=current_user.id)
    return _to_started(started)


def _to_started(started: bulk.Started):
    """The new bulk send's page, saying what was already being sent; or, when an
    earlier bulk send has every record, that one's."""
    if started.joined:
        flash(f"{started.joined} of them were already being sent; they are followed here, not sent twice.", "info")
    elsewhere = sum(started.elsewhere.values())
    if started.bulk is None:
        flash("These are being sent already by the bulk send below: it carries on, and nothing is sent twice.", "info")
        return redirect(url_for(".bulk_push", bulk_id=max(started.elsewhere)))
    if elsewhere:
        flash(f"{elsewhere} of them are being sent already by an earlier bulk send (see Recent bulk sends), "
              "not here and not twice.", "info")
    return redirect(url_for(".bulk_push", bulk_id=started.bulk.id))


def _bulk_or_404(bulk_id: int) -> BulkPush:
    return get_for_firm_or_404(BulkPush, bulk_id)


def _context(record: BulkPush) -> dict:
    state = bulk.progress(record)
    failed = bulk.failures(record) if state.failed else []
    named = {}  # (record_type, id) -> (name, page URL with the panel open)
    for record_type, model in push.RECORD_MODELS.items():
        ids = [f.record_id for f in failed if f.record_type == record_type]
        if ids:
            for row in db.session.scalars(firm_select(model).where(model.id.in_(ids))):
                named[(record_type, row.id)] = (
                    row.name if record_type == "client" else row.number,
                    url_for(RECORD_PAGES[record_type], **{f"{record_type}_id": row.id}, panel=record.provider))
    return dict(bulk=record, progress=state, provider=registry.get_provider(record.provider), failed=failed,
                named=named, nouns=NOUNS,
                retryable=len(bulk.retryable(record)) if state.finished and state.failed else 0)


@bp.get("/bulk/<int:bulk_id>")
@login_required
def bulk_push(bulk_id: int):
    return render_template("integrations/bulk.html", **_context(_bulk_or_404(bulk_id)))


@bp.get("/bulk/<int:bulk_id>/progress")
@login_required
def bulk_progress(bulk_id: int):
    """The polling fragment: replaces itself every second until the send is over."""
    return render_template("integrations/_bulk_progress.html", **_context(_bulk_or_404(bulk_id)))


@bp.post("/bulk/<int:bulk_id>/retry")
@login_required
def bulk_retry(bulk_id: int):
    """Retry failed: a new bulk send of just the records that failed (not those locked at the provider)."""
    record = _bulk_or_404(bulk_id)
    connection = links.connection_for(current_user.firm_id, record.provider)
    if connection is None or not connection.is_usable or connection.tenant_id != record.tenant_id:
        provider = registry.get_provider(record.provider)
        label, word = (provider.label, provider.tenant_word) if provider else (record.provider, "account")
        flash(f"Reconnect {label} to the same {word} before retrying.", "error")
        return redirect(url_for(".bulk_push", bulk_id=record.id))
    started = bulk.retry_failed(record, connection, user_id=current_user.id)
    if started is None:
        flash("Nothing here can be retried.", "info")
        return redirect(url_for(".bulk_push", bulk_id=record.id))
    return _to_started(started)
