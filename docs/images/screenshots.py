"""Take the docs' screenshots of `hone view` and `hone report` (docs/view.md) from a real store.

    python docs/images/screenshots.py STORE_PATH

Needs the `hone[web]` extra, Playwright and Debian's chromium; the store used for the committed
pictures held `hone eval arith --model micro -n 40 -k 2`, `hone loop arith --iterations 2`, and
`hone improve arith --model micro -s mcts|evolve|deliberate -n 3 --budget calls=16 --run-id demo-...`
(evolve with `--set islands=2`).
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa
import uvicorn
from playwright.sync_api import sync_playwright

from hone.store import open_store
from hone.web import create_app, write_report

OUT = Path(__file__).parent
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def main(store: str) -> None:
    app = create_app(store)
    engine = app.state.store.engine
    with engine.connect() as conn:
        loop = conn.execute(sa.text("SELECT id FROM runs WHERE kind='loop' ORDER BY created_at DESC")).scalar_one()
        last_eval = f"{loop}-eval-2"
        traj = conn.execute(
            sa.text("SELECT id FROM trajectories WHERE run_id=:r AND passed=1 AND n_steps=2 LIMIT 1"), {"r": last_eval}
        ).scalar_one()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=8765, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = "http://127.0.0.1:8765"
    pages = {
        "view-runs": "/",
        "view-run": f"/run?id={last_eval}",
        "view-transcript": f"/t?id={traj}",
        "view-loop": f"/run?id={loop}",
        "view-evolve": "/graph?run=demo-evolve-evolve&task=arith-test-L2-0000",
        "view-deliberate": "/graph?run=demo-deliberate-deliberate",
        "view-compare": "/compare?a=demo-mcts-best_of_n&b=demo-mcts-mcts",
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 860})
        for name, path in pages.items():
            page.goto(base + path)
            page.wait_for_timeout(400)
            page.screenshot(path=str(OUT / f"{name}.png"))
        page.goto(base + "/graph?run=demo-mcts-mcts")
        page.wait_for_function("window.honeGraph !== undefined")
        node = page.evaluate("window.honeGraph.nodes('.chosen').id() || window.honeGraph.nodes()[0].id()")
        pos = page.evaluate(
            f"(() => {{ const p = window.honeGraph.$id('{node}').renderedPosition(); return [p.x, p.y]; }})()"
        )
        box = page.locator("#graph").bounding_box()
        page.mouse.click(box["x"] + pos[0], box["y"] + pos[1])
        page.wait_for_timeout(300)
        page.screenshot(path=str(OUT / "view-mcts.png"))
        with tempfile.TemporaryDirectory() as tmp, open_store(store, readonly=True) as st:
            report = write_report(st, loop, Path(tmp) / "report.html")
            page.goto(report.as_uri())
            page.wait_for_timeout(400)
            page.screenshot(path=str(OUT / "report-loop.png"))
        browser.close()
    server.should_exit = True


if __name__ == "__main__":
    main(sys.argv[1])
