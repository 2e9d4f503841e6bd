"""Shared code names no provider (issue 14, "One layer, no provider inside it").

Every file of planman/, templates/, static/ and config.py is shared except a
provider's own package (planman/integrations/<key>/), its own templates
(templates/integrations/<key>/) and the registry. No shared file may name a
provider: not its key, not its display name, in any case, also inside
identifiers such as XERO_MAX_IN_FLIGHT. What differs by provider is declared
by the provider (planman/integrations/base.py) and asked for."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from planman.integrations.registry import PROVIDERS

ROOT = Path(__file__).resolve().parent.parent
SHARED_ROOTS = ("planman", "templates", "static", "config.py")
TEXT_SUFFIXES = {".py", ".html", ".js", ".css", ".txt", ".md", ".json", ".svg", ".jinja", ".j2"}


def provider_packages() -> set[str]:
    """Every provider package on disk, registered or not yet (one being written)."""
    return {path.parent.name for path in (ROOT / "planman" / "integrations").glob("*/provider.py")}


def provider_terms() -> dict[str, set[str]]:
    terms = {key: {key} for key in provider_packages()}
    for key, provider in PROVIDERS.items():
        terms.setdefault(key, set()).update({key, provider.label})
    return terms


def is_own(relative: Path, keys: set[str]) -> bool:
    parts = relative.parts
    if relative == Path("planman/integrations/registry.py"):
        return True
    if parts[:2] == ("planman", "integrations") and len(parts) > 3 and parts[2] in keys:
        return True
    return parts[:2] == ("templates", "integrations") and len(parts) > 3 and parts[2] in keys


def shared_files(root: Path, keys: set[str]):
    for top in SHARED_ROOTS:
        base = root / top
        paths = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []
        for path in paths:
            relative = path.relative_to(root)
            if "__pycache__" in relative.parts or path.suffix not in TEXT_SUFFIXES or is_own(relative, keys):
                continue
            yield relative, path


def hits(root: Path, terms: dict[str, set[str]]) -> list[str]:
    """``path:line: term`` for every mention of a provider in a shared file."""
    words = sorted({word for group in terms.values() for word in group}, key=len, reverse=True)
    # Letters around a name make another word ("message" is not "sage"); digits,
    # underscores and punctuation do not (XERO_API_URL names Xero).
    pattern = re.compile(r"(?<![a-z])(" + "|".join(re.escape(w) for w in words) + r")(?![a-z])", re.IGNORECASE)
    found = []
    for relative, path in shared_files(root, set(terms)):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for match in pattern.finditer(line):
                found.append(f"{relative}:{number}: {match.group(0)}")
    return found


def test_no_shared_file_names_a_provider():
    found = hits(ROOT, provider_terms())
    assert not found, "Shared code names a provider; ask the provider instead (planman/integrations/base.py):\n" + \
        "\n".join(found[:50])


def test_every_registered_provider_has_its_own_package():
    assert PROVIDERS, "no provider registered"
    assert set(PROVIDERS) <= provider_packages()


def test_the_check_finds_a_name_and_ignores_words_that_contain_one(tmp_path):
    (tmp_path / "planman" / "integrations" / "acme").mkdir(parents=True)
    (tmp_path / "templates" / "integrations" / "acme").mkdir(parents=True)
    (tmp_path / "static").mkdir()
    (tmp_path / "planman" / "shared.py").write_text('MESSAGE = "usage"\nNOTE = "Waiting for Acme\'s limit"\n')
    (tmp_path / "planman" / "integrations" / "acme" / "provider.py").write_text('label = "Acme"\n')
    (tmp_path / "templates" / "integrations" / "acme" / "_settings.html").write_text("Acme\n")
    (tmp_path / "templates" / "page.html").write_text("{{ config.ACME_API_URL }}\n")
    (tmp_path / "config.py").write_text("SAGE_URL = 1\n")
    found = hits(tmp_path, {"acme": {"acme", "Acme"}, "sage": {"sage", "Sage"}})
    assert found == ["planman/shared.py:2: Acme", "templates/page.html:1: ACME", "config.py:1: SAGE"]
