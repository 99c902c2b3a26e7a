"""The smoke report opened in a real browser (headless chromium via playwright), as a colleague would open it.

Chromium comes from Debian's package (``make browser``); playwright's own browser download is not used. A missing
chromium fails the test, it never skips it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from hybridir_utils.pipeline import runner


def _open(browser, path: Path):
    """A page loaded from ``path``, with every console error, page error and non-local request recorded."""
    page = browser.new_page()
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else problems.append(f"fetch {r.url}"))
    page.goto(path.as_uri(), wait_until="load")
    return page, problems


@pytest.mark.slow
def test_every_page_loads_its_images_without_errors(smoke_run, browser):
    out, _ = smoke_run
    for name in ["index", "report", *runner.NOTEBOOKS]:
        page, problems = _open(browser, out / f"{name}.html")
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
        assert images, f"{name}.html shows no image"
        assert all(done and width > 0 for done, width in images), f"{name}.html: an image did not load"
        assert problems == [], f"{name}.html: {problems}"
        page.close()


@pytest.mark.slow
def test_index_shows_the_answer_and_the_parameters_and_its_links_resolve(smoke_run, browser):
    out, index = smoke_run
    page, problems = _open(browser, index)
    assert "Answer." in page.locator("#answer").inner_text()
    assert page.locator("#answer table.ci-table").count() >= 1
    rows = page.locator("table.notebooks tr")
    assert rows.count() == 1 + len(runner.NOTEBOOKS)
    assert "batch_size = 8" in page.locator("table.notebooks").inner_text()
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    assert {f"{name}.html" for name in runner.NOTEBOOKS} | {"report.html"} <= {Path(h).name for h in hrefs}
    for href in hrefs:
        target = Path(unquote(urlparse(href).path))
        assert target.is_file(), href
        linked, linked_problems = _open(browser, target)
        assert linked.title() and linked_problems == [], (href, linked_problems)
        linked.close()
    assert problems == []

    report, problems = _open(browser, out / "report.html")  # the one file to attach: in-page links only
    missing = report.evaluate("""() => [...document.querySelectorAll("a[href^='#']")]
        .map(a => a.getAttribute("href").slice(1)).filter(id => !document.getElementById(id))""")
    assert missing == []
    assert report.evaluate("() => document.querySelectorAll(\"a[href^='#']\").length") >= len(runner.NOTEBOOKS)
    assert report.locator("#answer").count() == 1 and problems == []
