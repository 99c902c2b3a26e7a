"""``make lab`` as a user meets it: the server started headless, a notebook opened in JupyterLab in Chromium, its
first cells run, their output seen, the server stopped.

The server is started from :func:`hybridir_utils.pipeline.lab.lab_command` (what ``make lab`` executes) on the smoke
profile's parameterised copies, in a temporary build folder. Chromium is Debian's (``make browser``); a missing
chromium fails the test, it never skips it.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
import urllib.request

import pytest

from hybridir_utils.pipeline import lab

NOTEBOOK = "01_data_exploration.ipynb"
CELLS_TO_SUMMARY = 7  # title, imports, parameters, injected parameters, data loading, heading, the summary table


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_serving(server: subprocess.Popen, url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"jupyter lab exited with {server.returncode}: {server.stdout.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"jupyter lab did not answer {url} within {timeout:.0f} s")


@pytest.fixture
def lab_server(tmp_path, monkeypatch, shared_data_dir):
    """A JupyterLab server on the smoke profile's lab copies: (base URL, token, lab folder); stopped afterwards."""
    monkeypatch.setenv("HYBRIDIR_BUILD_DIR", str(tmp_path / "build"))
    folder = lab.prepare("smoke")
    port, token = _free_port(), secrets.token_hex(16)
    command = [*lab.lab_command(folder, port=port, browser=False), f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={folder}", "--LabApp.news_url=", "--ServerApp.log_level=WARN"]  # fmt: skip
    env = {**os.environ, "HYBRIDIR_DATA_DIR": str(shared_data_dir), "HF_HUB_OFFLINE": "1",
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(server, f"{base}/api/status?token={token}")
        yield base, token, folder
    finally:
        server.terminate()  # SIGTERM: the server shuts its kernels down and exits
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert server.returncode is not None, "the JupyterLab server is still running"


@pytest.mark.slow
def test_jupyterlab_opens_a_notebook_and_runs_its_first_cells_in_chromium(lab_server, chromium_path):
    from playwright.sync_api import expect, sync_playwright

    base, token, folder = lab_server
    assert (folder / NOTEBOOK).is_file()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        page = browser.new_page()
        page_errors = []
        page.on("pageerror", lambda e: page_errors.append(str(e)))
        page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}", wait_until="domcontentloaded")
        cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")
        cells.first.wait_for(timeout=120_000)
        expect(cells.first).to_contain_text("Data exploration", timeout=60_000)  # the markdown rendered
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=120_000)  # kernel up
        summary = cells.nth(CELLS_TO_SUMMARY - 1)
        expect(summary.locator(".jp-InputArea")).to_contain_text("describe(xquad)", timeout=60_000)
        summary.locator(".jp-InputPrompt").click()  # select the summary cell; run the cells above it, then it
        for item in ("Run All Above Selected Cell", "Run Selected Cell"):
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel").get_by_text(item, exact=True).click()
        table = summary.locator(".jp-OutputArea-output table")
        table.wait_for(timeout=180_000)  # the kernel imports torch and reads the shared data first
        for text in ("candidates", "xquad-r", "mlqa-r"):
            expect(table).to_contain_text(text)
        outputs = page.locator(".jp-Notebook .jp-OutputArea-output").all_inner_texts()
        assert not [o for o in outputs if "Traceback" in o or "Error" in o], outputs
        prompts = [cells.nth(i).locator(".jp-InputPrompt").inner_text().strip() for i in range(CELLS_TO_SUMMARY)]
        assert [p for p in prompts if p] == ["[1]:", "[2]:", "[3]:", "[4]:", "[5]:"], prompts  # all ran, in order
        assert page_errors == []
        browser.close()
