import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.exc import IntegrityError
from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from planman.auth import bp, services, throttle
from planman.auth.forms import ChangePasswordForm, LoginForm, SetPasswordForm, SignupForm
from planman.extensions import db, login_manager
from planman.models import User
from planman.security import safe_next


# Built once: it runs on every signed-in request. With the firm, which every
# page's header names.
_USER_BY_ID = sa.select(User).options(so.joinedload(User.firm)).where(User.id == sa.bindparam("user_id"))


@login_manager.user_loader
def load_user(user_id: str):
    try:
        user = db.session.execute(_USER_BY_ID, {"user_id": int(user_id)}).scalar()
    except ValueError:
        return None
    # A session from before the user's last log-out, password change, removal
    # or demotion no longer counts.
    if user is None or not services.session_is_current(user):
        return None
    return user


def _safe_next(target: str | None) -> str:
    return safe_next(target, url_for("main.index"))


def _start_session(user: User) -> None:
    """Log ``user`` in on a fresh session: nothing from before (a CSRF token
    someone else may have planted or read) carries over."""
    session.clear()
    login_user(user)
    services.keep_this_session(user)


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = SignupForm()
    status = 200
    if form.validate_on_submit():
        ip = request.remote_addr or "unknown"
        # "Already exists" tells whether an e-mail has an account, so each such
        # answer counts against the address like a failed log-in.
        if not throttle.reserve_signup(ip):
            form.email.errors.append("Too many attempts. Wait a few minutes, then try again.")
            status = 429
        elif services.email_taken(form.email.data):
            services.hash_as_if_creating(form.password.data)
            form.email.errors.append("An account with this email already exists. Log in instead.")
        else:
            try:
                user = services.create_firm(
                    form.firm_name.data, form.currency.data, form.name.data, form.email.data, form.password.data,
                    browser_time_zone=form.browser_time_zone.data,
                )
                db.session.commit()
            except IntegrityError:  # the same sign-up sent twice at once (a double click): the other one made it
                db.session.rollback()
                form.email.errors.append("An account with this email already exists. Log in instead.")
                return render_template("auth/signup.html", form=form), 400
            throttle.signup_succeeded(ip)
            _start_session(user)
            flash(f"Welcome to PlanMan, {user.name}. Add your first client to get started.", "success")
            return redirect(url_for("clients.index"))
    if form.errors and status == 200:
        status = 400
    return render_template("auth/signup.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    error = None
    status = 200
    if form.validate_on_submit():
        email, ip = form.email.data, request.remote_addr or "unknown"
        # The attempt is counted before the password is checked, so guesses
        # sent all at once cannot slip past the limit together.
        if not throttle.reserve_login(email, ip):
            error = "Too many failed attempts. Wait a few minutes, then try again."
            status = 429
        else:
            user = services.authenticate(email, form.password.data)
            if user is not None:
                throttle.login_succeeded(email, ip)
                _start_session(user)
                return redirect(_safe_next(request.args.get("next")))
            error = "Email or password is incorrect."
            status = 400
    elif form.errors:
        status = 400
    return render_template("auth/login.html", form=form, error=error), status


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        # Every session of this user ends, including copies of this cookie.
        current_user.end_sessions()
        db.session.commit()
    logout_user()
    session.clear()
    flash("You have logged out.")
    return redirect(url_for("auth.login"))


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invite(token: str):
    user = services.find_invited_user(token)
    if user is None:
        abort(404)
    if services.invite_expired(user):
        return render_template("auth/invite_expired.html", user=user), 410
    form = SetPasswordForm()
    if form.validate_on_submit():
        services.accept_invite(user, form.password.data)
        db.session.commit()
        logout_user()
        _start_session(user)
        flash(f"Welcome to {user.firm.name}, {user.name}.", "success")
        return redirect(url_for("main.index"))
    return render_template("auth/invite.html", form=form, user=user), 400 if form.errors else 200


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    status = 200
    if form.validate_on_submit():
        email, ip = current_user.email, request.remote_addr or "unknown"
        # The current password is guessed here as at log-in, so it is throttled the same way.
        if not throttle.reserve_login(email, ip):
            form.current_password.errors.append("Too many failed attempts. Wait a few minutes, then try again.")
            status = 429
        elif not current_user.check_password(form.current_password.data):
            form.current_password.errors.append("This is not your current password.")
        else:
            throttle.login_succeeded(email, ip)
            current_user.set_password(form.password.data)
            current_user.end_sessions()  # everywhere else; this session carries on
            db.session.commit()
            services.keep_this_session(current_user)
            flash("Your password has been changed. Other sessions have been logged out.", "success")
            return redirect(url_for("main.index"))
    if form.errors and status == 200:
        status = 400
    return render_template("auth/change_password.html", form=form), status
