"""Setup > Integrations and the connect flow.

Every logged-in user sees which providers are connected and how; only admins
get the controls, and any other user's POST (or admin-only page) is a 404.
The OAuth start is a POST so it carries the CSRF token; the callback checks
Authlib's ``state`` (and PKCE verifier) and that the user coming back is an
admin of the firm that started the flow. A failure anywhere before the
tenant is stored leaves the database as it was. Every word that differs by
provider comes from the provider (``connect_label``, ``tenant_word``, ...)."""
from __future__ import annotations

import logging

import requests
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

from planman.integrations import connections, registry, webhooks
from planman.integrations.errors import IntegrationError
from planman.integrations.forms import ChooseTenantForm, ConfirmForm
from planman.integrations.views import bp
from planman.tenancy import current_firm_id

log = logging.getLogger(__name__)

# Who started a connect flow in this browser: checked when the provider sends the user back.
FLOW_KEY = "integration_connect"


@bp.record_once
def _register_cli(state):
    connections.register_cli(state.app)


def _provider_or_404(key: str):
    provider = registry.get_provider(key)
    if provider is None:
        abort(404)
    return provider


def _admin_or_404() -> None:
    if not current_user.is_admin:
        abort(404)


def _admin_provider_or_404(key: str):
    """The provider for an admin-only route: unknown providers and non-admins get a 404."""
    provider = _provider_or_404(key)
    _admin_or_404()
    return provider


def _connection(provider):
    return connections.connection_for(current_firm_id(), provider.key)


def _provider_page(provider):
    return redirect(url_for("integrations.provider", provider_key=provider.key))


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


# -- pages ----------------------------------------------------------------------

@bp.get("/")
@login_required
def index():
    firm_id = current_firm_id()
    rows = [(provider, connections.connection_for(firm_id, provider.key)) for provider in registry.all_providers()]
    return render_template("integrations/index.html", rows=rows, form=ConfirmForm())


@bp.get("/<provider_key>")
@login_required
def provider(provider_key):
    provider = _provider_or_404(provider_key)
    return _render_provider(provider)


def _render_provider(provider, settings_form=None, status=200):
    connection = _connection(provider)
    if settings_form is None and current_user.is_admin and connection is not None and connection.is_usable:
        settings_form = _settings_form(provider, connection)
    return render_template(
        "integrations/provider.html", provider=provider, connection=connection, form=ConfirmForm(),
        settings_form=settings_form, details_state=connections.details_state(connection),
        configured=provider.is_configured(current_app),
        failed_events=webhooks.failed_count(current_firm_id(), provider.key) if provider.accepts_webhooks else 0,
        waiting_events=webhooks.waiting_accounts(current_firm_id(), provider.key) if provider.accepts_webhooks else [],
    ), status


def _settings_form(provider, connection, **kwargs):
    """The provider's own settings form for the connection (None: it has none)."""
    return provider.settings_form(connection, connections.firm_tax_rates(connection.firm_id), **kwargs)


# -- connect --------------------------------------------------------------------------

@bp.post("/<provider_key>/connect")
@login_required
def connect(provider_key):
    provider = _admin_provider_or_404(provider_key)
    if not provider.is_configured(current_app):
        flash(f"{provider.label} is not set up on this PlanMan server yet (no client id and secret).", "error")
        return _provider_page(provider)
    connection = _connection(provider)
    if connection is not None and connection.is_usable:
        flash(f"This firm is already connected to {connection.tenant_name or provider.label}. "
              f"Disconnect first to connect another {provider.tenant_word}.", "error")
        return _provider_page(provider)
    session[FLOW_KEY] = {"provider": provider.key, "firm_id": current_user.firm_id, "user_id": current_user.id}
    # Providers match the redirect URI exactly, so it is built from the configured
    # public address, never from the Host header of this request.
    redirect_uri = current_app.config["PUBLIC_BASE_URL"] + url_for("integrations.callback", provider_key=provider.key)
    return connections.start(provider, redirect_uri)


@bp.get("/<provider_key>/callback")
@login_required
def callback(provider_key):
    provider = _admin_provider_or_404(provider_key)
    flow = session.pop(FLOW_KEY, None)
    if not flow or flow.get("provider") != provider.key or flow.get("firm_id") != current_user.firm_id:
        flash(f"That {provider.label} sign-in was not started from this PlanMan account, or it has expired, "
              f"so it was ignored. Click {provider.connect_label} to try again.", "error")
        return _provider_page(provider)
    try:
        token, tenants = provider.complete_authorization()
    except MismatchingStateError:
        log.info("%s callback: unknown or reused state", provider.key)
        flash(f"That {provider.label} sign-in link was already used or did not start here, so it was ignored. "
              f"Nothing was changed; click {provider.connect_label} to try again.", "error")
        return _provider_page(provider)
    except OAuthError as error:
        log.info("%s callback: OAuth error %s", provider.key, error.error)
        flash(_oauth_message(provider, error.error), "error")
        return _provider_page(provider)
    except IntegrationError as error:
        log.info("%s callback: listing tenants failed: %s", provider.key, error.detail or error.user_message)
        flash(f"{provider.label} accepted the sign-in, but PlanMan could not read which {provider.tenant_words} "
              f"you approved ({error.user_message}) Nothing was changed; try again in a moment.", "error")
        return _provider_page(provider)
    except requests.RequestException as error:
        log.info("%s callback: %s", provider.key, type(error).__name__)
        flash(f"{provider.label} could not be reached to finish connecting. Nothing was changed; "
              f"try again in a moment.", "error")
        return _provider_page(provider)
    try:
        connection = connections.complete(provider, current_user.firm_id, current_user, token, tenants)
    except connections.ConnectFailed as error:
        flash(error.user_message, "error")
        return _provider_page(provider)
    if connection.state == "choosing":
        return redirect(url_for("integrations.choose", provider_key=provider.key))
    flash(f"Connected to {connection.tenant_name}.", "success")
    return _provider_page(provider)


