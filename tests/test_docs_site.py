"""The documentation site: every page is in the navigation, names only repository paths that exist, and
``mkdocs build --strict`` (warnings are errors: broken links, unknown anchors, bad docstrings) passes.

The build needs the ``docs`` extra; without mkdocs the build test skips, except under ``CI=true`` where it
fails (``scripts/test.sh`` installs the extra).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"

_NAV_PAGE = re.compile(r"^\s*-\s*(?:[^:\n]+:\s*)?([\w./-]+\.md)\s*$", re.MULTILINE)
# Paths that name something in the repository (as opposed to a run's output tree).
_REPO_PATH = re.compile(r"(?<![\w/.])((?:scripts|tests|hostfiles|cobre_mpi_io|examples|\.ci)/[\w./-]*\w)")


def nav_pages() -> list[str]:
    """The pages of ``mkdocs.yml``'s ``nav``, in order."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    return _NAV_PAGE.findall(text.split("\nnav:", 1)[1])


def test_every_page_is_in_the_navigation_and_every_entry_exists() -> None:
    pages = nav_pages()
    assert pages[0] == "index.md"
    assert len(pages) == len(set(pages)), "a page is in the navigation twice"
    on_disk = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(pages) == on_disk


def test_the_readme_links_every_page() -> None:
    text = README.read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(docs/([\w./-]+\.md)\)", text))
    assert set(nav_pages()) <= linked, f"pages the README does not link: {sorted(set(nav_pages()) - linked)}"


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_pages_name_only_paths_that_exist(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    missing = sorted({p for p in _REPO_PATH.findall(text) if not (ROOT / p).exists()})
    assert not missing, f"docs/{page} names repository paths that do not exist: {missing}"
    for outside in ("../shared", "/work/"):
        assert outside not in text, f"docs/{page} refers to {outside!r}, which is not in the repository"


@pytest.mark.slow(45)
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    try:
        import mkdocs  # noqa: F401
        import mkdocstrings  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("mkdocs is not installed: CI installs the docs extra (scripts/test.sh)")
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]'); under CI=true this fails")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = (tmp_path / "site" / "reference" / "index.html").read_text(encoding="utf-8")
    # the API reference is rendered from the numpydoc docstrings
    assert "write_results" in page and "Parameters" in page and "Raises" in page
