"""Invoices: storage, Xero's rules and rounding, and their JSON form.

Totals follow Xero's rounding guide (REFERENCE.md section 4): each line's
amount is rounded to 2 places, tax is computed per line on that amount and
rounded to 2 places, and the invoice tax is the sum of the line taxes. Ties
round half up (Xero does not say; this matches PlanMan's own arithmetic)."""
from __future__ import annotations

import copy
import json
import uuid
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from . import contacts, webhooks
from ..core.store import Store
from .xdates import date_fields, ms_date, now_ms, parse_date

TWO, FOUR = Decimal("0.01"), Decimal("0.0001")
EDITABLE = ("DRAFT", "SUBMITTED")
CREATE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED")
NOT_MODIFIABLE = "Invoice not of valid status for modification"
# Xero computes these (or the spec marks them readOnly); a value sent for them is accepted and ignored.
READ_ONLY = {"InvoiceID", "SubTotal", "TotalTax", "Total", "TotalDiscount", "AmountDue", "AmountPaid",
             "AmountCredited", "UpdatedDateUTC", "HasErrors", "ValidationErrors", "StatusAttributeString",
             "Payments", "CreditNotes", "Prepayments", "Overpayments", "HasAttachments", "IsDiscounted",
             "DateString", "DueDateString", "FullyPaidOnDate", "Warnings", "Attachments", "CISDeduction", "CISRate",
             "UpdatedDateUTCString"}


# Worked out from the other fields on every write, so never carried over from a stored line.
COMPUTED_LINE_FIELDS = ("LineAmount", "TaxAmount", "LineItemID")


def q(value: Decimal, places: Decimal = TWO) -> Decimal:
    return value.quantize(places, rounding=ROUND_HALF_UP)


def dec(value, default: str | None = "0") -> Decimal | None:
    if value is None or value == "":
        return Decimal(default) if default is not None else None
    return Decimal(str(value))


def all_invoices(db, tenant_id: str) -> list[dict]:
    rows = db.execute("SELECT doc FROM invoices WHERE tenant_id=? ORDER BY seq", (tenant_id,))
    return [json.loads(r["doc"]) for r in rows]


def summaries(db, tenant_id: str) -> list[dict]:
    """What a write checks of every stored invoice (id, type, status, number),
    read by SQLite without decoding each document: a batch of 50 into an
    organisation of thousands would otherwise decode them all 50 times."""
    rows = db.execute("SELECT invoice_id, json_extract(doc, '$.Type'), json_extract(doc, '$.Status'), "
                      "json_extract(doc, '$.InvoiceNumber') FROM invoices WHERE tenant_id=? ORDER BY seq",
                      (tenant_id,))
    return [{"InvoiceID": r[0], "Type": r[1], "Status": r[2], "InvoiceNumber": r[3]} for r in rows]


def get(db, tenant_id: str, invoice_id: str) -> dict | None:
    row = db.execute("SELECT doc FROM invoices WHERE tenant_id=? AND invoice_id=?",
                     (tenant_id, (invoice_id or "").lower())).fetchone()
    return json.loads(row["doc"]) if row else None


def save(db, tenant_id: str, doc: dict) -> None:
    stamp = now_ms()
    doc["UpdatedDateUTC"] = ms_date(stamp)
    exists = db.execute("SELECT 1 FROM invoices WHERE tenant_id=? AND invoice_id=?",
                        (tenant_id, doc["InvoiceID"])).fetchone()
    webhooks.record(db, tenant_id, "INVOICE", doc["InvoiceID"], "UPDATE" if exists else "CREATE")
    if exists:
        db.execute("UPDATE invoices SET doc=?, updated=? WHERE tenant_id=? AND invoice_id=?",
                   (json.dumps(doc), stamp / 1000, tenant_id, doc["InvoiceID"]))
    else:
        seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM invoices WHERE tenant_id=?", (tenant_id,)).fetchone()[0]
        db.execute("INSERT INTO invoices(tenant_id, invoice_id, seq, updated, doc) VALUES (?, ?, ?, ?, ?)",
                   (tenant_id, doc["InvoiceID"], seq, stamp / 1000, json.dumps(doc)))


