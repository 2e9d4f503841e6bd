from urllib.parse import urlsplit

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from planman.auth import bp, services, throttle
from planman.auth.forms import LoginForm, SetPasswordForm, SignupForm
from planman.extensions import db, login_manager
from planman.models import User


# Built once: it runs on every signed-in request. With the firm, which every
# page's header names.
_USER_BY_ID = sa.select(User).options(so.joinedload(User.firm)).where(User.id == sa.bindparam("user_id"))


@login_manager.user_loader
def load_user(user_id: str):
    try:
        return db.session.execute(_USER_BY_ID, {"user_id": int(user_id)}).scalar()
    except ValueError:
        return None


def _safe_next(target: str | None) -> str:
    """Only a path on this site; anything else (another host, //host, \\host) goes home."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("main.index")


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = SignupForm()
    if form.validate_on_submit():
        if services.email_taken(form.email.data):
            form.email.errors.append("An account with this email already exists. Log in instead.")
        else:
            user = services.create_firm(
                form.firm_name.data, form.currency.data, form.name.data, form.email.data, form.password.data,
                browser_time_zone=form.browser_time_zone.data,
            )
            db.session.commit()
            login_user(user)
            flash(f"Welcome to PlanMan, {user.name}. Add your first client to get started.", "success")
            return redirect(url_for("clients.index"))
    return render_template("auth/signup.html", form=form), 400 if form.errors else 200


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    error = None
    status = 200
    if form.validate_on_submit():
        email, ip = form.email.data, request.remote_addr or "unknown"
        if throttle.is_locked(email, ip):
            # Refused before the password is checked, so guessing gains nothing.
            error = "Too many failed attempts. Wait a few minutes, then try again."
            status = 429
        else:
            user = services.find_user_by_email(email)
            if user is not None and user.check_password(form.password.data):
                throttle.clear_email(email)
                login_user(user)
                return redirect(_safe_next(request.args.get("next")))
            throttle.record_failure(email, ip)
            error = "Email or password is incorrect."
            status = 400
    elif form.errors:
        status = 400
    return render_template("auth/login.html", form=form, error=error), status


@bp.post("/logout")
def logout():
    logout_user()
    flash("You have logged out.")
    return redirect(url_for("auth.login"))


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invite(token: str):
    user = services.find_invited_user(token)
    if user is None:
        abort(404)
    form = SetPasswordForm()
    if form.validate_on_submit():
        services.accept_invite(user, form.password.data)
        db.session.commit()
        logout_user()
        login_user(user)
        flash(f"Welcome to {user.firm.name}, {user.name}.", "success")
        return redirect(url_for("main.index"))
    return render_template("auth/invite.html", form=form, user=user), 400 if form.errors else 200
