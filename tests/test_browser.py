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
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from notebook_fixtures import NOTEBOOKS, REPO, free_port, kernel_env

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts"
RUN_TIMEOUT_S = 150

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Chromium is not installed at /usr/bin/chromium "
                              "(apt-get install chromium)"),
]


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


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a tmp copy of the mnist notebook (smaller subset)."""
    root = tmp_path / "lab"
    root.mkdir()
    nb = nbformat.read(str(NOTEBOOKS / "mnist.ipynb"), as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = params.source.replace("limit = None", "limit = 256")
    nbformat.write(nb, str(root / "mnist.ipynb"))
    port, token = free_port(), secrets.token_hex(16)
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.token={token}",
         f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
         "--LabApp.news_url=", "--LabServerApp.extensions_manager=false"],
        cwd=root, env=kernel_env(), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        _wait_for_server(f"http://127.0.0.1:{port}/api/status?token={token}", proc)
        yield {"url": f"http://127.0.0.1:{port}/lab/tree/mnist.ipynb?token={token}",
               "root": root, "log": tmp_path / "jupyterlab.log"}
    finally:
        # The server and its kernels are in the session we started: stop exactly that group.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _prompts(page):
    return page.eval_on_selector_all(
        ".jp-Notebook .jp-CodeCell .jp-InputPrompt",
        "nodes => nodes.map(n => n.textContent.trim())")


def _wait_for_run(page, timeout):
    """Wait until every code cell has a number in its prompt, or an error shows."""
    deadline = time.monotonic() + timeout
    prompts = []
    while time.monotonic() < deadline:
        errors = page.locator(".jp-OutputArea-output[data-mime-type="
                              "'application/vnd.jupyter.error']")
        if errors.count():
            return prompts, errors.first.inner_text()[:2000]
        prompts = _prompts(page)
        if prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts):
            return prompts, None
        time.sleep(1.0)
    raise TimeoutError(f"notebook did not finish in {timeout} s; prompts: {prompts}")


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
            # The kernel must be up before Run All, or the first cells queue forever.
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                   timeout=60_000)
            page.click("li.lm-MenuBar-item:has-text('Run')")
            page.click("li.lm-Menu-item[data-command='notebook:run-all-cells']")
            prompts, error = _wait_for_run(page, RUN_TIMEOUT_S)
            if error:
                page.screenshot(path=str(shot))
                pytest.fail(f"a cell failed in the browser:\n{error}")
            assert len(prompts) >= 10

            editor = page.locator(".ai8x-layer-editor")
            editor.scroll_into_view_if_needed()
            assert editor.is_visible()
            assert page.locator(".ai8x-layer-editor .ai8x-layer-row").count() == 6
            assert "71,158 parameters" in editor.inner_text()

            # Live validation in the browser: kernel 5 in row 1 shows the error inline.
            kernel = page.locator(".ai8x-layer-editor .ai8x-layer-row").nth(1) \
                .locator("input[type='number']").nth(1)
            kernel.fill("5")
            kernel.press("Enter")
            error_text = page.locator(".ai8x-layer-editor .ai8x-row-error").first
            error_text.wait_for(timeout=20_000)
            assert "kernel_size=5" in error_text.inner_text()
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