def _number_taken(invoices: list[dict], number: str, own_id: str | None) -> bool:
    return any(i["Type"] == "ACCREC" and i["Status"] != "DELETED" and i["InvoiceID"] != own_id
               and (i.get("InvoiceNumber") or "").casefold() == number.casefold() for i in invoices)


def _next_number(db, tenant_id: str, invoices: list[dict]) -> str:
    # Like Xero's "next invoice number" setting: INV-0001, INV-0002, ... skipping numbers already used.
    n = db.execute("SELECT next_invoice_number FROM organisations WHERE tenant_id=?", (tenant_id,)).fetchone()[0]
    while _number_taken(invoices, f"INV-{n:04d}", None):
        n += 1
    db.execute("UPDATE organisations SET next_invoice_number=? WHERE tenant_id=?", (n + 1, tenant_id))
    return f"INV-{n:04d}"


CURRENCY_NAMES = {"GBP": "British Pound", "USD": "United States Dollar", "EUR": "Euro", "AUD": "Australian Dollar",
                  "NZD": "New Zealand Dollar", "CAD": "Canadian Dollar", "CHF": "Swiss Franc", "JPY": "Japanese Yen",
                  "ZAR": "South African Rand", "SGD": "Singapore Dollar"}


def org_currencies(db, tenant_id: str) -> list[dict]:
    """GET /Currencies: the base currency, then those a bookkeeper enabled (control API)."""
    base = json.loads(db.execute("SELECT doc FROM organisations WHERE tenant_id=?", (tenant_id,)).fetchone()["doc"])
    codes = [base["BaseCurrency"]]
    codes += [c for c in Store.get_setting(db, f"currencies:{tenant_id}", []) if c not in codes]
    return [{"Code": c, "Description": CURRENCY_NAMES.get(c, c)} for c in codes]


def not_subscribed_message(code: str) -> str:
    # Xero's wording, as reported by several integrations (standins/README.md, "Refusals").
    return f"Organisation is not subscribed to currency {code}"


class Org:
    """What invoice rules need to know about the organisation."""

    def __init__(self, db, tenant_id: str):
        row = db.execute("SELECT * FROM organisations WHERE tenant_id=?", (tenant_id,)).fetchone()
        self.tenant_id = tenant_id
        self.doc = json.loads(row["doc"])
        self.accounts = json.loads(row["accounts"])
        self.tax_rates = {r["TaxType"]: r for r in json.loads(row["tax_rates"])}
        self.currencies = {c["Code"] for c in org_currencies(db, tenant_id)}

    def account(self, code=None, account_id=None) -> dict | None:
        for a in self.accounts:
            if (code is not None and a["Code"] == code) or (account_id and a["AccountID"] == account_id.lower()):
                return a
        return None


