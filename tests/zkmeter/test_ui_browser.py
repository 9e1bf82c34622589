"""The dashboard in a real browser: anvil, the worked example settled on it, `zkmeter ui` as a
process, and Debian's headless Chromium driven by Playwright (never a downloaded browser).

One anvil, one demo run and one browser serve the whole module. Each page visited leaves a
screenshot in test-artifacts/ui/ (gitignored). Without /usr/bin/chromium (installed by
`make setup` when run as root) the browser tests skip and say why; the anvil tests that need
no browser still run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contracts.client import ChainClient, Deployment
from contracts.client.index import ChainIndex
from tests.support import REPO_ROOT
from tests.support.anvil import anvil_keys, requires_anvil
from tests.support.ui_server import ServerProcess, Site, start_zkmeter
from zkmeter.demo import DemoResult, run_demo
from zkmeter.ui.server import Dashboard

ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"
CHROMIUM = os.environ.get("ZKMETER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
#: Flags that work on these machines (root, no GPU, no network beyond loopback).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return (
            f"Debian's chromium is not installed ({CHROMIUM} missing): `make setup` installs "
            "it when run as root (apt-get install chromium)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: run `make setup`"
    return None


pytestmark = [pytest.mark.anvil, requires_anvil]


@dataclass
class Demo:
    client: ChainClient
    result: DemoResult
    deployment_file: Path
    payer: str
    creator: str


@pytest.fixture(scope="module")
def demo(anvil_url: str, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    keys = anvil_keys(4)
    client = ChainClient.connect(anvil_url, keys[0], extra_keys=keys[1:])
    result = run_demo(say=lambda _line: None, client=client)
    path = tmp_path_factory.mktemp("ui") / "deployment.json"
    result.deployment.save(path)
    _, creator, payer, _ = client.accounts[:4]
    return Demo(client, result, path, payer.address, creator.address)


@pytest.fixture(scope="module")
def dashboard(anvil_url: str, demo: Demo) -> Iterator[ServerProcess]:
    server = start_zkmeter(
        "ui", "--rpc-url", anvil_url, "--deployment", str(demo.deployment_file), "--port", "0"
    )
    yield server
    code, output = server.stop()
    assert code == 0 and "Traceback" not in output, output


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Chromium context with a fresh profile, clipboard allowed (copy buttons)."""
    missing = _browser_missing()
    if missing is not None:
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))

    def on_console(message: Any) -> None:
        # A page's own 4xx status is what the bad-input tests ask for (and check); any other
        # console error (a script error, a CSP refusal, a missing asset) fails the test.
        url = message.location.get("url", "")
        document = "/static/" not in url and "Failed to load resource" in message.text
        if message.type == "error" and not document:
            errors.append(f"{message.text} ({url})")

    tab.on("console", on_console)
    yield tab
    tab.close()
    assert errors == []


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.browser
def test_a_creator_finds_the_model_its_rate_and_earnings(
    page: Any, dashboard: ServerProcess, demo: Demo
) -> None:
    page.goto(dashboard.url)
    page.get_by_label("Find a model").fill("demo-llm")
    page.get_by_role("button", name="Find").click()
    page.wait_for_url("**/models?q=demo-llm")
    page.get_by_role("link", name="1", exact=True).click()
    page.wait_for_url("**/models/1")

    rate = page.locator("dd.rate-now")
    assert rate.inner_text().startswith("0.002 OPEN per 1,000 tokens")
    earned = page.locator("dd.earned a.amount")
    assert earned.inner_text() == "0.0192 OPEN"
    assert earned.get_attribute("title") == "19,200,000,000,000,000 base units"
    assert page.locator("figure.chart svg").is_visible()
    assert demo.creator in page.locator("dl.facts").inner_text()
    shot(page, "model")

    # Follow the payment to the event and the transaction it came from.
    page.locator("#settlements a.amount", has_text="0.0192 OPEN").click()
    page.wait_for_url("**/tx/0x*#log-*")
    event = page.locator("article.event:target")
    assert "ChannelSettled" in event.inner_text() and "9,600" in event.inner_text()
    assert "settle" in page.locator("dl.facts").first.inner_text()
    shot(page, "transaction")


