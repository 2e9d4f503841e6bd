"""Sales invoices (REF 4, 7): create (posted, or a draft with status_id DRAFT), get, list,
update, release (draft -> posted), void (DELETE with void_reason).

Statuses (REF 7): DRAFT, UNPAID, PART_PAID, PAID, VOID. A draft or an unpaid posted invoice
may be edited; a part-paid, paid or void one may not (REF 7: "cannot sensibly be edited";
the 422 and its wording are guesses). Voiding needs void_reason unless the invoice is a
draft, and a draft is deleted instead (REF 4). Payments arrive only through the control
API (a bookkeeper recording one)."""
from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

from flask import g, request

from . import errors, records, settings
from .api import bp, envelope, ledger_accounts, since, tax_rates
from .records import now_iso
from .contacts import one_contact
from .errors import Invalid

STATUSES = {"DRAFT": "Draft", "UNPAID": "Unpaid", "PART_PAID": "Part Paid", "PAID": "Paid", "VOID": "Void"}
EDITABLE = ("DRAFT", "UNPAID")
HEADER_TEXT = {"reference": 25, "notes": 2000, "terms_and_conditions": 2000, "invoice_number_prefix": 10}  # guess
DEFAULT_CREDIT_DAYS = 30  # guess: due date when neither due_date nor the contact's credit_days says


def status(status_id: str) -> dict:
    return {"id": status_id, "displayed_as": STATUSES[status_id], "$path": f"/artefact_statuses/{status_id}"}


def invoice_docs(db, business_id: str | None = None) -> list[dict]:
    return [json.loads(r["doc"]) for r in db.execute(
        "SELECT doc FROM sales_invoices WHERE business_id=? ORDER BY seq", (business_id or g.business_id,))]


def one_invoice(db, invoice_id: str) -> dict | None:
    row = db.execute("SELECT doc FROM sales_invoices WHERE business_id=? AND id=?",
                     (g.business_id, invoice_id)).fetchone()
    return json.loads(row["doc"]) if row else None


def save(db, doc: dict) -> None:
    db.execute("UPDATE sales_invoices SET doc=? WHERE id=?", (json.dumps(doc), doc["id"]))


def _sent() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("sales_invoice"), dict):
        raise Invalid("sales_invoice", 'The request body must be {"sales_invoice": {...}}.')  # guess: wording
    return body["sales_invoice"]


def _inputs(line: dict | None) -> dict:
    """The fields a stored line was made from, so an update that sends part of a line keeps the rest."""
    if line is None:
        return {}
    out = {"description": line["description"], "ledger_account_id": line["ledger_account"]["id"],
           "quantity": line["quantity"], "unit_price": line["unit_price"], "tax_rate_id": line["tax_rate"]["id"]}
    if line.get("_tax_sent"):
        out["tax_amount"] = line["tax_amount"]
    return out


