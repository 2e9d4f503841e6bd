"""Demo and benchmark data."""
from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa

from planman.auth import services as accounts
from planman.extensions import db
from planman.invoices.services import format_number
from planman.invoices.totals import store_totals
from planman.models import Client, Firm, Invoice, InvoiceLine, Payment, TaxRate, User

DEMO_FIRM = "Demo Practice"
DEMO_EMAIL = "demo@planman.test"
DEMO_PASSWORD = "demo-password"
COLLEAGUE_EMAIL = "sam@planman.test"

# (name, first name, last name, city, postcode, payment terms)
DEMO_CLIENTS = [
    ("Abbott & Reid Architects", "Helen", "Abbott", "Bristol", "BS1 4DJ", 30),
    ("Bramble Bakery", "Tom", "Hughes", "York", "YO1 7HH", 14),
    ("Castle Lane Dental", "Priya", "Shah", "Leicester", "LE1 5WW", 30),
    ("Dunmore Joinery Ltd", "Gareth", "Evans", "Cardiff", "CF10 1EP", 30),
    ("Elm Tree Nursery", "Sophie", "Clarke", "Norwich", "NR2 1TF", 7),
    ("Fairfield Vets", "Amir", "Khan", "Leeds", "LS6 2AA", 30),
    ("Greenway Cycles", "Lucy", "Moore", "Cambridge", "CB1 2LA", 14),
    ("Harbour View Guest House", "Fiona", "MacLeod", "Oban", "PA34 4LW", 14),
    ("Ironbridge Engineering", "David", "Price", "Telford", "TF8 7DQ", 45),
    ("Juniper Yoga Studio", "Maya", "Patel", "Brighton", "BN1 1AE", 7),
    ("Kestrel Logistics", "Neil", "Baker", "Northampton", "NN1 1DE", 60),
    ("Larkspur Florists", "Emma", "Wright", "Bath", "BA1 1LT", 14),
    ("Meadowbank Farm Shop", "John", "Fletcher", "Kendal", "LA9 4DL", 30),
    ("Northgate Solicitors LLP", "Rachel", "Green", "Chester", "CH1 2HT", 30),
    ("Oakwood Care Home", "Margaret", "Lewis", "Shrewsbury", "SY1 1HL", 30),
    ("Pennine Plumbing", "Steve", "Walker", "Huddersfield", "HD1 2QA", 14),
    ("Quayside Coffee Co", "Liam", "O'Brien", "Newcastle upon Tyne", "NE1 3RQ", 14),
    ("Riverside Physiotherapy", "Chloe", "Turner", "Exeter", "EX2 4AN", 30),
    ("Saltmarsh Studio", "Oliver", "Bennett", "Whitstable", "CT5 1AA", 30),
    ("Thistle Print Works", "Iain", "Stewart", "Glasgow", "G1 1XQ", 30),
    ("Upland Roofing", "Carl", "Jones", "Swansea", "SA1 3SN", 30),
    ("Vale Veterinary Supplies", "Anna", "Morgan", "Hereford", "HR4 9AA", 45),
    ("Willow Lane Interiors", "Grace", "Hall", "Harrogate", "HG1 1AB", 30),
    ("Yardley Motors", "Paul", "Sutton", "Birmingham", "B25 8DW", 30),
    ("Zest Catering", "Nadia", "Rahman", "Manchester", "M4 1HQ", 14),
]

SERVICES = [
    ("Monthly bookkeeping", Decimal("250.00")),
    ("Year-end accounts preparation", Decimal("1200.00")),
    ("VAT return", Decimal("175.00")),
    ("Payroll run (per employee)", Decimal("6.50")),
    ("Self assessment tax return", Decimal("325.00")),
    ("Management accounts review", Decimal("450.00")),
    ("Company secretarial services", Decimal("95.00")),
    ("Advisory meeting (per hour)", Decimal("120.00")),
    ("Software subscription recharge", Decimal("28.00")),
    ("Postage and printing", Decimal("12.40")),
]


