"""Invoice arithmetic: per-line rounding the way Xero does it (REFERENCE.md section 4)."""
from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from planman.money import LineInput, compute_totals, line_totals, round_money


def test_xero_example_tax_is_summed_per_line_not_taken_on_the_subtotal():
    # Three lines at 15%: per-line tax 3.81 + 3.81 + 3.82 = 11.44, where taxing
    # the subtotal 76.31 would give 11.45 (the example in Xero's guide).
    lines = [LineInput(D("1"), price, tax_percent=D("15")) for price in (D("25.43"), D("25.43"), D("25.45"))]
    totals = compute_totals(lines, "exclusive")
    assert [line.tax for line in totals.lines] == [D("3.81"), D("3.81"), D("3.82")]
    assert (totals.subtotal, totals.tax, totals.total) == (D("76.31"), D("11.44"), D("87.75"))
    assert round_money(totals.subtotal * D("0.15")) == D("11.45")


def test_line_amount_is_rounded_before_tax():
    # 3 x 0.3333 = 0.9999 -> 1.00, and the tax is taken on 1.00.
    line = line_totals(LineInput(D("3"), D("0.3333"), tax_percent=D("20")), "exclusive")
    assert (line.amount, line.tax) == (D("1.00"), D("0.20"))


def test_half_cent_rounds_up():
    assert line_totals(LineInput(D("1"), D("0.125")), "exclusive").amount == D("0.13")
    assert line_totals(LineInput(D("1"), D("0.025"), tax_percent=D("10")), "exclusive").tax == D("0.00")
    assert line_totals(LineInput(D("1"), D("0.05"), tax_percent=D("10")), "exclusive").tax == D("0.01")


def test_discount_applies_before_rounding_and_tax():
    line = line_totals(LineInput(D("2"), D("49.99"), D("12.5"), D("20")), "exclusive")
    # 99.98 less 12.5% = 87.4825 -> 87.48; 20% of that = 17.496 -> 17.50
    assert (line.amount, line.tax) == (D("87.48"), D("17.50"))
    assert line_totals(LineInput(D("1"), D("80"), D("100"), D("20")), "exclusive").amount == D("0.00")


def test_tax_inclusive_amounts_contain_their_tax():
    totals = compute_totals([LineInput(D("1"), D("120"), tax_percent=D("20")),
                             LineInput(D("1"), D("10.01"), tax_percent=D("5"))], "inclusive")
    # 120 includes 20.00; 10.01 includes 10.01 * 5 / 105 = 0.4767 -> 0.48
    assert [line.tax for line in totals.lines] == [D("20.00"), D("0.48")]
    assert (totals.subtotal, totals.tax, totals.total) == (D("109.53"), D("20.48"), D("130.01"))


def test_no_tax_and_lines_without_a_rate():
    lines = [LineInput(D("1"), D("100"), tax_percent=D("20")), LineInput(D("2"), D("5"))]
    no_tax = compute_totals(lines, "no_tax")
    assert (no_tax.subtotal, no_tax.tax, no_tax.total) == (D("110.00"), D("0.00"), D("110.00"))
    exclusive = compute_totals(lines, "exclusive")
    assert (exclusive.tax, exclusive.total) == (D("20.00"), D("130.00"))


def test_negative_lines_credit_the_invoice():
    totals = compute_totals([LineInput(D("1"), D("100"), tax_percent=D("20")),
                             LineInput(D("-1"), D("10"), tax_percent=D("20"))], "exclusive")
    assert (totals.subtotal, totals.tax, totals.total) == (D("90.00"), D("18.00"), D("108.00"))


def test_an_empty_invoice_is_zero():
    totals = compute_totals([], "exclusive")
    assert (totals.subtotal, totals.tax, totals.total) == (D("0.00"), D("0.00"), D("0.00"))


money = st.decimals(min_value=D("-100000"), max_value=D("100000"), places=4, allow_nan=False, allow_infinity=False)
quantity = st.decimals(min_value=D("0.0001"), max_value=D("10000"), places=4)
percent = st.decimals(min_value=D("0"), max_value=D("100"), places=4)


@given(st.lists(st.tuples(quantity, money, percent, st.one_of(st.none(), percent)), max_size=8),
       st.sampled_from(["exclusive", "inclusive", "no_tax"]))
def test_totals_are_the_sums_of_rounded_lines(lines, amounts_are):
    inputs = [LineInput(q, p, d, t) for q, p, d, t in lines]
    totals = compute_totals(inputs, amounts_are)
    for value in (totals.subtotal, totals.tax, totals.total):
        assert value == value.quantize(D("0.01"))
    assert totals.tax == sum((line.tax for line in totals.lines), D("0"))
    assert totals.subtotal + totals.tax == totals.total
    if amounts_are == "no_tax":
        assert totals.tax == 0
