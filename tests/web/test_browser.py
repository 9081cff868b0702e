"""`hone view` driven in headless Chromium (Debian's `chromium`, by Playwright; no browser download).

Skipped with a reason where Playwright or the browser is missing, unless HONE_REQUIRE_BROWSER=1
(`.ci/run` sets it after installing the browser), where a missing browser fails instead.
HONE_SCREENSHOTS=DIR saves a screenshot of every page the tests open (the docs' pictures).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _web_store import T0, Served, run, serve, traj

from hone.store import RunInfo, open_store
from hone.web import write_report

CHROMIUM = os.environ.get("HONE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a closed network: without the background ones Chromium keeps trying to reach Google.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install 'hone[dev]')"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set HONE_CHROMIUM)"
    return None


WHY = _missing()
if WHY and os.environ.get("HONE_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"browser tests are required here (HONE_REQUIRE_BROWSER=1) but {WHY}")
pytestmark = [pytest.mark.skipif(WHY is not None, reason=f"browser tests skipped: {WHY}"), pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield pg
    finally:
        ctx.close()
    assert not errors, f"the page's scripts failed: {errors}"


def shot(page: Any, name: str) -> None:
    out = os.environ.get("HONE_SCREENSHOTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(out) / f"{name}.png"))


def test_open_a_run_search_and_read_a_transcript(page: Any, served: Served) -> None:
    page.goto(served.url + "/")
    shot(page, "view-runs")
    page.get_by_role("link", name="ev", exact=True).click()
    page.wait_for_url("**/run?id=ev")
    assert page.locator("#traj-total").inner_text().strip() == "24"
    shot(page, "view-run")
    page.fill("#traj-search", "zanzibar")
    page.press("#traj-search", "Enter")
    page.wait_for_url("**q=zanzibar**")
    rows = page.locator("table.trajs tbody tr")
    assert rows.count() == 1
    rows.first.get_by_role("link").click()
    page.wait_for_url("**/t?id=**")
    assert "arith-test-L1-0003" in page.locator("h1").inner_text()
    hidden = page.locator("li.fb.hidden")
    assert hidden.count() == 1 and "expected 4, got 5" in hidden.inner_text()
    assert page.locator(".tokrow .tk.trained").count() == 3
    shot(page, "view-transcript")


def test_click_into_an_mcts_tree(page: Any, served: Served) -> None:
    page.goto(served.url + "/graph?run=cmp-mcts&task=task-2")
    page.wait_for_function("window.honeGraph && window.honeGraph.nodes().length === 5")
    box = page.locator("#graph").bounding_box()
    pos = page.evaluate("(() => { const p = window.honeGraph.$id('roll-2').renderedPosition(); return [p.x, p.y]; })()")
    page.mouse.click(box["x"] + pos[0], box["y"] + pos[1])
    info = page.locator("#node-info")
    info.locator("#node-link").wait_for()
    assert "chosen" in info.inner_text() and "rollout" in info.inner_text()
    shot(page, "view-mcts")
    info.locator("#node-link").click()
    page.wait_for_url("**/t?id=roll-2")
    # The task picker switches the tree.
    page.goto(served.url + "/graph?run=cmp-mcts&task=task-2")
    page.select_option("select[name=task]", "task-4")
    page.wait_for_url("**task=task-4")
    page.wait_for_function("window.honeGraph && window.honeGraph.$id('roll-4').length === 1")


def test_evolution_and_deliberation_graphs_draw(page: Any, served: Served) -> None:
    page.goto(served.url + "/graph?run=evo")
    page.wait_for_function("window.honeGraph && window.honeGraph.nodes().not('.lane').length === 6")
    assert page.evaluate("window.honeGraph.nodes('.lane').map(n => n.data('label'))") == ["island 0", "island 1"]
    assert page.evaluate("window.honeGraph.$id('g1-1').hasClass('chosen')")
    shot(page, "view-evolve")
    page.goto(served.url + "/graph?run=nsed")
    page.wait_for_function("window.honeGraph && window.honeGraph.edges().length === 3")
    shot(page, "view-deliberate")


def test_compare_two_runs(page: Any, served: Served) -> None:
    page.goto(served.url + "/run?id=cmp-best_of_n")
    page.fill("input[name=b]", "cmp-mcts")
    page.click("text=compare on shared tasks")
    page.wait_for_url("**/compare?**")
    assert "+16.7 points" in page.locator("#paired").inner_text()
    assert page.locator("table.flipped tbody tr").count() == 3
    shot(page, "view-compare")


def test_loop_page_draws_its_curves(page: Any, served: Served) -> None:
    page.goto(served.url + "/run?id=lp")
    page.wait_for_function("typeof Chart !== 'undefined' && Chart.getChart('curve-heldout') !== undefined")
    labels = page.evaluate("Chart.getChart('curve-heldout').data.datasets.map(d => d.label)")
    assert labels == ["held-out", "L1", "L2"]
    shot(page, "view-loop")


def test_a_live_run_updates_without_reloading(page: Any, fresh_store: str) -> None:
    with open_store(fresh_store) as st:
        run(st, "live", status="running", created_at=T0 + timedelta(days=9))
        st.put_many(traj("live", f"task-{i}", minute=i) for i in range(2))
    for served in serve(fresh_store):
        page.goto(served.url + "/run?id=live")
        page.locator(".live-dot").wait_for()
        page.evaluate("window.__notReloaded = true")
        with open_store(fresh_store) as st:  # another process's writer, as a running `hone eval`
            st.put_many(traj("live", f"task-{i}", minute=i) for i in range(2, 5))
        page.wait_for_function("document.querySelector('#traj-total').innerText.trim() === '5'", timeout=20_000)
        with open_store(fresh_store) as st:
            info = st.get_run("live")
            assert info is not None
            st.save_run(RunInfo(**{**info.model_dump(), "status": "done"}))
        page.wait_for_function("document.querySelector('#run-status').innerText.trim() === 'done'", timeout=20_000)
        assert page.evaluate("window.__notReloaded === true")
        assert page.locator(".live-dot").count() == 0
        # The runs list is live too: a new run appears.
        page.goto(served.url + "/")
        page.evaluate("window.__notReloaded = true")
        with open_store(fresh_store) as st:
            run(st, "newcomer", created_at=T0 + timedelta(days=10))
        page.wait_for_function("document.body.innerText.includes('newcomer')", timeout=20_000)
        assert page.evaluate("window.__notReloaded === true")


def test_the_report_opens_offline(page: Any, web_store: str, tmp_path: Path) -> None:
    with open_store(web_store, readonly=True) as st:
        path = write_report(st, "lp", tmp_path / "lp.html")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_function("typeof Chart !== 'undefined' && document.querySelectorAll('canvas').length === 2")
    page.wait_for_function("Array.from(document.querySelectorAll('canvas')).every(c => Chart.getChart(c))")
    assert [u for u in asked if not u.startswith("file:")] == []
    shot(page, "report-loop")