def seed_demo(today: date | None = None) -> tuple[bool, str]:
    """Create the demo firm unless it exists. Returns (created, message)."""
    login = f"Log in as {DEMO_EMAIL} with password: {DEMO_PASSWORD}"
    if accounts.find_user_by_email(DEMO_EMAIL) is not None:
        return False, f"The demo firm already exists; nothing changed. {login}"
    today = today or date.today()
    rng = random.Random(2026)  # the same demo every time
    admin = accounts.create_firm(DEMO_FIRM, "GBP", "Dana Demo", DEMO_EMAIL, DEMO_PASSWORD)
    firm_id = admin.firm_id
    colleague = User(firm_id=firm_id, name="Sam Colleague", email=COLLEAGUE_EMAIL, is_admin=False)
    colleague.set_password(DEMO_PASSWORD)
    db.session.add(colleague)
    rates = db.session.scalars(sa.select(TaxRate).where(TaxRate.firm_id == firm_id).order_by(TaxRate.percent.desc())).all()
    vat, reduced, zero = rates

    clients = []
    for n, (name, first, last, city, postcode, terms) in enumerate(DEMO_CLIENTS, start=1):
        clients.append(Client(
            firm_id=firm_id, name=name, first_name=first, last_name=last,
            email=f"{first.lower()}.{last.lower().replace(chr(39), '')}@{name.split()[0].lower()}.example",
            phone=f"01632 960{n:03d}", address_line1=f"{n * 7} High Street", city=city, postcode=postcode,
            country="United Kingdom", tax_number=f"GB{100000000 + n * 7919}" if n % 3 else "",
            payment_terms_days=terms,
        ))
    db.session.add_all(clients)

    invoices = []
    for n in range(1, 61):
        issue = today - timedelta(days=rng.randint(0, 180))
        client = rng.choice(clients)
        age = (today - issue).days
        status = ("paid" if rng.random() < 0.8 else "sent") if age > 60 else rng.choice(["draft", "draft", "sent", "sent", "paid"])
        if n % 23 == 0:
            status = "void"
        lines = []
        for position, (description, price) in enumerate(rng.sample(SERVICES, rng.randint(1, 4))):
            quantity = Decimal(rng.choice([1, 1, 1, 2, 3, 12])) if "per" in description else Decimal(1)
            rate = zero if "Postage" in description else (reduced if "recharge" in description else vat)
            lines.append(InvoiceLine(position=position, description=description, quantity=quantity, unit_price=price,
                                     discount_percent=Decimal("10") if rng.random() < 0.1 else Decimal("0"),
                                     tax_rate_id=rate.id))
        invoices.append((issue, n, client, status, lines))
    # Numbered in date order, as they would have been written.
    invoices.sort(key=lambda item: (item[0], item[1]))
    paid = []
    for sequence, (issue, _, client, status, lines) in enumerate(invoices, start=1):
        invoice = Invoice(
            firm_id=firm_id, client=client, number=format_number(sequence), issue_date=issue,
            due_date=issue + timedelta(days=client.payment_terms_days), currency="GBP",
            # Paid follows from payments: those invoices are sent, then paid below.
            status="sent" if status == "paid" else status,
            reference=rng.choice(["", "", f"PO-{rng.randint(1000, 9999)}"]), lines=lines,
        )
        db.session.add(invoice)
        if status == "paid":
            paid.append(invoice)
    db.session.get(Firm, firm_id).next_invoice_number = len(invoices) + 1
    db.session.commit()
    from planman.payments.services import record_manual_payment

    for n, invoice in enumerate(paid):
        # Most paid in full by bank transfer; every seventh only in part, so both show.
        amount = invoice.total if n % 7 else (invoice.total / 2).quantize(Decimal("0.01"))
        record_manual_payment(invoice, amount=amount, paid_on=min(invoice.due_date, today), method="bank_transfer",
                              reference=f"BACS {invoice.number}", note="", user_id=admin.id)
    return True, (
        f"Created {DEMO_FIRM} with {len(clients)} clients and {len(invoices)} invoices. {login} "
        f"(a non-admin colleague: {COLLEAGUE_EMAIL}, same password)."
    )


def seed_bulk(clients: int, invoices: int, email: str, password: str, chunk: int = 5000) -> Firm:
    """A firm with many clients and invoices, inserted in bulk for benchmarks."""
    rng = random.Random(7)
    admin = accounts.create_firm(f"Bulk Firm ({email})", "GBP", "Bulk Admin", email, password)
    db.session.flush()
    firm_id = admin.firm_id
    rate_ids = db.session.scalars(sa.select(TaxRate.id).where(TaxRate.firm_id == firm_id)).all() + [None]

    def insert(table, rows):
        for start in range(0, len(rows), chunk):
            db.session.execute(sa.insert(table), rows[start:start + chunk])

    insert(Client.__table__, [
        {"firm_id": firm_id, "name": f"Client {n:06d}", "email": f"client{n}@bulk.example",
         "first_name": "Pat", "last_name": f"Number{n}", "payment_terms_days": 30}
        for n in range(1, clients + 1)
    ])
    client_ids = db.session.scalars(sa.select(Client.id).where(Client.firm_id == firm_id)).all()
    today = date.today()
    if client_ids and invoices:
        insert(Invoice.__table__, [
            {"firm_id": firm_id, "client_id": rng.choice(client_ids), "number": format_number(n),
             "issue_date": today - timedelta(days=n % 365), "due_date": today - timedelta(days=n % 365) + timedelta(days=30),
             "currency": "GBP", "status": rng.choice(("draft", "sent", "paid", "void"))}
            for n in range(1, invoices + 1)
        ])
        invoice_ids = db.session.scalars(sa.select(Invoice.id).where(Invoice.firm_id == firm_id)).all()
        insert(InvoiceLine.__table__, [
            {"invoice_id": invoice_id, "position": position, "description": f"Service {position + 1}",
             "quantity": Decimal(rng.randint(1, 5)), "unit_price": Decimal(rng.randint(1000, 50000)) / 100,
             "discount_percent": Decimal("0"), "tax_rate_id": rng.choice(rate_ids)}
            for invoice_id in invoice_ids for position in range(rng.randint(1, 4))
        ])
        store_totals(db.session.connection(), invoice_ids)  # Core inserts pass the ORM hook by
        # Paid invoices are paid by a payment each, as everywhere else.
        db.session.execute(sa.insert(Payment.__table__).from_select(
            ["firm_id", "invoice_id", "amount", "currency", "paid_on", "method", "state", "reference", "note",
             "created_at", "updated_at"],
            sa.select(Invoice.firm_id, Invoice.id, Invoice.total, Invoice.currency, Invoice.due_date,
                      sa.literal("bank_transfer"), sa.literal("succeeded"), sa.literal(""), sa.literal(""),
                      sa.func.current_timestamp(), sa.func.current_timestamp())
            .where(Invoice.firm_id == firm_id, Invoice.status == "paid")))
        db.session.execute(sa.update(Invoice).where(Invoice.firm_id == firm_id, Invoice.status == "paid")
                           .values(amount_paid=Invoice.total).execution_options(synchronize_session=False))
        db.session.get(Firm, firm_id).next_invoice_number = invoices + 1
    db.session.commit()
    return admin.firm