def _line(db, sent, old: dict | None, index: int) -> dict:
    """One invoice line, validated and priced. $source names the line as invoice_lines[i].field (guess)."""
    src = f"invoice_lines[{index}]"
    if not isinstance(sent, dict):
        raise Invalid(src, "must be an object")
    fields = {**_inputs(old), **{k: v for k, v in sent.items() if k not in ("id", "_destroy")}}
    description = records.text(fields.get("description"), f"{src}.description", max_length=2000)
    if not (description or "").strip():
        raise Invalid(f"{src}.description", "can't be blank")
    account = {a["id"]: a for a in ledger_accounts(db)}.get(fields.get("ledger_account_id") or "")
    if account is None:
        raise Invalid(f"{src}.ledger_account_id", "is not a valid ledger account" if fields.get("ledger_account_id")
                      else "can't be blank")
    if not account["visible_in_sales"]:
        # REF 4: sales-invoice lines need an account from the INCOME group (visible_in=sales).
        raise Invalid(f"{src}.ledger_account_id", "is not a ledger account that can be used on sales")
    quantity = records.decimal(fields.get("quantity"), f"{src}.quantity", default=Decimal(1))
    unit_price = records.decimal(fields.get("unit_price"), f"{src}.unit_price")
    rate_id = fields.get("tax_rate_id") or (account.get("tax_rate") or {}).get("id")  # the account's default: guess
    rate = {t["id"]: t for t in tax_rates(db)}.get(rate_id or "")
    if rate is None:
        raise Invalid(f"{src}.tax_rate_id", "is not a valid tax rate" if rate_id else "can't be blank")
    net = records.half_up(quantity * unit_price)
    tax_sent = fields.get("tax_amount") not in (None, "")
    tax = (records.half_up(records.decimal(fields["tax_amount"], f"{src}.tax_amount")) if tax_sent  # sent wins: guess
           else records.half_up(net * Decimal(rate["percentage"]) / 100))  # per line, half up: guess
    return {"id": old["id"] if old else records.new_id(), "displayed_as": description, "description": description,
            "ledger_account": {k: account[k] for k in ("id", "displayed_as", "$path")},
            "quantity": str(quantity), "unit_price": str(unit_price), "net_amount": records.money(net),
            "tax_rate": {k: rate[k] for k in ("id", "displayed_as", "$path")}, "tax_amount": records.money(tax),
            "total_amount": records.money(net + tax), "_tax_sent": tax_sent}


def _lines(db, sent_lines, old_lines: list[dict]) -> list[dict]:
    """Sent lines against the stored ones, as Sage's nested lines are updated (guess, the conservative
    reading): a line with the `id` of a stored line changes that line (fields left out are kept), a line
    with that id and "_destroy": true removes it, a line without id is added, stored lines not mentioned
    stay. So re-sending every line without ids would add them all again."""
    if not isinstance(sent_lines, list):
        raise Invalid("invoice_lines", "must be a list")
    old = {line["id"]: line for line in old_lines}
    out = dict(old)
    for index, sent in enumerate(sent_lines):
        line_id = sent.get("id") if isinstance(sent, dict) else None
        if line_id is not None and line_id not in old:
            raise Invalid(f"invoice_lines[{index}].id", "is not a line of this invoice")
        if line_id is not None and sent.get("_destroy"):
            out.pop(line_id, None)
            continue
        line = _line(db, sent, old.get(line_id), index)
        out[line["id"]] = line
    if not out:
        raise Invalid("invoice_lines", "can't be blank")
    return list(out.values())


def _number_taken(db, number: str, own_id: str | None) -> bool:
    return any(i["invoice_number"].casefold() == number.casefold() and i["id"] != own_id for i in invoice_docs(db))


def totals(doc: dict) -> None:
    net = sum((Decimal(line["net_amount"]) for line in doc["invoice_lines"]), Decimal(0))
    tax = sum((Decimal(line["tax_amount"]) for line in doc["invoice_lines"]), Decimal(0))
    paid = Decimal(doc.get("total_paid") or 0)
    doc.update(net_amount=records.money(net), tax_amount=records.money(tax), total_amount=records.money(net + tax),
               outstanding_amount=records.money(Decimal(0) if doc["status"]["id"] in ("VOID",)
                                                else net + tax - paid))


