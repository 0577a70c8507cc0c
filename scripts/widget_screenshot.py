"""The README's picture: the widget on Fonti's demo page answering the README's question.

Runs what a user runs — `fonti ingest data/sample` into a temporary store, `fonti serve`
on loopback — then drives Debian's headless Chromium (Playwright, no browser download):
opens `/`, opens the widget, asks, waits for the checked answer, opens its first citation
and saves a palette PNG (small enough to commit) of the page's lower right corner.

    python scripts/widget_screenshot.py [--out docs/widget.png] [--question "..."]

Also prints how long ingesting and starting up took.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
QUESTION = "Who denied the contacts between Musk and Putin?"
CHROMIUM = os.environ.get("FONTI_CHROMIUM", "/usr/bin/chromium")
SHADOW = "document.querySelector('fonti-widget').shadowRoot"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "widget.png")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--colors", type=int, default=96, help="palette size of the PNG")
    args = parser.parse_args()

    from PIL import Image
    from playwright.sync_api import sync_playwright

    fonti = str(Path(sys.executable).with_name("fonti"))
    with tempfile.TemporaryDirectory(prefix="fonti-shot-") as tmp:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FONTI_")}
        env.update(FONTI_STORE_PATH=str(Path(tmp) / "store"), FONTI_PORT=str(port), FONTI_LOG_FORMAT="text")
        start = time.monotonic()
        subprocess.run([fonti, "ingest", str(REPO / "data" / "sample")], env=env, check=True)
        ingest_s = time.monotonic() - start
        log = (Path(tmp) / "serve.log").open("w")
        server = subprocess.Popen([fonti, "serve", "--port", str(port)], env=env, stderr=log, stdout=log)
        url = f"http://127.0.0.1:{port}"
        try:
            start = time.monotonic()
            while True:
                try:
                    if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() - start > 300:
                    raise SystemExit(
                        f"fonti serve did not get ready: {(Path(tmp) / 'serve.log').read_text()}"
                    )
                time.sleep(0.2)
            ready_s = time.monotonic() - start
            print(f"ingest data/sample: {ingest_s:.1f} s; fonti serve start-up to ready: {ready_s:.1f} s")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 900, "height": 760})
                page.goto(url + "/")
                page.locator(".launcher").click()
                page.locator("textarea").fill(args.question)
                start = time.monotonic()
                page.locator("textarea").press("Enter")
                page.wait_for_function(
                    f"() => {{ const m = {SHADOW}.querySelector('.msg.bot');"
                    " return m && !m.hasAttribute('aria-busy'); }",
                    timeout=600_000,
                )
                print(f"answer in the widget: {time.monotonic() - start:.1f} s")
                bot = page.locator(".msg.bot").first
                print(bot.locator(".text").inner_text())
                if bot.locator(".cite").count():
                    bot.locator(".cite").first.click()
                raw = Path(tmp) / "shot.png"
                page.screenshot(path=str(raw))
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=60)
        image = Image.open(raw).convert("RGB")
        small = image.quantize(colors=args.colors, method=Image.Quantize.MEDIANCUT)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        small.save(args.out, optimize=True)
    print(f"{args.out}: {args.out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