def _line(org: Org, sent: dict, old_lines: dict, inv_type: str, amount_types: str, unit_places: Decimal):
    """Compute one line item. Returns (line JSON, [errors])."""
    errors = []
    old = old_lines.get((sent.get("LineItemID") or "").lower())
    if old:
        # A line named by its LineItemID is the same line: what the request leaves out (a
        # bookkeeper's Tracking or ItemCode, say) stays; amounts are computed again below.
        sent = {**{k: v for k, v in old.items() if k not in COMPUTED_LINE_FIELDS}, **sent}
    line = {k: v for k, v in sent.items() if k not in ("ValidationErrors",)}
    line["LineItemID"] = old["LineItemID"] if old else str(uuid.uuid4())
    if not (sent.get("Description") or "").strip():
        errors.append("The description field is mandatory for each line item.")

    account = None
    if sent.get("AccountCode") or sent.get("AccountID"):
        account = org.account(sent.get("AccountCode"), sent.get("AccountID"))
        # Sales documents may use any active account except bank accounts and system accounts
        # other than Rounding (Xero's suggested home for rounding lines).
        usable = (account and account["Status"] == "ACTIVE" and account["Type"] != "BANK"
                  and account.get("SystemAccount") in (None, "ROUNDING"))
        if not usable:
            errors.append(f"Account code '{sent.get('AccountCode') or sent.get('AccountID')}' "
                          "is not a valid code for this document.")
        else:
            line["AccountCode"], line["AccountID"] = account["Code"], account["AccountID"]

    if amount_types == "NoTax":
        tax_type, rate = "NONE", Decimal(0)
    else:
        tax_type = sent.get("TaxType") or (account["TaxType"] if account else "NONE")
        tax_rate = org.tax_rates.get(tax_type)
        field = "CanApplyToRevenue" if inv_type == "ACCREC" else "CanApplyToExpenses"
        if not tax_rate or tax_rate["Status"] != "ACTIVE" or not tax_rate[field]:
            errors.append(f"The TaxType code {tax_type} does not exist or cannot be used with this type of transaction.")
            rate = Decimal(0)
        else:
            rate = dec(tax_rate["EffectiveRate"])
    line["TaxType"] = tax_type

    try:
        unit = dec(sent.get("UnitAmount"), None)
        quantity = dec(sent.get("Quantity"), "1" if unit is not None else "0")
        discount_rate = dec(sent.get("DiscountRate"), None)
        discount_amount = dec(sent.get("DiscountAmount"), None)
        override_tax = dec(sent.get("TaxAmount"), None) if "TaxAmount" in sent else None
    except InvalidOperation:
        return line, errors + ["Line item amounts must be numbers."]
    if inv_type != "ACCREC" and (discount_rate is not None or discount_amount is not None):
        errors.append("Discounts are only available on sales invoices.")
    unit = q(unit, unit_places) if unit is not None else Decimal(0)
    gross = quantity * unit
    if discount_rate is not None:
        amount = gross * (Decimal(100) - discount_rate) / Decimal(100)
    elif discount_amount is not None:
        amount = gross - discount_amount
    else:
        amount = gross
    amount = q(amount)
    if amount_types == "Inclusive":
        tax = q(amount * rate / (Decimal(100) + rate))
    else:
        tax = q(amount * rate / Decimal(100))
    if override_tax is not None and amount_types != "NoTax":
        tax = q(override_tax)  # Xero lets a client override a line's calculated tax
    line.update(Quantity=float(quantity), UnitAmount=float(unit), LineAmount=float(amount),
                TaxAmount=float(tax), Tracking=sent.get("Tracking") or [])
    if discount_rate is not None:
        line["DiscountRate"] = float(discount_rate)
    if discount_amount is not None:
        line["DiscountAmount"] = float(discount_amount)
    line["_discount"] = str(q(gross) - amount)
    return line, errors


def _totals(doc: dict) -> None:
    lines = doc["LineItems"]
    line_sum = sum((dec(li["LineAmount"]) for li in lines), Decimal(0))
    tax = sum((dec(li["TaxAmount"]) for li in lines), Decimal(0))
    discount = sum((dec(li.pop("_discount", "0")) for li in lines), Decimal(0))
    if doc["LineAmountTypes"] == "Inclusive":
        subtotal, total = line_sum - tax, line_sum
    else:
        subtotal, total = line_sum, line_sum + tax
    paid = dec(doc.get("AmountPaid"))
    doc.update(SubTotal=float(q(subtotal)), TotalTax=float(q(tax)), Total=float(q(total)),
               AmountDue=float(q(total - paid)), AmountPaid=float(paid), AmountCredited=0.0)
    doc["IsDiscounted"] = discount != 0
    if discount:
        doc["TotalDiscount"] = float(q(discount))
    else:
        doc.pop("TotalDiscount", None)


def _new_invoice(org: Org) -> dict:
    return {"InvoiceID": str(uuid.uuid4()), "Status": "DRAFT", "LineAmountTypes": "Exclusive", "LineItems": [],
            "CurrencyCode": org.doc["BaseCurrency"], "CurrencyRate": 1.0, "AmountPaid": 0.0,
            "SentToContact": False, "HasAttachments": False, "HasErrors": False, "Payments": [],
            "CreditNotes": [], "Prepayments": [], "Overpayments": []}


def _status_change_error(old: str | None, new: str, only_status: bool) -> str | None:
    if old is None:
        return None if new in CREATE_STATUSES else f"Invoices cannot be created with a status of {new}."
    if old in EDITABLE:
        if new in ("VOIDED", "PAID"):
            return NOT_MODIFIABLE
        return None
    if old == "AUTHORISED" and new == "VOIDED" and only_status:
        return None  # an approved invoice with no payment can be voided, not edited
    return NOT_MODIFIABLE