def apply(db, doc: dict, sent: dict, creating: bool) -> None:
    """Validate sent fields onto doc (raises Invalid); fields left out keep their value (guess)."""
    if "contact_id" in sent or creating:
        contact = one_contact(db, sent.get("contact_id") or "") if sent.get("contact_id") else None
        if contact is None:
            raise Invalid("contact_id", "can't be blank" if not sent.get("contact_id") else "is not a valid contact")
        if not any(t["id"] == "CUSTOMER" for t in contact["contact_types"]):
            raise Invalid("contact_id", "is not a customer")  # guess: Sage's rule for a supplier on a sales invoice
        doc.update(contact={k: contact[k] for k in ("id", "displayed_as", "$path")}, contact_name=contact["name"],
                   contact_reference=contact.get("reference"))
        doc["_credit_days"] = contact.get("credit_days")
    if "date" in sent or creating:
        if not sent.get("date"):
            raise Invalid("date", "can't be blank")
        doc["date"] = records.iso_date(sent["date"], "date")
    if "due_date" in sent and sent["due_date"]:
        doc["due_date"] = records.iso_date(sent["due_date"], "due_date")
    elif creating or not doc.get("due_date"):
        days = doc.get("_credit_days")
        doc["due_date"] = (date.fromisoformat(doc["date"]) + timedelta(
            days=DEFAULT_CREDIT_DAYS if days is None else days)).isoformat()
    if doc["due_date"] < doc["date"]:
        raise Invalid("due_date", "must be on or after the invoice date")  # guess: rule and wording
    for field, max_length in HEADER_TEXT.items():
        if field in sent:
            doc[field] = records.text(sent[field], field, max_length=max_length)
    if "invoice_number" in sent and sent["invoice_number"]:
        number = records.text(sent["invoice_number"], "invoice_number", max_length=25)
        if _number_taken(db, number, doc["id"]):
            raise Invalid("invoice_number", "has already been taken")  # guess: wording
        doc["invoice_number"] = number
    if "currency_id" in sent and sent["currency_id"]:
        if sent["currency_id"] not in ("GBP", "EUR", "USD"):
            raise Invalid("currency_id", "is not a valid currency")
        doc["currency"] = {"id": sent["currency_id"], "displayed_as": sent["currency_id"]}
    if "exchange_rate" in sent and sent["exchange_rate"] not in (None, ""):
        doc["exchange_rate"] = str(records.decimal(sent["exchange_rate"], "exchange_rate"))
    if "sent" in sent:
        doc["sent"] = bool(sent["sent"])
    if "invoice_lines" in sent or creating:
        doc["invoice_lines"] = _lines(db, sent.get("invoice_lines") or [], doc.get("invoice_lines", []))
    totals(doc)
    doc["updated_at"] = now_iso()


def public(doc: dict) -> dict:
    """The invoice as answered: the stand-in's bookkeeping fields (leading underscore) left out."""
    out = {k: v for k, v in doc.items() if not k.startswith("_")}
    out["invoice_lines"] = [{k: v for k, v in line.items() if not k.startswith("_")} for line in doc["invoice_lines"]]
    return out


@bp.get("/sales_invoices")
def list_invoices():
    """Filters: search (invoice number, reference, contact name; substring without case: guess), contact_id,
    status_id, from_date/to_date (on date), updated_or_created_since (REF 4). Order: creation (guess)."""
    with settings.store().read() as db:
        items = invoice_docs(db)
    term = (request.args.get("search") or "").casefold()
    if term:
        items = [i for i in items if any(term in (i.get(f) or "").casefold()
                                         for f in ("invoice_number", "reference", "contact_name"))]
    if request.args.get("contact_id"):
        items = [i for i in items if i["contact"]["id"] == request.args["contact_id"]]
    if request.args.get("status_id"):
        items = [i for i in items if i["status"]["id"] == request.args["status_id"].upper()]
    if request.args.get("from_date"):
        items = [i for i in items if i["date"] >= request.args["from_date"]]
    if request.args.get("to_date"):
        items = [i for i in items if i["date"] <= request.args["to_date"]]
    return errors.answer(envelope([public(i) for i in since(items)]))


@bp.get("/sales_invoices/<invoice_id>")
def get_invoice(invoice_id):
    with settings.store().read() as db:
        doc = one_invoice(db, invoice_id)
    return errors.answer(public(doc)) if doc else errors.not_found("Sales invoice")


