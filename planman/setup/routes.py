from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError

from planman.auth import services as accounts
from planman.auth import throttle
from planman.extensions import db
from planman.models import TaxRate, User, utcnow
from planman.security import public_url
from planman.setup import bp, services
from planman.setup.forms import ColleagueForm, ConfirmForm, FirmForm, TaxRateForm
from planman.tenancy import firm_select, get_for_firm_or_404


@bp.before_request
@login_required
def admins_only():
    # Setup does not exist for non-admins: a 404, as for anything not theirs.
    if not current_user.is_admin:
        abort(404)


@bp.get("/")
def index():
    return render_template("setup/index.html")


@bp.route("/firm", methods=["GET", "POST"])
def firm():
    firm = current_user.firm
    form = FirmForm(obj=firm, current_zone=firm.time_zone)
    if form.validate_on_submit():
        firm.time_zone = form.time_zone.data
        db.session.commit()
        flash(f"Times are now shown in {firm.time_zone.replace('_', ' ')}.", "success")
        return redirect(url_for("setup.firm"))
    return render_template("setup/firm.html", form=form), 422 if form.errors else 200


@bp.get("/users")
def users():
    return render_template("setup/users.html", users=services.firm_users(), form=ConfirmForm())


@bp.route("/users/new", methods=["GET", "POST"])
def new_user():
    form = ColleagueForm()
    if form.validate_on_submit():
        ip = request.remote_addr or "unknown"
        # "Already uses this email" tells whether an e-mail has an account, as sign-up's
        # answer does: the same budget per address limits both.
        if not throttle.reserve_signup(ip):
            form.email.errors.append("Too many attempts. Wait a few minutes, then try again.")
            return render_template("setup/user_form.html", form=form), 429
        if accounts.email_taken(form.email.data):
            form.email.errors.append("Someone already uses this email address in PlanMan.")
        else:
            throttle.signup_succeeded(ip)
            user = User(firm_id=current_user.firm_id, name=form.name.data, email=form.email.data,
                        is_admin=form.is_admin.data)
            invite_url = None
            if form.access.data == "password":
                user.set_password(form.password.data)
            else:
                invite_url = public_url("auth.accept_invite", token=accounts.issue_invite(user))
            db.session.add(user)
            try:
                db.session.commit()
            except IntegrityError:  # the same form sent twice at once: the other one added the colleague
                db.session.rollback()
                form.email.errors.append("Someone already uses this email address in PlanMan.")
                return render_template("setup/user_form.html", form=form), 422
            if invite_url:
                return _show_invite_once(user, invite_url)
            flash(f"{user.name} can now log in with the password you chose.", "success")
            return redirect(url_for("setup.users"))
    return render_template("setup/user_form.html", form=form), 422 if form.errors else 200


@bp.post("/users/<int:user_id>/invite")
def reissue_invite(user_id: int):
    user = get_for_firm_or_404(User, user_id)
    if not ConfirmForm().validate_on_submit() or user.password_hash:
        abort(400)
    invite_url = public_url("auth.accept_invite", token=accounts.issue_invite(user))
    db.session.commit()
    return _show_invite_once(user, invite_url)


def _show_invite_once(user: User, invite_url: str):
    """The token is stored hashed, so the page after the form is the only place
    the link is ever shown. Carried there through the session and taken out
    when shown: a refresh of that page neither shows it again nor, as a
    re-sent form did, issues a new link that breaks the one already sent."""
    session["invite_to_show"] = {"user_id": user.id, "url": invite_url}
    return redirect(url_for("setup.invite_link", user_id=user.id))


@bp.get("/users/<int:user_id>/invite-link")
def invite_link(user_id: int):
    user = get_for_firm_or_404(User, user_id)
    shown = session.pop("invite_to_show", None)
    invite_url = shown["url"] if shown and shown.get("user_id") == user.id else None
    expired = user.invite_expires_at is not None and user.invite_expires_at < utcnow()
    return render_template("setup/invite_link.html", user=user, invite_url=invite_url, expired=expired)


@bp.post("/users/<int:user_id>/admin")
def make_admin(user_id: int):
    return _set_admin(user_id, True)


@bp.post("/users/<int:user_id>/admin/remove")
def remove_admin(user_id: int):
    return _set_admin(user_id, False)


def _set_admin(user_id: int, is_admin: bool):
    user = get_for_firm_or_404(User, user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        services.set_admin(user, is_admin)
    except services.LastAdminError as error:
        db.session.rollback()
        flash(str(error), "error")
    else:
        db.session.commit()
        if user.id == current_user.id:  # stepping down yourself: this session carries on, as a member
            accounts.keep_this_session(user)
        flash(f"{user.name} is {'now' if is_admin else 'no longer'} an administrator.", "success")
        if user.id == current_user.id and not is_admin:
            return redirect(url_for("main.index"))
    return redirect(url_for("setup.users"))


@bp.post("/users/<int:user_id>/remove")
def remove_user(user_id: int):
    user = get_for_firm_or_404(User, user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if user.id == current_user.id:
        flash("You cannot remove yourself. Another administrator can.", "error")
        return redirect(url_for("setup.users"))
    name = user.name
    try:
        services.remove_user(user)
    except services.LastAdminError as error:
        db.session.rollback()
        flash(str(error), "error")
    else:
        db.session.commit()
        flash(f"{name} has been removed and can no longer log in.", "success")
    return redirect(url_for("setup.users"))


@bp.get("/tax-rates")
def tax_rates():
    rates = db.session.scalars(firm_select(TaxRate).order_by(TaxRate.percent.desc(), TaxRate.name)).all()
    return render_template("setup/tax_rates.html", rates=rates)


@bp.route("/tax-rates/new", methods=["GET", "POST"])
def new_tax_rate():
    return _tax_rate_form(None)


@bp.route("/tax-rates/<int:rate_id>/edit", methods=["GET", "POST"])
def edit_tax_rate(rate_id: int):
    return _tax_rate_form(get_for_firm_or_404(TaxRate, rate_id))


def _tax_rate_form(rate: TaxRate | None):
    form = TaxRateForm(obj=rate)
    if form.validate_on_submit():
        issued = services.issued_invoices_using(rate) if rate is not None and rate.percent != form.percent.data else 0
        if services.tax_rate_name_in_use(form.name.data, exclude_id=rate.id if rate else None):
            form.name.errors.append("Another tax rate already has this name.")
        elif issued:
            form.percent.errors.append(
                f"{issued} invoice{'s' if issued != 1 else ''} already sent use{'s' if issued == 1 else ''} this "
                f"rate, and a new percentage would change {'their' if issued != 1 else 'its'} total. Add a new tax "
                f"rate for the new percentage instead (you can rename this one, say “{rate.name} (old)”).")
        else:
            if rate is None:
                rate = TaxRate(firm_id=current_user.firm_id)
                db.session.add(rate)
            elif rate.percent != form.percent.data:
                services.mark_invoices_using_changed(rate)
            form.populate_obj(rate)
            db.session.commit()
            flash(f"Tax rate {rate.name} saved.", "success")
            return redirect(url_for("setup.tax_rates"))
    return render_template("setup/tax_rate_form.html", form=form, rate=rate), 422 if form.errors else 200