def _target(invoices: list[dict], element: dict, mode: str, target_id: str | None) -> dict | None:
    """The stored invoice an element updates, if any."""
    if target_id:
        return next((i for i in invoices if i["InvoiceID"] == target_id.lower()), None)
    if mode == "post" and element.get("InvoiceNumber") and element.get("Type", "ACCREC") == "ACCREC":
        number = element["InvoiceNumber"].casefold()
        return next((i for i in invoices if i["Type"] == "ACCREC" and i["Status"] != "DELETED"
                     and (i.get("InvoiceNumber") or "").casefold() == number), None)
    return None


def _contact(db, tenant_id: str, sent: dict) -> dict | None:
    """The contact an invoice names: by ContactID, else ContactNumber, else an active contact's Name."""
    if sent.get("ContactID"):
        return contacts.get(db, tenant_id, sent["ContactID"])
    if sent.get("ContactNumber"):
        return next((c for c in contacts.all_contacts(db, tenant_id)
                     if c.get("ContactNumber") == sent["ContactNumber"]), None)
    if sent.get("Name"):
        return next((c for c in contacts.all_contacts(db, tenant_id) if c["ContactStatus"] == "ACTIVE"
                     and c["Name"].casefold() == sent["Name"].strip().casefold()), None)
    return None


def write(db, tenant_id: str, element: dict, mode: str, unit_places: Decimal, path_id: str | None = None):
    """Apply one element of a PUT/POST batch. Returns (invoice doc or element, [errors]).

    mode "post" updates the invoice named by InvoiceID (or path_id); without an id,
    an ACCREC element whose InvoiceNumber matches a live invoice updates it (as
    users report Xero does); otherwise, and always for "put", it creates."""
    org = Org(db, tenant_id)
    invoices = summaries(db, tenant_id)
    target_id = path_id or (element.get("InvoiceID") if mode == "post" else None)
    target = _target(invoices, element, mode, target_id)
    if target is not None:
        target = get(db, tenant_id, target["InvoiceID"])
    if target_id and target is None:
        return element, [f"Invoice with InvoiceID {target_id} could not be found."]

    errors = []
    if target is not None:
        changed = {k for k in element if k not in ("InvoiceID", "InvoiceNumber", "Type", "Status")}
        problem = _status_change_error(target["Status"], element.get("Status", target["Status"]), not changed)
        if problem:
            return element, [problem]
    else:
        problem = _status_change_error(None, element.get("Status", "DRAFT"), False)
        if problem:
            errors.append(problem)
        if element.get("Type") not in ("ACCREC", "ACCPAY"):
            errors.append("Invoice Type must be specified as ACCREC or ACCPAY.")

    doc = copy.deepcopy(target) if target else _new_invoice(org)
    for field, value in element.items():
        if field not in READ_ONLY and field not in ("Contact", "LineItems"):
            doc[field] = value
    doc.setdefault("Type", element.get("Type"))

    # Contact: an existing, non-archived contact, named by ContactID (or ContactNumber / Name).
    if "Contact" in element or target is None:
        sent = element.get("Contact") or {}
        contact = _contact(db, tenant_id, sent)
        if not sent:
            errors.append("A Contact must be specified for this type of transaction")
        elif contact is None:
            errors.append("The contact specified could not be found.")
        elif contact["ContactStatus"] != "ACTIVE":
            errors.append("The contact is archived and cannot be used.")
        else:
            doc["Contact"] = {"ContactID": contact["ContactID"]}

    for field in ("Date", "DueDate"):
        if doc.get(field):
            day = parse_date(doc[field])
            if day is None:
                errors.append(f"{field} is not a valid date.")
            else:
                doc[field] = day.isoformat()
    if not doc.get("Date"):
        doc["Date"] = parse_date(ms_date(now_ms())).isoformat()

    if ("CurrencyCode" in element or target is None) and doc.get("CurrencyCode") not in org.currencies:
        errors.append(not_subscribed_message(doc.get("CurrencyCode")))

    if doc["LineAmountTypes"] not in ("Exclusive", "Inclusive", "NoTax"):
        errors.append("LineAmountTypes must be Exclusive, Inclusive or NoTax.")
    elif "LineItems" in element or "LineAmountTypes" in element or target is None:
        # Sent LineItems replace the whole set; otherwise recompute the kept lines.
        if "LineItems" in element:
            sent_lines = element["LineItems"] or []
        else:  # kept lines: their stored precision stands, and their tax is recalculated, not carried over
            sent_lines = [{k: v for k, v in li.items() if k != "TaxAmount"} for li in doc["LineItems"]]
            unit_places = FOUR
        old_lines = {li["LineItemID"]: li for li in (target or {}).get("LineItems", [])}
        new_lines = []
        for sent in sent_lines:
            line, line_errors = _line(org, sent, old_lines, doc["Type"], doc["LineAmountTypes"], unit_places)
            new_lines.append(line)
            errors.extend(line_errors)
        doc["LineItems"] = new_lines
    if not doc["LineItems"] and doc.get("Status", "DRAFT") != "DRAFT" and doc["Status"] not in ("DELETED", "VOIDED"):
        errors.append("An invoice must have at least one line item to be approved.")

    if doc["Type"] == "ACCREC":
        if doc.get("InvoiceNumber"):
            if _number_taken(invoices, doc["InvoiceNumber"], doc["InvoiceID"]) and doc["Status"] != "DELETED":
                errors.append("Invoice # must be unique.")
    if errors:
        return element, errors
    if doc["Type"] == "ACCREC" and not doc.get("InvoiceNumber"):
        doc["InvoiceNumber"] = _next_number(db, tenant_id, invoices)
    _totals(doc)
    save(db, tenant_id, doc)
    if doc["Type"] == "ACCREC":
        _mark_customer(db, tenant_id, doc["Contact"]["ContactID"])
    return doc, []