@pytest.mark.browser
def test_a_payer_sees_what_is_left_for_the_operator(
    page: Any, dashboard: ServerProcess, demo: Demo
) -> None:
    page.goto(dashboard.url + "payers")
    page.get_by_label("Payer address").fill(demo.payer.lower())
    page.get_by_role("button", name="Show payer").click()
    page.wait_for_url(f"**/payers/{demo.payer.lower()}")
    assert page.locator("h1").inner_text().startswith(f"Payer {demo.payer}")  # checksummed
    balance = page.locator("table.escrow td.balance a.amount")
    assert balance.inner_text() == "0.9808 OPEN"
    assert balance.get_attribute("title") == "980,800,000,000,000,000 base units"
    assert page.locator("td.cap").inner_text() == "0.002 OPEN per 1,000 tokens"
    assert "settled 9,600 tokens of model 1 in batch 0" in page.locator("#history").inner_text()
    shot(page, "payer")

    page.locator("h1 button.copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == demo.payer
    page.locator("h1 button.copy.done").wait_for()


@pytest.mark.browser
def test_an_operator_sees_batch_0_and_its_transaction(
    page: Any, dashboard: ServerProcess, demo: Demo
) -> None:
    page.goto(dashboard.url + "operators")
    page.get_by_role("link", name=demo.result.operator).click()
    page.wait_for_url(f"**/operators/{demo.result.operator}")
    row = page.locator('tr[data-batch="0"]')
    cells = row.locator("td").all_inner_texts()
    assert cells[2] == "12" and cells[5] == "9,600" and cells[6] == "0.0192 OPEN"
    assert cells[7] == f"{demo.result.settle_gas:,}"
    shot(page, "operator")

    row.locator("a.tx").click()
    page.wait_for_url("**/tx/0x*")
    facts = page.locator("dl.facts").first.inner_text()
    assert "settle" in facts and f"{demo.result.settle_gas:,}" in facts
    assert "BatchSettled" in page.locator("main").inner_text()


@pytest.mark.browser
def test_bad_input_in_the_browser_is_a_clear_page(page: Any, dashboard: ServerProcess) -> None:
    response = page.goto(dashboard.url + "models/99")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "No such model"
    assert "Model 99 does not exist: the registry has 1 model (ids 1 to 1)." in (
        page.locator("p.message").inner_text()
    )
    shot(page, "unknown-model")
    page.get_by_label("Search").fill("0x000000000000000000000000000000000000dead")
    page.get_by_role("button", name="Search").click()
    assert page.locator("h1").inner_text() == "No activity"


def test_a_deployment_of_another_chain_gives_a_clear_page(anvil_url: str, demo: Demo) -> None:
    other = Deployment.from_json(demo.result.deployment.to_json())
    other.chain_id = 1
    site = Site(Dashboard(ChainIndex.for_node(anvil_url, other)))
    try:
        status, html, _ = site.get("/")
    finally:
        site.close()
    assert status == 502
    assert "deployment is for chain 1, connected to 31337" in html
    assert "wrong deployment file or wrong --rpc-url" in html


def test_the_index_reads_anvil_block_times_from_the_logs(anvil_url: str, demo: Demo) -> None:
    """anvil puts blockTimestamp in its logs: no block request per event block."""
    index = ChainIndex.for_node(anvil_url, demo.deployment_file)
    index.refresh()
    (batch,) = index.operators[demo.result.operator].batches
    block = demo.client.w3.eth.get_block(batch.ref.block_number)
    assert batch.ref.timestamp == block["timestamp"]
    assert index.models[1].earned == demo.result.earned
    account = index.accounts[(demo.payer, demo.result.operator)]
    assert account.balance == demo.result.payer_escrow