def _oauth_message(provider, error: str) -> str:
    label, connect = provider.label, provider.connect_label
    if error == "access_denied":
        return f"You did not allow PlanMan to use {label}, so nothing was connected. " \
               f"Click {connect} when you are ready."
    if error in ("invalid_grant", "invalid_request"):
        return f"{label} did not accept that sign-in (it may have expired or been used already). " \
               f"Nothing was changed; click {connect} to try again."
    if error in ("invalid_client", "unauthorized_client"):
        return f"{label} did not recognise this PlanMan server's app credentials. Nothing was changed; " \
               f"ask whoever runs PlanMan to check the {label} client id and secret."
    return f"{label} reported a problem ({error or 'unknown error'}) and nothing was connected. " \
           f"Click {connect} to try again."


@bp.route("/<provider_key>/choose", methods=["GET", "POST"])
@login_required
def choose(provider_key):
    provider = _admin_provider_or_404(provider_key)
    connection = _connection(provider)
    tenants = connections.pending_tenants(connection)
    if not tenants:
        flash(f"There is no {provider.label} {provider.tenant_word} to choose. "
              f"Click {provider.connect_label} to start.", "error")
        return _provider_page(provider)
    form = ChooseTenantForm(provider, tenants)
    if form.validate_on_submit():
        try:
            problems = connections.choose(provider, connection, form.tenant_id.data, current_user)
        except connections.ConnectFailed as error:
            flash(error.user_message, "error")
            return _provider_page(provider)
        flash(f"Connected to {connection.tenant_name}.", "success")
        for problem in problems:
            flash(problem, "warning")
        return _provider_page(provider)
    status = 422 if form.errors else 200
    return render_template("integrations/choose_tenant.html", provider=provider, form=form), status


# -- settings ----------------------------------------------------------------------------

def _connected_or_redirect(provider):
    connection = _connection(provider)
    if connection is None or not connection.is_usable:
        flash(f"Connect to {provider.label} first.", "error")
        return None, _provider_page(provider)
    return connection, None


@bp.post("/<provider_key>/settings")
@login_required
def settings(provider_key):
    provider = _admin_provider_or_404(provider_key)
    connection, response = _connected_or_redirect(provider)
    if response:
        return response
    if connections.details_state(connection) != "loaded" or not provider.settings_ready(connection):
        flash(f"Settings can be chosen once {provider.label}'s {provider.details_noun} have loaded.", "error")
        return _provider_page(provider)
    form = _settings_form(provider, connection)
    if form is None:
        abort(404)  # a provider without settings has nothing to save
    if form.validate_on_submit():
        provider.save_settings(connection, form)
        flash(f"{provider.label} settings saved.", "success")
        return _provider_page(provider)
    return _render_provider(provider, settings_form=form, status=422)


@bp.get("/<provider_key>/settings/details")
@login_required
def settings_details(provider_key):
    """The settings area alone: HTMX polls it while the provider's lists load."""
    provider = _admin_provider_or_404(provider_key)
    connection = _connection(provider)
    form = _settings_form(provider, connection) if connection is not None and connection.is_usable else None
    return render_template(provider.settings_template, provider=provider, connection=connection,
                           settings_form=form, details_state=connections.details_state(connection),
                           form=ConfirmForm())


@bp.post("/<provider_key>/refresh")
@login_required
def refresh(provider_key):
    provider = _admin_provider_or_404(provider_key)
    connection, response = _connected_or_redirect(provider)
    if response:
        return response
    connections.enqueue_refresh(connection)
    if _is_htmx():
        return settings_details(provider.key)
    return _provider_page(provider)


# -- disconnect -----------------------------------------------------------------------------

@bp.post("/<provider_key>/disconnect")
@login_required
def disconnect(provider_key):
    provider = _admin_provider_or_404(provider_key)
    connection = _connection(provider)
    if connection is None or connection.state == "disconnected":
        flash(f"This firm is not connected to {provider.label}.", "error")
        return _provider_page(provider)
    name = connection.tenant_name or provider.label
    problems = connections.disconnect(provider, connection)
    flash(f"Disconnected from {name}. Records already sent stay in {provider.label}, and their links come back "
          f"if you connect the same {provider.tenant_word} again.", "success")
    for problem in problems:
        flash(problem, "warning")
    return _provider_page(provider)


# -- events given up on -------------------------------------------------------------------

@bp.post("/<provider_key>/events/retry")
@login_required
def retry_events(provider_key):
    """Process again the firm's events from the provider that failed for good."""
    provider = _admin_provider_or_404(provider_key)
    count = webhooks.retry_failed(current_firm_id(), provider.key)
    if count:
        flash(f"Processing {count} event{'s' if count != 1 else ''} from {provider.label} again.", "success")
    else:
        flash(f"No events from {provider.label} are waiting to be processed again.", "info")
    return _provider_page(provider)


@bp.post("/<provider_key>/events/forget")
@login_required
def forget_events(provider_key):
    """Drop the events waiting for an account the firm will not connect again."""
    provider = _admin_provider_or_404(provider_key)
    account = request.form.get("account", "")
    count = webhooks.forget_waiting(current_firm_id(), provider.key, account, current_user.name)
    if count:
        flash(f"Forgot {count} event{'s' if count != 1 else ''} from {provider.label} that waited for "
              f"{account}.", "success")
    else:
        flash(f"No events from {provider.label} are waiting for that {provider.tenant_word}.", "info")
    return _provider_page(provider)