@bp.post("/sales_invoices")
def create_invoice():
    sent = _sent()
    wanted = sent.get("status_id")
    if wanted not in (None, "", "DRAFT", "UNPAID"):
        raise Invalid("status_id", "must be DRAFT or left out")  # REF 4: DRAFT makes a draft; others: guess
    with settings.store().tx() as db:
        business = db.execute("SELECT * FROM businesses WHERE id=?", (g.business_id,)).fetchone()
        invoice_id, stamp = records.new_id(), now_iso()
        doc = {"id": invoice_id, "displayed_as": "", "$path": f"/sales_invoices/{invoice_id}", "created_at": stamp,
               "updated_at": stamp, "invoice_number": "", "invoice_number_prefix": None, "reference": None,
               "notes": None, "terms_and_conditions": None, "status": status(wanted or "UNPAID"), "sent": False,
               "currency": json.loads(business["doc"])["currency"], "exchange_rate": "1.0", "total_paid": "0.00",
               "void_reason": None, "invoice_lines": []}
        apply(db, doc, sent, creating=True)
        if not doc["invoice_number"]:  # auto-assigned SI-1, SI-2, ... skipping numbers in use (format: guess)
            number = business["next_invoice_number"]
            while _number_taken(db, f"SI-{number}", None):
                number += 1
            doc["invoice_number"] = f"SI-{number}"
            db.execute("UPDATE businesses SET next_invoice_number=? WHERE id=?", (number + 1, g.business_id))
        doc["displayed_as"] = doc["invoice_number"]
        db.execute("INSERT INTO sales_invoices(id, business_id, doc) VALUES (?, ?, ?)",
                   (invoice_id, g.business_id, json.dumps(doc)))
    return errors.answer(public(doc), 201)


def _locked(doc: dict) -> None:
    state = doc["status"]["id"]
    if state in ("PART_PAID", "PAID"):
        raise Invalid("base", "An invoice that is paid or part-paid cannot be edited.")  # REF 7; wording guess
    if state == "VOID":
        raise Invalid("base", "A void invoice cannot be edited.")  # guess


@bp.put("/sales_invoices/<invoice_id>")
def update_invoice(invoice_id):
    sent = _sent()
    with settings.store().tx() as db:
        doc = one_invoice(db, invoice_id)
        if doc is None:
            return errors.not_found("Sales invoice")
        _locked(doc)
        if sent.get("status_id") not in (None, "", doc["status"]["id"]):
            raise Invalid("status_id", "cannot be changed here; release a draft instead")  # guess
        apply(db, doc, sent, creating=False)
        doc["displayed_as"] = doc["invoice_number"]
        save(db, doc)
    return errors.answer(public(doc))


@bp.post("/sales_invoices/<invoice_id>/release")
def release_invoice(invoice_id):
    """REF 4: turns a draft into a posted invoice (UNPAID)."""
    with settings.store().tx() as db:
        doc = one_invoice(db, invoice_id)
        if doc is None:
            return errors.not_found("Sales invoice")
        if doc["status"]["id"] != "DRAFT":
            raise Invalid("base", "Only a draft invoice can be released.")  # guess: wording
        doc["status"] = status("UNPAID")
        totals(doc)
        doc["updated_at"] = now_iso()
        save(db, doc)
    return errors.answer(public(doc))


@bp.delete("/sales_invoices/<invoice_id>")
def void_invoice(invoice_id):
    """REF 4: DELETE ?void_reason=... voids a posted invoice; a draft needs no reason and is deleted."""
    reason = (request.args.get("void_reason") or "").strip()
    with settings.store().tx() as db:
        doc = one_invoice(db, invoice_id)
        if doc is None:
            return errors.not_found("Sales invoice")
        state = doc["status"]["id"]
        if state == "DRAFT":
            db.execute("DELETE FROM sales_invoices WHERE id=?", (invoice_id,))
            return "", 204
        if state == "VOID":
            raise Invalid("base", "The invoice is already void.")  # guess
        if state in ("PART_PAID", "PAID"):
            raise Invalid("base", "An invoice with payments cannot be voided.")  # guess: rule and wording
        if not reason:
            raise Invalid("void_reason", "can't be blank")  # REF 4: required unless a draft
        doc.update(status=status("VOID"), void_reason=reason[:255], updated_at=now_iso())
        totals(doc)
        save(db, doc)
    return "", 204
