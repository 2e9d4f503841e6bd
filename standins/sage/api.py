"""Sage's Accounting API v3.1 under /v3.1: the guard every call passes, the list envelope,
businesses, ledger accounts and tax rates (contacts and sales invoices: contacts.py, invoices.py).

Order of checks: bearer token (401); for every path but /businesses the X-Business header
(REF 2), which must name one of the token's user's businesses; scope (readonly tokens
cannot write); then the core's rate limits (429) and injected faults (5xx, latency, lost
answers). Every answer carries X-Business, the business that served the call (REF 2: Sage
echoes it, so a client can detect a misrouted call)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from urllib.parse import urlencode

from flask import Blueprint, g, request

from ..core import guard as core_guard
from ..core.store import Store
from . import auth, errors, settings

from .settings import cfg

bp = Blueprint("api", __name__, url_prefix="/v3.1")

# Calls about the user rather than one business: no X-Business needed (guess: REF 2 lists them without it).
USER_LEVEL = {"api.list_businesses", "api.lead_business", "api.get_business"}
WRITES = ("POST", "PUT", "DELETE")


def _served_business(db, grant) -> tuple[str | None, object]:
    """(business id, None) or (None, refusal) for the X-Business header of this call."""
    owned = [r["id"] for r in db.execute("SELECT id FROM businesses WHERE user_email=? ORDER BY position",
                                         (grant["user_email"],))]
    lead = db.execute("SELECT business_id FROM grant_leads WHERE grant_id=?", (grant["grant_id"],)).fetchone()
    lead_id = lead["business_id"] if lead else owned[0]
    asked = (request.headers.get("X-Business") or "").strip()
    if not asked:
        if Store.get_setting(db, "missing_x_business", "refuse") == "lead":
            return lead_id, None  # REF 2: without the header Sage uses the user's lead business
        # The stand-in is stricter than Sage here so a forgotten header is caught (stand-in choice).
        return None, errors.error(400, "MissingBusiness", "The X-Business header is required.", "X-Business")
    if asked not in owned:
        Store.bump(db, "forbidden")
        return None, errors.error(403, "AccessDenied", "You do not have access to this business.",
                                  "X-Business")  # guess: status, code and wording
    misroute = Store.get_setting(db, "misroute_next", 0)
    others = [b for b in owned if b != asked]
    if misroute > 0 and others:
        Store.put_setting(db, "misroute_next", misroute - 1)
        Store.bump(db, "misrouted")
        return (lead_id if lead_id != asked else others[0]), None
    return asked, None


@bp.before_request
def guard():
    g.business_id = None
    with settings.store().tx() as db:
        grant, refusal = auth.bearer(db)
        if refusal:
            return refusal
        g.grant = dict(grant)
        if request.endpoint in USER_LEVEL:
            g.business_id = (request.headers.get("X-Business") or "").strip() or None
            account = f"user:{grant['user_email']}"
        else:
            g.business_id, refusal = _served_business(db, grant)
            if refusal:
                return refusal
            account = g.business_id
        if request.method in WRITES and grant["scope"] == "readonly":
            return errors.error(403, "AccessDenied", "This token has read-only access.")  # guess
        call = core_guard.admit(db, account, settings.limits(db), request.method in WRITES)
    if call["refused"]:
        return errors.too_many(call["retry_after"])
    core_guard.pause(call)
    if call["fail_status"]:
        return errors.error(call["fail_status"], "InternalServerError" if call["fail_status"] == 500
                            else "ServiceUnavailable", "Injected failure (stand-in fault injection).")
    return None


@bp.after_request
def finish(response):
    if g.get("business_id"):
        response.headers["X-Business"] = g.business_id
    return core_guard.finish(response)


bp.teardown_request(core_guard.release)


# -- lists ---------------------------------------------------------------------------------

def _int_arg(name: str, default: int) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError:
        return default


def attributes(doc: dict) -> dict:
    """REF 4: list items are id, displayed_as and $path unless `attributes=all` (or a comma list) expands them."""
    wanted = request.args.get("attributes", "")
    if wanted == "all":
        return doc
    keep = {"id", "displayed_as", "$path", *filter(None, (a.strip() for a in wanted.split(",")))}
    return {k: v for k, v in doc.items() if k in keep}


def envelope(items: list[dict]) -> dict:
    """REF 4's list envelope: $total, $page, $next, $back, $itemsPerPage, $items. $next/$back are paths
    relative to the API base (/v3.1), keeping the request's other parameters (guess: their exact form).
    REF 4 writes the page size's key as $items_per_page; Sage's answers spell it $itemsPerPage (guess)."""
    per_page = min(max(_int_arg("items_per_page", cfg("ITEMS_PER_PAGE_DEFAULT")), 1), cfg("ITEMS_PER_PAGE_MAX"))
    page = max(_int_arg("page", 1), 1)
    total = len(items)
    path = request.path[len(bp.url_prefix):]  # request.path leaves out the mount prefix (SCRIPT_NAME)

    def link(number: int) -> str:
        query = {k: v for k, v in request.args.items() if k not in ("page", "items_per_page")}
        return f"{path}?{urlencode({**query, 'page': number, 'items_per_page': per_page})}"

    return {"$total": total, "$page": page,
            "$next": link(page + 1) if page * per_page < total else None,
            "$back": link(page - 1) if page > 1 else None,
            "$itemsPerPage": per_page,
            "$items": [attributes(i) for i in items[(page - 1) * per_page: page * per_page]]}


def since(items: list[dict]) -> list[dict]:
    """updated_or_created_since=<RFC3339> (REF 4, 6: polling for changes)."""
    value = request.args.get("updated_or_created_since")
    if not value:
        return items
    try:
        cut = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise errors.Invalid("updated_or_created_since", "is not a valid date-time") from None
    if cut.tzinfo is None:
        cut = cut.replace(tzinfo=timezone.utc)
    return [i for i in items if datetime.fromisoformat(i["updated_at"].replace("Z", "+00:00")) >= cut]


@bp.errorhandler(errors.Invalid)
def invalid(error: errors.Invalid):
    return error.response


@bp.app_errorhandler(404)
@bp.app_errorhandler(405)
def unknown_path(error):
    """Paths and methods the stand-in does not serve answer Sage's error array under /v3.1 (REF 5 lists
    404 and 405), and the usual page elsewhere."""
    if not request.path.startswith(bp.url_prefix + "/"):
        return error
    if error.code == 405:
        return errors.error(405, "MethodNotAllowed", f"{request.method} is not allowed here.")  # guess: wording
    return errors.not_found()


def business_row(db, business_id: str | None = None):
    return db.execute("SELECT * FROM businesses WHERE id=?", (business_id or g.business_id,)).fetchone()


# -- businesses ------------------------------------------------------------------------------

def _user_business_docs(db) -> list[dict]:
    return auth.user_businesses(db, g.grant["user_email"])


@bp.get("/businesses")
def list_businesses():
    with settings.store().read() as db:
        return errors.answer(envelope(_user_business_docs(db)))


@bp.get("/businesses/lead")
def lead_business():
    with settings.store().read() as db:
        lead = db.execute("SELECT business_id FROM grant_leads WHERE grant_id=?", (g.grant["grant_id"],)).fetchone()
        docs = _user_business_docs(db)
    return errors.answer(next((d for d in docs if lead and d["id"] == lead["business_id"]), docs[0]))


@bp.get("/businesses/<business_id>")
def get_business(business_id):
    with settings.store().read() as db:
        found = [d for d in _user_business_docs(db) if d["id"] == business_id]
    return errors.answer(found[0]) if found else errors.not_found("Business")


# -- ledger accounts and tax rates -------------------------------------------------------------

def ledger_accounts(db) -> list[dict]:
    return json.loads(business_row(db)["ledger_accounts"])


def tax_rates(db) -> list[dict]:
    return json.loads(business_row(db)["tax_rates"])


def _search(items: list[dict], *fields) -> list[dict]:
    term = (request.args.get("search") or "").casefold()
    if not term:
        return items
    return [i for i in items if any(term in str(i.get(f) or "").casefold() for f in fields)]


@bp.get("/ledger_accounts")
def list_ledger_accounts():
    """Filters (REF 4): visible_in (sales: the INCOME accounts a sales line may use), ledger_account_type_id,
    ledger_account_group_id *(guess)*, search (name, nominal code)."""
    with settings.store().read() as db:
        items = ledger_accounts(db)
    visible_in = request.args.get("visible_in")
    if visible_in:
        items = [i for i in items if i.get(f"visible_in_{visible_in}")]
    for arg, key in (("ledger_account_type_id", "ledger_account_type"), ("ledger_account_group_id",
                                                                        "ledger_account_group")):
        if request.args.get(arg):
            items = [i for i in items if i[key]["id"] == request.args[arg].upper()]
    return errors.answer(envelope(_search(items, "name", "nominal_code", "displayed_as")))


@bp.get("/ledger_accounts/<account_id>")
def get_ledger_account(account_id):
    with settings.store().read() as db:
        found = [i for i in ledger_accounts(db) if i["id"] == account_id]
    return errors.answer(found[0]) if found else errors.not_found("Ledger account")


@bp.get("/tax_rates")
def list_tax_rates():
    """The business's country's rates (REF 2: country drives tax rates)."""
    with settings.store().read() as db:
        items = tax_rates(db)
    return errors.answer(envelope(_search(items, "name", "displayed_as")))


@bp.get("/tax_rates/<rate_id>")
def get_tax_rate(rate_id):
    with settings.store().read() as db:
        found = [i for i in tax_rates(db) if i["id"] == rate_id]
    return errors.answer(found[0]) if found else errors.not_found("Tax rate")
