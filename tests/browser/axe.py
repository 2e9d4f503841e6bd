"""axe-core (Deque's accessibility engine, vendored in vendor/) run in the
page under test. Injecting a script the page did not ask for needs a browser
context opened with ``bypass_csp=True`` (tests only: PlanMan's CSP allows
PlanMan's own scripts alone)."""
from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"

# Moderate findings accepted, with why (also listed in the README):
ACCEPTED_MODERATE: dict[str, str] = {}


def audit(page: Page, selector: str | None = None) -> list[dict]:
    """axe's violations on the page (or inside ``selector``), WCAG 2.x A/AA
    and best-practice rules, as {id, impact, help, targets}."""
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    results = page.evaluate(
        """async (selector) => {
            const context = selector ? {include: [selector]} : document;
            const result = await axe.run(context, {resultTypes: ["violations"]});
            return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                                targets: v.nodes.map(n => n.target.join(" ")).slice(0, 5)}));
        }""",
        selector,
    )
    return results


def problems(violations: list[dict]) -> list[dict]:
    """What the tests refuse: any serious or critical finding, and any
    moderate one not accepted above."""
    return [v for v in violations
            if v["impact"] in ("serious", "critical") or (v["impact"] == "moderate" and v["id"] not in ACCEPTED_MODERATE)]


def assert_accessible(page: Page, what: str, selector: str | None = None) -> None:
    found = problems(audit(page, selector))
    assert not found, f"axe on {what}: " + "; ".join(
        f"{v['impact']} {v['id']} ({v['help']}) at {v['targets']}" for v in found)
