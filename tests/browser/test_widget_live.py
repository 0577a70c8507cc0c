"""The widget end to end: real Chromium, real uvicorn on loopback, real models and Qdrant.

One Fonti for the module (the 15 dev articles and a hostile article ingested through
the API) and one tiny static server whose pages embed the widget from Fonti: reached
as 127.0.0.1 it is an allowed origin (FONTI_CORS_ORIGINS), as localhost it is not.
Screenshots land in var/screenshots/ (ignored by git).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from service.settings import ServerSettings
from tests.factories import (
    DESKTOP,
    HOSTILE_CSS,
    PHONE,
    SCREENSHOTS,
    Loopback,
    dev_article_bodies,
    dev_question,
    host_page,
    live_server,
    make_settings,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

XSS_IMG = '<img src=x onerror="window.__xss=1">'
XSS_SCRIPT = "<script>window.__xss=2</script>"
XSS_OUTLET = "TeleCastelgrotta"
XSS_QUESTION = "Che cosa è stato ritrovato nel museo civico di Castelgrotta?"
XSS_ARTICLE = {
    "id": "castelgrotta-affresco",
    "format": "plain",
    "outlet": XSS_OUTLET,
    "title": f"Castelgrotta, riemerge un affresco {XSS_SCRIPT}",
    "url": "javascript:window.__xss=3",
    "text": (
        "Durante i restauri del museo civico di Castelgrotta è riemerso un affresco quattrocentesco "
        f"con una Madonna col Bambino {XSS_IMG} {XSS_SCRIPT} Lo ha annunciato la direttrice del museo, "
        "Lucia Marchetti, che parla di una scoperta inattesa."
    ),
}
ANSWER_TIMEOUT_MS = 400_000  # one answer of the CPU model, on a shared 2-core machine
SHADOW = "document.querySelector('fonti-widget').shadowRoot"


@dataclass
class Live:
    url: str
    site: Loopback


@pytest.fixture(scope="module")
def fonti(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with Loopback() as site:
        allowed = f"http://127.0.0.1:{site.port}"
        settings = make_settings(
            tmp_path_factory.mktemp("widget-store") / "qdrant", server=ServerSettings(cors_origins=[allowed])
        )
        articles = [*dev_article_bodies(), XSS_ARTICLE]
        with live_server(settings) as (url, _):
            r = httpx.post(url + "/v1/articles", json={"articles": articles}, timeout=900)
            assert r.status_code == 200, r.text
            assert r.json()["ingested"] == 16, r.text
            site.page(
                "/",
                host_page(
                    f'src="{url}/widget.js" data-endpoint="{url}"', head=f"<style>{HOSTILE_CSS}</style>"
                ),
            )
            yield Live(url, site)


@pytest.fixture
def new_page(browser):
    contexts = []

    def make(**ctx: Any) -> Any:
        context = browser.new_context(**ctx)
        contexts.append(context)
        return context.new_page()

    yield make
    for c in contexts:
        c.close()


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def ask(page: Any, question: str) -> tuple[Any, str]:
    """Type and send ``question``; wait until streamed text shows, then for the final answer.

    Returns the answer's message element and the text seen while it was still streaming.
    """
    n = page.locator(".msg.bot").count()
    page.locator("textarea").fill(question)
    page.locator("textarea").press("Enter")
    bot = page.locator(".msg.bot").nth(n)
    streamed = ""
    handle = page.wait_for_function(
        f"() => {{ const m = {SHADOW}.querySelectorAll('.msg.bot')[{n}];"
        " if (!m) return null; if (!m.hasAttribute('aria-busy')) return {done: true};"
        " const t = m.querySelector('.text').textContent; return t.trim() ? {text: t} : null; }",
        timeout=ANSWER_TIMEOUT_MS,
    )
    seen = handle.json_value()
    streamed = seen.get("text", "")
    page.wait_for_function(
        f"() => !{SHADOW}.querySelectorAll('.msg.bot')[{n}].hasAttribute('aria-busy')",
        timeout=ANSWER_TIMEOUT_MS,
    )
    return bot, streamed


def test_demo_page_streams_the_seed_answer_and_opens_a_citation(fonti, new_page):
    page = new_page(viewport=DESKTOP)
    page.goto(fonti.url + "/")
    assert "Intranet" in page.title()
    page.locator(".launcher").click()
    q = dev_question("dev-011")  # English, answered in more than one sentence in the dev eval
    bot, streamed = ask(page, q["question"])
    assert streamed, "no text was shown before the final answer"
    assert "answer" in bot.get_attribute("class"), bot.inner_text()
    text = bot.locator(".text").inner_text()
    assert all(m.lower() in text.lower() for m in q["must_mention"]), text
    outlets = set(bot.locator(".sources .chip").all_inner_texts())
    assert outlets & set(q["gold_outlets"]), outlets
    markers = bot.locator(".cite")
    assert markers.count() >= 1
    for i in range(markers.count()):
        markers.nth(i).click()
        card = bot.locator(".card")
        assert card.locator(".outlet").inner_text() in outlets
        assert markers.nth(i).get_attribute("aria-label").endswith(card.locator(".outlet").inner_text())
        assert card.locator(".title").inner_text()
        assert card.locator("blockquote").inner_text().strip()
    screenshot(page, "widget-desktop.png")


def test_phone_conversation_with_a_follow_up(fonti, new_page):
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    bodies: list[Any] = []
    page.on("request", lambda r: r.url.endswith("/v1/ask") and bodies.append(r.post_data_json))
    page.goto(fonti.url + "/")
    page.locator(".launcher").tap()
    first, _ = ask(page, "Chi ha smentito i contatti?")
    assert "answer" in first.get_attribute("class"), first.inner_text()
    assert "Peskov" in first.locator(".text").inner_text()
    first.locator(".cite").first.tap()
    assert first.locator(".card blockquote").inner_text()
    screenshot(page, "widget-phone.png")
    second, _ = ask(page, "E cosa ha risposto Musk?")
    cls = second.get_attribute("class")
    assert "answer" in cls or "abstained" in cls, second.inner_text()  # an answer either way, not an error
    assert bodies[0] == {"question": "Chi ha smentito i contatti?", "stream": True}
    history = bodies[1]["history"]
    assert [t["role"] for t in history] == ["user", "assistant"]
    assert history[0]["content"] == "Chi ha smentito i contatti?"
    assert "Peskov" in history[1]["content"]
    screenshot(page, "widget-phone-follow-up.png")


def test_allowed_origin_with_hostile_css_cites_a_hostile_article_as_text(fonti, new_page):
    page = new_page(viewport=DESKTOP)
    page.goto(f"http://127.0.0.1:{fonti.site.port}/")
    launcher = page.locator(".launcher")
    assert launcher.bounding_box()["width"] == 56  # the page's `* {...}` rules do not reach it
    launcher.click()
    assert page.locator(".panel").evaluate("e => getComputedStyle(e).fontSize") == "14px"
    bot, _ = ask(page, XSS_QUESTION)
    assert "answer" in bot.get_attribute("class"), bot.inner_text()
    assert "affresco" in bot.locator(".text").inner_text()
    chip = bot.locator(".sources .chip", has_text=XSS_OUTLET)
    assert chip.count() == 1
    chip.click()
    card = bot.locator(".card")
    assert XSS_IMG in card.locator("blockquote").inner_text()
    assert XSS_SCRIPT in card.locator(".title").inner_text()
    assert card.locator("a").count() == 0  # its url is javascript:
    time.sleep(0.5)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate(f"{SHADOW}.querySelectorAll('img, script').length") == 0
    screenshot(page, "widget-hostile-css.png")


def test_disallowed_origin_fails_cleanly(fonti, new_page):
    page = new_page(viewport=DESKTOP)
    origin = f"http://localhost:{fonti.site.port}"
    page.goto(origin + "/")
    page.locator(".launcher").click()
    page.locator("textarea").fill("Who denied the contacts?")
    page.locator("textarea").press("Enter")
    alert = page.locator(".msg.bot [role=alert]")
    alert.wait_for(timeout=30_000)
    assert alert.inner_text() == (
        f"Questa pagina ({origin}) non è autorizzata a usare Fonti. "
        "Chiedi all'amministratore di aggiungerla a FONTI_CORS_ORIGINS."
    )
    assert page.locator(".msg.bot .abtn").count() == 0
    # Fonti itself is up and answers the allowed origin's preflight, not this one's.
    pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = httpx.options(
        fonti.url + "/v1/ask", headers={"Origin": f"http://127.0.0.1:{fonti.site.port}", **pre}
    )
    refused = httpx.options(fonti.url + "/v1/ask", headers={"Origin": origin, **pre})
    assert ok.status_code == 200 and refused.status_code == 400
    screenshot(page, "widget-refused-origin.png")
