"""The app the pages benchmark serves: PlanMan's own (``wsgi:app``) plus two
pages that do nothing but what every signed-in page does, so a run shows how
much of a page's cost is that floor. Benchmark code: the product never has
these routes."""
from flask import render_template
from flask_login import login_required

from wsgi import app

# Compiled once, as a template file would be.
_EMPTY_PAGE = app.jinja_env.from_string('{% extends "base.html" %}{% block content %}{% endblock %}')


@login_required
def signed_in_nothing():
    """The session read and the user and firm loaded; nothing rendered."""
    return "ok"


@login_required
def empty_page():
    """That, and the header and the page around an empty content block."""
    return render_template(_EMPTY_PAGE)


app.add_url_rule("/bench/signed-in", "bench_signed_in", signed_in_nothing)
app.add_url_rule("/bench/empty-page", "bench_empty_page", empty_page)
