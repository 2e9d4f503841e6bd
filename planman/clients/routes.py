import sqlalchemy as sa
from flask import current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from planman.clients import bp, services
from planman.clients.forms import NAME_TAKEN, ClientForm
from planman.extensions import db
from planman.invoices.services import recent_invoices_for
from planman.models import Client
from planman.pagination import paginate
from planman.tenancy import firm_params, get_for_firm_or_404


@bp.before_request
@login_required
def require_login():
    pass


@bp.get("/")
def index():
    # NUL cannot reach PostgreSQL (an error, not "no match"); no client name holds one anyway.
    query = request.args.get("q", "").replace("\x00", "").strip()[:200]
    page = paginate(
        services.search_select(query),
        page=request.args.get("page", 1, type=int),
        per_page=current_app.config["CLIENTS_PER_PAGE"],
        params=firm_params(),
    )
    # Search-as-you-type asks for the results only; a normal visit, or htmx
    # restoring a page from history, gets the whole page.
    partial = request.headers.get("HX-Request") and not request.headers.get("HX-History-Restore-Request")
    response = make_response(render_template(
        "clients/_results.html" if partial else "clients/index.html", page=page, query=query
    ))
    response.vary.add("HX-Request")  # one URL, two bodies: caches must tell them apart
    return response


def _save(form: ClientForm, client: Client | None) -> Client | None:
    """Save, or None when someone saved the same name a moment ago (the form
    checked, but the unique index has the last word): the form says so."""
    if client is None:
        client = Client(firm_id=current_user.firm_id)
        db.session.add(client)
    else:
        client.revision += 1
    form.apply_to(client)
    try:
        db.session.commit()
    except sa.exc.IntegrityError as error:
        db.session.rollback()
        if not services.is_name_clash(error):
            raise
        form.name.errors = [*form.name.errors, NAME_TAKEN]
        return None
    return client


@bp.route("/new", methods=["GET", "POST"])
def new():
    form = ClientForm()
    if form.validate_on_submit():
        client = _save(form, None)
        if client is not None:
            flash(f"Client {client.name} added.", "success")
            return redirect(url_for("clients.view", client_id=client.id))
    return render_template("clients/form.html", form=form, client=None), 422 if form.errors else 200


@bp.get("/<int:client_id>")
def view(client_id: int):
    client = get_for_firm_or_404(Client, client_id)
    return render_template("clients/view.html", client=client, invoices=recent_invoices_for(client))


@bp.route("/<int:client_id>/edit", methods=["GET", "POST"])
def edit(client_id: int):
    client = get_for_firm_or_404(Client, client_id)
    form = ClientForm(client=client)
    if form.validate_on_submit():
        if _save(form, client) is not None:
            flash("Client saved.", "success")
            return redirect(url_for("clients.view", client_id=client.id))
        client = get_for_firm_or_404(Client, client_id)  # as stored, after the rollback
    return render_template("clients/form.html", form=form, client=client), 422 if form.errors else 200
