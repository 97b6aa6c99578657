"""The mnist notebook in a real browser: JupyterLab + headless Chromium (Playwright).

Starts JupyterLab on localhost with a token on a copy of the mnist notebook, runs all cells
from the Run menu, and checks that the layer editor widget and the training plot render,
and that the editor flags a bad kernel size live. Screenshots go to test-artifacts/.
Skipped only when Debian's Chromium (/usr/bin/chromium) is not installed.
"""

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from support import SHARED_DATA

from ai8x_nb.runner import notebook_dir

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts"
# A loaded CI machine runs the notebook several times slower than an idle one: the wait ends
# when no cell has finished for STALL_TIMEOUT_S (a hung kernel), or after RUN_TIMEOUT_S in all.
STALL_TIMEOUT_S = 300
RUN_TIMEOUT_S = 900

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Chromium is not installed at /usr/bin/chromium "
                              "(apt-get install chromium)"),
]


def _free_port():
    """A free TCP port on localhost."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kernel_env():
    """The environment for the server and its kernels: AI8X_NB_DATA set, TF quiet."""
    env = dict(os.environ)
    env.setdefault("AI8X_NB_DATA", str(SHARED_DATA))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _wait_for_server(url, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return json.loads(response.read())
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer {url} within {timeout} s")


def _stop_group(proc):
    """Stop the server and its kernels: the process group of the session we started."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a tmp copy of the mnist notebook (smaller subset)."""
    root = tmp_path / "lab"
    root.mkdir()
    nb = nbformat.read(str(notebook_dir() / "mnist.ipynb"), as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = params.source.replace("limit = None", "limit = 256")
    nbformat.write(nb, str(root / "mnist.ipynb"))
    settings = tmp_path / "settings"
    # Render every cell (no windowing: off-screen outputs exist in the DOM) and no news toast.
    for plugin, values in (("notebook-extension/tracker", {"windowingMode": "none"}),
                           ("apputils-extension/notification", {"fetchNews": "false"})):
        path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "browser-jupyterlab.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
         "--ServerApp.allow_root=True", "--LabApp.news_url=",
         "--LabApp.extension_manager=readonly",
         # A fresh workspace and settings: nothing restored from earlier sessions.
         f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
         f"--LabApp.user_settings_dir={tmp_path / 'settings'}"],
        cwd=root, env=_kernel_env(), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        _wait_for_server(f"http://127.0.0.1:{port}/api/status?token={token}", proc)
        yield {"url": f"http://127.0.0.1:{port}/lab/tree/mnist.ipynb?token={token}",
               "root": root, "log": log_path}
    finally:
        # The server and its kernels are in the session we started: stop exactly that group.
        _stop_group(proc)
        log.close()


def _accept_dialogs(page):
    """Accept JupyterLab's start-up dialogs (e.g. "Select Kernel": the default python3)."""
    dialog = page.locator(".jp-Dialog")
    while dialog.count() and dialog.first.is_visible():
        print("JupyterLab dialog:", dialog.first.inner_text()[:300].replace("\n", " | "))
        choice = dialog.first.locator("select")
        if choice.count():
            labels = choice.first.locator("option").all_inner_texts()
            python = [label for label in labels if label.startswith("Python 3")]
            if python:
                choice.first.select_option(label=python[0])
        dialog.first.locator(".jp-Dialog-button.jp-mod-accept").click()
        page.wait_for_timeout(500)


def _run_all_cells(page, attempts=4):
    """Run > Run All Cells; repeated while no cell started (the kernel may still connect)."""
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=60_000)
    for _ in range(attempts):
        _accept_dialogs(page)
        page.click("li.lm-MenuBar-item:has-text('Run')")
        page.click("li.lm-Menu-item[data-command='runmenu:run-all']")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if any(p != "[ ]:" for p in _prompts(page)):
                return
            time.sleep(0.5)
    raise TimeoutError("Run All Cells started no cell; is the kernel running?")


def _prompts(page):
    return page.eval_on_selector_all(
        ".jp-Notebook .jp-CodeCell .jp-InputPrompt",
        "nodes => nodes.map(n => n.textContent.trim())")


def _wait_for_run(page, timeout, stall_timeout):
    """Wait until every code cell has a number in its prompt, or an error shows.

    Fails when no further cell finished within `stall_timeout` seconds, or after `timeout`.
    """
    start = time.monotonic()
    progress_at, done = start, -1
    prompts = []
    while True:
        errors = page.locator(".jp-OutputArea-output[data-mime-type="
                              "'application/vnd.jupyter.error']")
        if errors.count():
            return prompts, errors.first.inner_text()[:2000]
        prompts = _prompts(page)
        finished = sum(1 for p in prompts if re.fullmatch(r"\[\d+\]:", p))
        if prompts and finished == len(prompts):
            return prompts, None
        now = time.monotonic()
        if finished != done:
            progress_at, done = now, finished
        if now - progress_at > stall_timeout or now - start > timeout:
            raise TimeoutError(
                f"notebook did not finish: {finished} of {len(prompts)} cells ran in "
                f"{now - start:.0f} s, none in the last {now - progress_at:.0f} s "
                f"(limits {stall_timeout} s without progress, {timeout} s in all); "
                f"prompts: {prompts}; JupyterLab log: test-artifacts/browser-jupyterlab.log")
        time.sleep(1.0)


def test_mnist_notebook_renders_editor_and_training_plot(lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "browser-mnist.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.goto(lab["url"], wait_until="domcontentloaded", timeout=60_000)
            page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=60_000)
            _run_all_cells(page)
            prompts, error = _wait_for_run(page, RUN_TIMEOUT_S, STALL_TIMEOUT_S)
            if error:
                page.screenshot(path=str(shot))
                pytest.fail(f"a cell failed in the browser:\n{error}")
            assert len(prompts) >= 10

            editor = page.locator(".ai8x-layer-editor")
            editor.scroll_into_view_if_needed()
            assert editor.is_visible()
            assert page.locator(".ai8x-layer-editor .ai8x-layer-row").count() == 6
            assert "71,158 parameters" in editor.text_content()
            # The latency column and total (check_model, the synthesis tool's estimate).
            cycles = page.locator(".ai8x-layer-editor .ai8x-row-cycles").first
            assert re.search(r"\d[\d,]*", cycles.text_content() or "")
            assert "latency 70,157 cycles" in editor.text_content()
            editor.screenshot(path=str(ARTIFACTS / "browser-mnist-editor-latency.png"))

            # Live validation in the browser: kernel 5 in row 1 shows the error inline.
            kernel = page.locator(".ai8x-layer-editor .ai8x-layer-row").nth(1) \
                .locator("input[type='number']").nth(1)
            kernel.fill("5")
            kernel.press("Enter")
            error_text = page.locator(".ai8x-layer-editor .ai8x-row-error").first
            error_text.wait_for(timeout=20_000)
            assert "kernel_size=5" in error_text.text_content()
            editor.screenshot(path=str(ARTIFACTS / "browser-mnist-editor.png"))

            # The training cell's output holds the live plot as an image.
            train_cell = page.locator(".jp-CodeCell:has-text('LivePlot(title')")
            image = train_cell.locator(".jp-OutputArea-output img").first
            image.scroll_into_view_if_needed()
            assert image.is_visible()
            assert image.evaluate("img => img.naturalWidth") > 300
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
