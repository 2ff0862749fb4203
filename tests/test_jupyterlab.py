"""JupyterLab itself, in a real browser: a server on a free port with a token, serving a
temporary copy of the notebooks; Debian's Chromium (driven by Playwright, which downloads
nothing) opens a notebook, runs all its cells from the Run menu in smoke mode, and checks
that no cell failed, that every explorer rendered as a live widget and answers one
interaction (a slider moved, a question typed), and that the browser logged no error.
Screenshots go to ``build/jupyterlab-screenshots/``.

``make test`` installs ``chromium`` when it is missing; set ``MMTUTORIAL_CHROMIUM`` to use
another Chromium binary. The server and its kernels are shut down even when a check fails.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "jupyterlab-screenshots"
CHROMIUM = os.environ.get("MMTUTORIAL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
BIN = Path(sys.executable).parent

#: Notebooks opened in JupyterLab: 01 always; 09 once its explorer is in the notebook.
CANDIDATES = ("01_attention_as_soft_lookup", "09_vqa_fusion_model")
NOTEBOOKS = [
    name for name in CANDIDATES if "explore_" in (ROOT / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8")
]
RUN_ALL_TIMEOUT_S = 600

#: Settings for this server only: every cell stays in the page (JupyterLab otherwise
#: renders only the cells near the viewport), and no news or update check (no network).
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}

#: Console errors that say nothing about the course, each with why it is harmless.
HARMLESS_CONSOLE_ERRORS: tuple[str, ...] = ()

#: The notebook's state, read through the JupyterLab app (exposed for this server only):
#: the kernel's status, code cells not run yet, and the errors in the outputs.
STATE_JS = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    const cells = panel.content.model.cells;
    let pending = 0;
    const errors = [];
    for (let i = 0; i < cells.length; i++) {
        const cell = cells.get(i);
        if (cell.type !== "code") continue;
        if (cell.executionCount === null) pending++;
        for (const output of cell.outputs.toJSON())
            if (output.output_type === "error") errors.push(`cell ${i}: ${output.ename}: ${output.evalue}`);
    }
    return {status: kernel ? kernel.status : "none", pending, errors};
}"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _api(base: str, token: str, path: str, method: str = "GET"):
    request = urllib.request.Request(f"{base}{path}", method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over a copy of notebooks/ (nothing is written into the repository)."""
    home = tmp_path_factory.mktemp("jupyterlab")
    root = home / "notebooks"
    root.mkdir()
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(notebook, root)
    shutil.copytree(ROOT / "notebooks" / "experiments", root / "experiments")
    for name, values in SETTINGS.items():
        path = home / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMTUTORIAL_")}  # live widgets, not static
    env.update(
        MMTUTORIAL_SMOKE="1",
        OMP_NUM_THREADS="1",
        JUPYTER_CONFIG_DIR=str(home / "config"),  # no user configuration
        JUPYTER_DATA_DIR=str(home / "data"),  # no user kernels: python3 is this environment's
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    command = [
        str(BIN / "jupyter"),
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={home / 'settings'}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: the kernel's status and the cells' outputs
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = (home / "server.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _api(base, token, "/api/status")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(home / 'server.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield base, token, root
    finally:
        try:  # the server shuts its kernels down with it
            _api(base, token, "/api/shutdown", method="POST")
            server.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGTERM)  # the server's own process group: it and its kernels
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.fail("no chromium: `make test` installs it (apt-get install chromium), or set MMTUTORIAL_CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        yield chromium
        chromium.close()


#: Forget the committed outputs and execution counts, so that a cell counts as run only
#: once this kernel has run it (the committed notebook has every count set already).
CLEAR_JS = """() => {
    const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
    for (let i = 0; i < cells.length; i++) {
        const cell = cells.get(i);
        if (cell.type !== "code") continue;
        cell.outputs.clear();
        cell.executionCount = null;
    }
}"""


def _run_all(page) -> dict:
    """Run > Run All Cells, then wait until every cell ran (or one failed) and the kernel is idle.

    The committed outputs are cleared first: otherwise a check made before the kernel has
    picked up the first cell sees an idle kernel, no cell pending and the committed
    (static) outputs, and returns at once."""
    page.evaluate(CLEAR_JS)
    assert page.evaluate(STATE_JS)["pending"] > 0, "clearing the committed outputs did not take"
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    deadline = time.monotonic() + RUN_ALL_TIMEOUT_S
    while True:
        state = page.evaluate(STATE_JS)
        if state["status"] == "idle" and (state["pending"] == 0 or state["errors"]):
            return state
        if time.monotonic() > deadline:
            pytest.fail(f"the notebook did not finish within {RUN_ALL_TIMEOUT_S} s: {state}")
        page.wait_for_timeout(1000)


def _interact(page, explorer) -> None:
    """One interaction, as a learner would: type a question where there is a text box,
    otherwise move the first slider one step with the keyboard."""
    text = explorer.locator(".widget-text input")
    if text.count():
        text.first.fill("What is the shape of the blue object?")
        text.first.press("Enter")
    else:
        handle = explorer.locator(".widget-slider .noUi-handle").first
        handle.focus()
        handle.press("ArrowRight")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_jupyterlab_runs_the_notebook_and_its_explorers_respond(lab, browser, name):
    base, token, root = lab
    calls = sum(
        "explore_" in "".join(cell["source"])
        for cell in json.loads((root / f"{name}.ipynb").read_text())["cells"]
        if cell["cell_type"] == "code"
    )
    assert calls >= 1, f"{name} calls no explorer"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    try:
        # a workspace of its own, reset: the notebook opened before (its kernel shut down
        # at the end of its test) is not restored next to this one
        page.goto(f"{base}/lab/workspaces/{name}/tree/{name}.ipynb?reset&token={token}")
        page.wait_for_function(
            "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
            " return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
            " && w.sessionContext.session.kernel.status === 'idle'; }",
            timeout=120_000,
        )
        state = _run_all(page)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-ran.png"))
        assert not state["errors"], f"{name}: cells failed: {state['errors']}"
        tracebacks = [
            text
            for text in page.locator(
                '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
            ).all_inner_texts()
            if "Traceback" in text
        ]
        assert not tracebacks, f"{name}: a traceback on stderr: {tracebacks[0][:500]}"
        # every explorer is a live widget (the ipywidgets extension rendered it), with its figure
        explorers = page.locator(".mmtutorial-explorer")
        explorers.first.wait_for(timeout=60_000)
        assert explorers.count() == calls, f"{name}: {explorers.count()} explorers rendered, {calls} called"
        for i in range(calls):
            explorer = explorers.nth(i)
            explorer.scroll_into_view_if_needed()
            image = explorer.locator("img.widget-image")
            assert image.evaluate("img => img.complete && img.naturalWidth > 100"), "the figure did not load"
            status = explorer.locator(".widget-html-content")
            before = (status.inner_text(), image.get_attribute("src"))
            explorer.screenshot(path=str(SCREENSHOTS / f"{name}-explorer{i + 1}.png"))
            _interact(page, explorer)
            page.wait_for_function(
                "([element, text, src]) => element.querySelector('.widget-html-content').innerText !== text"
                " && element.querySelector('img.widget-image').src !== src",
                arg=[explorer.element_handle(), *before],
                timeout=30_000,
            )
            explorer.screenshot(path=str(SCREENSHOTS / f"{name}-explorer{i + 1}-after.png"))
        serious = [p for p in problems if not any(harmless in p for harmless in HARMLESS_CONSOLE_ERRORS)]
        assert not serious, f"{name}: the browser reported {serious}"
    finally:
        page.close()
        for kernel in _api(base, token, "/api/kernels"):  # free the CPU for the next notebook
            _api(base, token, f"/api/kernels/{kernel['id']}", method="DELETE")
