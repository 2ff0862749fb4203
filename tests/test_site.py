"""The course site: built by nbconvert, then opened page by page in a real headless
Chromium (Debian's ``chromium``, driven by Playwright) served from localhost.

``make test`` installs ``chromium`` when it is missing. Without it these tests fail
(they do not skip); set ``MMTUTORIAL_CHROMIUM`` to use another Chromium binary."""

import functools
import http.server
import json
import os
import re
import shutil
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from mmtutorial.course import COURSE
from mmtutorial.course.site import SITE_TITLE, build_site, main

pytestmark = pytest.mark.browser  # drives Chromium: left out of `make check`
ROOT = Path(__file__).resolve().parents[1]
# one folder per xdist worker: each builds the site for its own share of the tests, and a shared
# folder was rebuilt under the other worker's server (404s, seen on a loaded 2-core CPU)
SITE = ROOT / "build" / f"site-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
SCREENSHOTS = ROOT / "build" / "site-screenshots"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHROMIUM = os.environ.get("MMTUTORIAL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output readable
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a browser may drop a connection it no longer needs
            super().handle_error(request, client_address)


def _has_math(cells: list[dict]) -> bool:
    return any("$" in "".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def _solution_cells(cells: list[dict]) -> int:
    return sum("solution" in c["metadata"].get("tags", []) for c in cells)


def _figures(cells: list[dict]) -> int:
    """How many images the committed notebook's outputs hold."""
    return sum("image/png" in o.get("data", {}) for c in cells if c["cell_type"] == "code" for o in c["outputs"])


@pytest.fixture(scope="module")
def site():
    pages = build_site(ROOT / "notebooks", SITE)
    server = QuietServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(SITE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", pages
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.fail("no chromium: `make test` installs it (apt-get install chromium), or set MMTUTORIAL_CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _open(browser, url):
    """Open ``url``; return the page and every problem the browser reported."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    response = page.goto(url, wait_until="networkidle")
    assert response.status == 200, url
    return page, problems


def test_site_has_a_page_per_notebook_with_navigation_and_sources(site):
    _, pages = site
    assert [p.filename for p in pages] == ["index.html"] + [p.name.replace(".ipynb", ".html") for p in NOTEBOOKS]
    for path in NOTEBOOKS:
        assert (SITE / "notebooks" / "solutions" / path.name).read_bytes() == path.read_bytes()
        assert (SITE / "notebooks" / "student" / path.name).exists()
    html = (SITE / NOTEBOOKS[1].name.replace(".ipynb", ".html")).read_text()
    tags = [tag for tag in re.findall(r"<a [^>]*>", html) if "rel=" in tag]
    links = {re.search(r'rel="(\w+)"', t).group(1): re.search(r'href="([^"]+)"', t).group(1) for t in tags}
    assert links == {"prev": "00_welcome.html", "next": f"{NOTEBOOKS[2].stem}.html"}
    assert "cdnjs" not in html and "require.js" not in html, "the site must not need the network"
    assert (SITE / "mathjax" / "MathJax.js").exists()


def test_site_cli_names_a_folder_without_notebooks(tmp_path, capsys):
    assert main(["--notebooks", str(tmp_path), "--out", str(tmp_path / "site")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: no course notebooks") and len(error.splitlines()) == 1
    assert not (tmp_path / "site").exists()


def test_source_url_adds_repository_links(tmp_path):
    build_site(ROOT / "notebooks", tmp_path / "site", source_url="https://example.org/repo/blob/main/")
    html = (tmp_path / "site" / "00_welcome.html").read_text()
    assert 'href="https://example.org/repo/blob/main/notebooks/00_welcome.ipynb"' in html


def test_index_loads_and_links_every_notebook(site, browser):
    base, _ = site
    page, problems = _open(browser, f"{base}/index.html")
    assert page.title() == SITE_TITLE
    links = page.eval_on_selector_all("a[href$='.html']", "els => els.map(e => e.getAttribute('href'))")
    expected = [p.name.replace(".ipynb", ".html") for p in NOTEBOOKS]
    assert sorted(set(links) & set(expected)) == expected, "the index must link every notebook"
    titles = {lesson.title for lesson in COURSE if lesson.filename in {p.name for p in NOTEBOOKS}}
    assert all(page.get_by_role("link", name=title, exact=True).count() == 1 for title in titles)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "index.png"), full_page=True)
    page.close()
    assert not problems, problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_page_loads_with_title_math_and_figures(site, browser, path):
    cells = json.loads(path.read_text())["cells"]
    base, pages = site
    expected = next(p for p in pages if p.lesson and p.lesson.filename == path.name)
    page, problems = _open(browser, f"{base}/{expected.filename}")
    assert page.title() == expected.title
    heading = page.locator("h1").first
    assert heading.is_visible() and heading.inner_text().strip(), "the notebook's title is shown"
    figures = page.locator(".jp-OutputArea-output img")
    assert figures.count() == _figures(cells), "every figure of the notebook is on the page"
    for index in range(figures.count()):
        figure = figures.nth(index)
        box = figure.bounding_box()
        natural = figure.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
        assert natural[0] and min(natural[1:]) > 0 and box["width"] > 0 and box["height"] > 0, f"figure {index}"
    if _has_math(cells):
        page.wait_for_function("() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0")
        assert page.locator(".MathJax, .MathJax_Display").count() > 0, "MathJax typeset the formulas"
        assert "Math Processing Error" not in page.inner_text("body")
    solutions = page.locator("details.mm-solution")  # folded until opened
    assert solutions.count() == _solution_cells(cells) > 0
    first = solutions.first.locator(".jp-Cell").first
    assert not first.is_visible()
    solutions.first.locator("summary").click()
    assert first.is_visible()
    for link in page.locator("nav.mm-top a").all():  # navigation and source links resolve
        href = link.get_attribute("href")
        with urllib.request.urlopen(f"{base}/{href}") as reply:
            assert reply.status == 200, href
    if path.name.startswith("09"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{path.stem}.png"))
        figures.first.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / f"{path.stem}-first-figure.png"))
    page.close()
    assert not problems, problems