def _mark_customer(db, tenant_id: str, contact_id: str) -> None:
    contact = contacts.get(db, tenant_id, contact_id)
    if contact and not contact.get("IsCustomer"):
        contact["IsCustomer"] = True  # Xero sets this once a sales invoice exists
        contacts.save(db, tenant_id, contact)


BOOKKEEPER_LINE_FIELDS = ("ItemCode", "Tracking")


def set_line_fields(db, tenant_id: str, invoice_id: str, line_item_id: str, fields: dict) -> dict | None:
    """A bookkeeper adds an item code or tracking to a line in Xero's UI (control API)."""
    doc = get(db, tenant_id, invoice_id)
    line = next((li for li in (doc or {}).get("LineItems", []) if li["LineItemID"] == line_item_id.lower()), None)
    if line is None:
        return None
    line.update(fields)
    save(db, tenant_id, doc)
    return doc


def set_status(db, tenant_id: str, invoice_id: str, status: str) -> dict | None:
    """A bookkeeper's action in Xero's UI (control API): no API rules apply."""
    doc = get(db, tenant_id, invoice_id)
    if doc is None:
        return None
    doc["Status"] = status
    if status == "PAID":
        doc["AmountPaid"] = doc["Total"]
        doc["AmountDue"] = 0.0
        doc["FullyPaidOnDate"] = ms_date(now_ms())
    save(db, tenant_id, doc)
    return doc


# Xero's field order, so a person reading a response finds the familiar layout.
FIELD_ORDER = ("Type", "InvoiceID", "InvoiceNumber", "Reference", "Contact", "Date", "DateString", "DueDate",
               "DueDateString", "Status", "LineAmountTypes", "LineItems", "SubTotal", "TotalTax", "Total",
               "TotalDiscount", "CurrencyCode", "CurrencyRate", "AmountDue", "AmountPaid", "AmountCredited",
               "FullyPaidOnDate", "Url", "BrandingThemeID", "UpdatedDateUTC")


def render(db, tenant_id: str, doc: dict, unitdp4: bool) -> dict:
    """The invoice as Xero's API returns it."""
    out = copy.deepcopy(doc)
    out["Contact"] = contacts.summary(contacts.get(db, tenant_id, doc["Contact"]["ContactID"]))
    for field in ("Date", "DueDate"):
        if doc.get(field):
            out[field], out[f"{field}String"] = date_fields(parse_date(doc[field]))
    for payment in out.get("Payments") or []:
        day = parse_date(payment.get("Date"))
        if day:
            payment["Date"] = date_fields(day)[0]  # Xero's JSON date, as on the payment itself
    if not unitdp4:
        for line in out["LineItems"]:
            line["UnitAmount"] = float(q(dec(line["UnitAmount"])))
    out["HasErrors"] = False
    ordered = {k: out.pop(k) for k in FIELD_ORDER if k in out}
    return {**ordered, **out}
