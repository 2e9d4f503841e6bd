"""A record's integration panel (one URL: GET reports, POST pushes) and the
admins' list of failed pushes."""
from __future__ import annotations

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

from planman.auth.services import SESSION_EPOCH
from planman.extensions import db
from planman.integrations import links, push, registry
from planman.integrations.panel import panel_state
from planman.integrations.views import bp
from planman.models import PushJob
from planman.tenancy import firm_select, get_for_firm_or_404

RECORD_PAGES = {"client": "clients.view", "invoice": "invoices.view"}
FAILED_LIST_LIMIT = 200


def _provider_or_404(provider_key: str):
    provider = registry.get_provider(provider_key)
    if provider is None or not provider.is_configured(current_app):
        abort(404)
    return provider


def _record_or_404(record_type: str, record_id: int):
    if record_type not in push.RECORD_MODELS:
        abort(404)
    return get_for_firm_or_404(push.RECORD_MODELS[record_type], record_id)


def render_panel(provider, record_type: str, record):
    state = panel_state(provider, record_type, record, current_user.firm_id)
    htmx = bool(request.headers.get("HX-Request"))
    # A POST started a push; a poll naming a push (?push=) got the panel
    # because that push moved on: both are news to read out.
    news = htmx and (request.method == "POST" or bool(request.args.get("push")))
    return render_template("integrations/_panel.html", panel=state, oob_tab=htmx, announce=news)


@bp.get("/<provider_key>/<record_type>/<int:record_id>/panel")
def panel(provider_key: str, record_type: str, record_id: int):
    if _push_unchanged_since_last_poll(provider_key, record_type, record_id):
        # An open "Sending…" panel asks every second: until its push moves on
        # there is nothing new to show, and 204 tells htmx to keep what it has.
        return "", 204
    return _panel(provider_key, record_type, record_id)


def _push_unchanged_since_last_poll(provider_key: str, record_type: str, record_id: int) -> bool:
    """The cheap answer to a poll: one query, which also checks that the
    signed-in user's firm owns the push. The user id is read from the signed
    session (where Flask-Login keeps it) rather than loaded, because loading
    the user would double the cost of the hottest request in the app. Only
    ever answers "nothing new" (no data); every other case, including a
    visitor who is not signed in, takes the full, login-required path."""
    seen_push = request.args.get("push", "")
    user_id = session.get("_user_id", "")
    epoch = session.get(SESSION_EPOCH)
    return bool(seen_push and user_id.isdigit() and isinstance(epoch, int)) and push.still_as_seen(
        int(user_id), epoch, provider_key, record_type, record_id, seen_push)


@login_required
def _panel(provider_key: str, record_type: str, record_id: int):
    provider = _provider_or_404(provider_key)
    return render_panel(provider, record_type, _record_or_404(record_type, record_id))


@bp.post("/<provider_key>/<record_type>/<int:record_id>/panel")
@login_required
def push_record(provider_key: str, record_type: str, record_id: int):
    """Send / Update / Retry: start a push, or join the one already running."""
    provider = _provider_or_404(provider_key)
    record = _record_or_404(record_type, record_id)
    connection = links.connection_for(current_user.firm_id, provider.key)
    if connection is not None and connection.is_usable and _confirmed(provider, connection, record_type, record.id):
        push.start_push(connection, record_type, record.id, user_id=current_user.id)
    if request.headers.get("HX-Request"):
        return render_panel(provider, record_type, record)
    return redirect(url_for(RECORD_PAGES[record_type], **{f"{record_type}_id": record.id}, panel=provider.key))


def _confirmed(provider, connection, record_type: str, record_id: int) -> bool:
    """An Update the provider asks about goes ahead only when the click answered
    that question for the remote state it is in now (a page shown before the
    record changed remotely shows the question instead)."""
    link = links.find_link(connection, record_type, record_id)
    if link is None or not provider.confirm_update(record_type, link.remote_status):
        return True
    return request.form.get("confirmed") == link.remote_status


def _admin_only():
    if not current_user.is_admin:
        abort(404)


@bp.get("/failed")
@login_required
def failed_pushes():
    """The latest push of each record, where that push failed."""
    _admin_only()
    failures, count = push.failed_latest(current_user.firm_id, FAILED_LIST_LIMIT)
    records = {}
    for record_type, model in push.RECORD_MODELS.items():
        ids = [f.record_id for f in failures if f.record_type == record_type]
        if ids:
            for row in db.session.scalars(firm_select(model).where(model.id.in_(ids))):
                records[(record_type, row.id)] = row
    # A failure in a tenant the firm is no longer connected to cannot be retried there.
    current = {}
    for provider_key in {f.provider for f in failures}:
        connection = links.connection_for(current_user.firm_id, provider_key)
        current[provider_key] = connection.tenant_id if connection is not None and connection.is_usable else None
    elsewhere = {f.id: registry.get_provider(f.provider) for f in failures if current[f.provider] != f.tenant_id}
    return render_template("integrations/failed.html", failures=failures, count=count, records=records,
                           record_pages=RECORD_PAGES, elsewhere=elsewhere)


@bp.post("/pushes/<int:push_id>/retry")
@login_required
def retry(push_id: int):
    _admin_only()
    failed = get_for_firm_or_404(PushJob, push_id)
    if failed.state != "failed" or failed.outcome in ("locked", "closed"):
        flash("That push cannot be retried.", "error")
        return redirect(url_for(".failed_pushes"))
    connection = links.connection_for(current_user.firm_id, failed.provider)
    if connection is None or not connection.is_usable or connection.tenant_id != failed.tenant_id:
        provider = registry.get_provider(failed.provider)
        flash(f"Reconnect {provider.label if provider else failed.provider} before retrying.", "error")
        return redirect(url_for(".failed_pushes"))
    link = links.find_link(connection, failed.record_type, failed.record_id)
    if link is not None and registry.get_provider(failed.provider).confirm_update(failed.record_type,
                                                                                  link.remote_status):
        flash("That record needs a confirmation before it is updated: open it and answer the question in its panel.",
              "error")
        return redirect(url_for(".failed_pushes"))
    started, joined = push.start_push(connection, failed.record_type, failed.record_id, user_id=current_user.id)
    if joined:
        flash("That record is being sent already: its push under way carries on.", "info")
    elif started.state == "failed":  # the queue could not take it
        flash(started.error_message, "error")
    else:
        flash("Retrying: the push has been queued.", "success")
    return redirect(url_for(".failed_pushes"))
