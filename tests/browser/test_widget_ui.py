"""The widget in a real headless Chromium, against scripted answers (no models).

The page and the API are answered by Playwright route interception or by a tiny
loopback server, so every state of the conversation can be produced on demand: the
end-to-end tests with the real service are in test_widget_live.py.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.factories import DESKTOP, HOSTILE_CSS, PHONE, WIDGET_JS, Loopback, free_port, host_page, sse

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

FONTI = "http://fonti.test"
XSS_IMG = '<img src=x onerror="window.__xss=1">'
XSS_SCRIPT = "<script>window.__xss=2</script>"

CITATION = {
    "id": 1,
    "outlet": "WIRED Italia",
    "article_id": "cremlino.txt",
    "article_ids": ["cremlino.txt"],
    "title": "Il Cremlino smentisce i contatti tra Musk e Putin",
    "url": "https://www.wired.it/articolo/cremlino",
    "quote": "Il portavoce Dmitry Peskov ha smentito i contatti.",
    "score": 0.86,
}


def answer(text: str, citations: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "question": "q",
        "answer": text,
        "language": "it",
        "abstained": False,
        "citations": citations,
        "timings": {},
        **extra,
    }


def sse_reply(*events: tuple[str, Any]) -> dict[str, Any]:
    return {"status": 200, "content_type": "text/event-stream", "body": sse(*events)}


@dataclass
class Harness:
    """A page with the widget whose /v1/ask replies come from ``replies`` in order."""

    page: Any
    replies: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def handle(self, route: Any) -> None:
        req = route.request
        self.calls.append({"body": json.loads(req.post_data or "{}"), "headers": req.headers})
        route.fulfill(**self.replies.pop(0))

    def loc(self, css: str) -> Any:
        return self.page.locator(css)  # CSS locators pierce the open shadow root

    def open(self) -> None:
        self.loc(".launcher").click()

    def ask(self, question: str) -> Any:
        self.loc("textarea").fill(question)
        self.loc("textarea").press("Enter")
        bot = self.loc(".msg.bot").last
        self.page.wait_for_function(
            "() => { const m = [...document.querySelector('fonti-widget').shadowRoot"
            ".querySelectorAll('.msg.bot')].pop(); return m && !m.hasAttribute('aria-busy'); }"
        )
        return bot


@pytest.fixture
def widget(browser):
    contexts = []

    def make(attrs: str = "", head: str = "", lang: str = "it", viewport=DESKTOP, **ctx: Any) -> Harness:
        context = browser.new_context(viewport=viewport, **ctx)
        contexts.append(context)
        page = context.new_page()
        h = Harness(page)
        html = host_page(f'src="{FONTI}/widget.js" {attrs}', head, lang=lang)
        # Anything else on the fake origin is a fast 404 (routes added later take precedence):
        # left to the network, "fonti.test" waits on DNS and an <img onerror> fires seconds late.
        page.route(f"{FONTI}/**", lambda r: r.fulfill(status=404, content_type="text/plain", body=""))
        page.route(f"{FONTI}/", lambda r: r.fulfill(status=200, content_type="text/html", body=html))
        page.route(
            f"{FONTI}/widget.js",
            lambda r: r.fulfill(
                status=200, content_type="text/javascript", body=WIDGET_JS.read_text("utf-8")
            ),
        )
        page.route(f"{FONTI}/v1/ask", h.handle)
        page.goto(FONTI + "/")
        page.wait_for_selector("fonti-widget", state="attached")
        return h

    yield make
    for c in contexts:
        c.close()


def test_final_answer_replaces_streamed_text_and_citations_open(widget):
    h = widget()
    h.replies.append(
        sse_reply(
            ("token", {"text": "Peskov ha smentito i contatti [1]. "}),
            ("citation", CITATION),
            ("token", {"text": "Una frase che la verifica toglie [2]."}),
            ("done", answer("Peskov ha smentito i contatti [1].", [CITATION])),
        )
    )
    h.open()
    bot = h.ask("Chi ha smentito i contatti?")
    assert h.calls[0]["body"] == {"question": "Chi ha smentito i contatti?", "stream": True}
    assert h.calls[0]["headers"]["accept"] == "text/event-stream"
    assert "answer" in bot.get_attribute("class")
    assert bot.locator(".text").inner_text() == "Peskov ha smentito i contatti 1."
    assert "toglie" not in bot.inner_text()
    assert bot.locator(".sources .chip").all_inner_texts() == ["WIRED Italia"]
    marker = bot.locator(".cite")
    assert marker.get_attribute("aria-label") == "Fonte 1: WIRED Italia"
    marker.click()
    card = bot.locator(".card")
    assert card.locator(".outlet").inner_text() == "WIRED Italia"
    assert card.locator(".title").inner_text() == CITATION["title"]
    assert card.locator("blockquote").inner_text() == CITATION["quote"]
    assert card.locator("a").get_attribute("href") == CITATION["url"]
    assert card.locator("a").get_attribute("rel") == "noopener noreferrer"
    assert marker.get_attribute("aria-expanded") == "true"
    # The outlet chip opens the same card.
    bot.locator(".card .cclose").click()
    assert bot.locator(".card").count() == 0
    bot.locator(".sources .chip").click()
    assert bot.locator(".card .outlet").inner_text() == "WIRED Italia"


def test_the_final_answer_is_shown_sentence_by_sentence_with_its_markers(widget):
    h = widget()
    second = {**CITATION, "id": 2, "outlet": "Il Post", "quote": "Musk non ha commentato."}
    sentences = [
        {"text": "Peskov ha smentito i contatti [1].", "citations": [1]},
        {"text": "Musk non ha commentato.", "citations": [2]},
    ]
    text = " ".join(s["text"] for s in sentences)
    h.replies.append(sse_reply(("done", answer(text, [CITATION, second], sentences=sentences))))
    h.open()
    bot = h.ask("Chi ha smentito i contatti?")
    # Markers come from the text, or from `citations` when the sentence text has none.
    assert bot.locator(".cite").all_inner_texts() == ["1", "2"]
    assert bot.locator(".sentence").count() == 2
    assert bot.locator(".sources .chip").all_inner_texts() == ["WIRED Italia", "Il Post"]


def test_abstention_is_shown_as_such_not_as_an_error(widget):
    h = widget(attrs='data-lang="en"')
    body = answer("The articles do not say.", [])
    body["abstained"] = True
    h.replies.append(sse_reply(("done", body)))
    h.open()
    bot = h.ask("What is the recipe for carbonara?")
    assert "abstained" in bot.get_attribute("class")
    assert "error" not in bot.get_attribute("class")
    assert bot.locator(".label").inner_text() == "No answer in the sources"
    assert bot.locator(".text").inner_text() == "The articles do not say."
    assert bot.locator("[role=alert]").count() == 0


def test_article_and_model_text_is_never_parsed_as_html(widget):
    h = widget()
    # Control: in this browser the payload does run when parsed as HTML.
    h.page.evaluate(f"document.body.insertAdjacentHTML('beforeend', {json.dumps(XSS_IMG)})")
    h.page.wait_for_function("window.__xss === 1", timeout=5000)
    h = widget()
    hostile = {
        **CITATION,
        "outlet": f"Eco {XSS_IMG}",
        "title": f"Titolo {XSS_SCRIPT}",
        "quote": f"Passaggio {XSS_IMG} {XSS_SCRIPT}",
        "url": "javascript:window.__xss=3",
    }
    other = {**hostile, "id": 2, "outlet": "Altro", "url": "data:text/html,<b>x</b>"}
    text = f"Risposta {XSS_IMG} [1] e {XSS_SCRIPT} [2]."
    h.replies.append(
        sse_reply(("token", {"text": text}), ("citation", hostile), ("done", answer(text, [hostile, other])))
    )
    h.open()
    bot = h.ask("domanda")
    assert XSS_IMG in bot.locator(".text").inner_text()
    for n in (0, 1):
        bot.locator(".cite").nth(n).click()
        card = bot.locator(".card")
        assert XSS_IMG in card.inner_text() and XSS_SCRIPT in card.inner_text()
        assert card.locator("a").count() == 0  # javascript: and data: URLs get no link
    time.sleep(0.3)  # give a would-be onerror handler time to fire
    assert h.page.evaluate("window.__xss") is None
    counts = h.page.evaluate(
        "() => { const r = document.querySelector('fonti-widget').shadowRoot;"
        " return [r.querySelectorAll('img').length, r.querySelectorAll('script').length,"
        " document.querySelectorAll('img').length]; }"
    )
    assert counts == [0, 0, 0]


def test_busy_service_says_when_to_retry_and_retry_recovers(widget):
    h = widget()
    h.replies.append(
        {
            "status": 503,
            "headers": {"Retry-After": "7"},
            "content_type": "application/json",
            "body": json.dumps({"error": "busy", "detail": None}),
        }
    )
    h.replies.append(sse_reply(("done", answer("Peskov ha smentito [1].", [CITATION]))))
    h.open()
    bot = h.ask("Chi ha smentito i contatti?")
    assert "error" in bot.get_attribute("class")
    assert bot.locator("[role=alert]").inner_text() == "Fonti è occupato. Riprova tra 7 secondi."
    bot.locator(".abtn").click()
    h.page.wait_for_function(
        "() => document.querySelector('fonti-widget').shadowRoot.querySelector('.msg.bot.answer')"
    )
    assert len(h.calls) == 2 and h.calls[1]["body"] == h.calls[0]["body"]
    assert h.loc(".msg.bot").count() == 1  # the retried answer took the failed one's place


def test_stream_errors_and_cut_streams_offer_retry(widget):
    h = widget(attrs='data-lang="en"')
    h.replies.append(sse_reply(("token", {"text": "Peskov"}), ("error", {"error": "RuntimeError: boom"})))
    h.replies.append(sse_reply(("token", {"text": "Peskov ha"})))  # ends without `done`
    h.replies.append({"status": 500, "content_type": "text/plain", "body": "oops"})
    h.replies.append(
        {
            "status": 422,
            "content_type": "application/json",
            "body": json.dumps({"error": "question: too long"}),
        }
    )
    h.open()
    bot = h.ask("q1")
    assert bot.locator("[role=alert]").inner_text() == "Error while answering: RuntimeError: boom"
    assert bot.locator(".abtn").inner_text() == "Retry"
    bot = h.ask("q2")
    assert bot.locator("[role=alert]").inner_text() == "The answer was cut off. Try again."
    assert bot.locator(".text").first.inner_text() == "Peskov ha"  # the partial text stays visible
    bot = h.ask("q3")
    assert bot.locator("[role=alert]").inner_text() == "The service failed (HTTP 500). Try again."
    bot = h.ask("q4")
    assert bot.locator("[role=alert]").inner_text() == "Question refused: question: too long"
    assert bot.locator(".abtn").count() == 0  # the same question would be refused again


@contextmanager
def _asked_on(browser: Any, site: Loopback, question: str = "Chi ha smentito i contatti?") -> Iterator[Any]:
    """A page of ``site`` (which serves the widget script) with ``question`` sent; closed afterwards."""
    site.page("/widget.js", WIDGET_JS.read_text("utf-8"), "text/javascript")
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{site.port}/")
        page.locator(".launcher").click()
        page.locator("textarea").fill(question)
        page.locator("textarea").press("Enter")
        yield page
    finally:
        page.close()


def test_unreachable_service_is_reported(browser):
    port = free_port()  # nothing listens here
    with Loopback() as site:
        site.page("/", host_page(f'src="/widget.js" data-endpoint="http://127.0.0.1:{port}"'))
        with _asked_on(browser, site) as page:
            alert = page.locator(".msg.bot [role=alert]")
            alert.wait_for()
            assert alert.inner_text() == (
                f"Impossibile raggiungere Fonti (http://127.0.0.1:{port}). Controlla la connessione e riprova."
            )
            assert page.locator(".msg.bot .abtn").inner_text() == "Riprova"


def test_keyboard_focus_and_screen_reader_labels(widget):
    h = widget()
    h.replies.append(sse_reply(("done", answer("Peskov ha smentito [1].", [CITATION]))))
    launcher = h.loc(".launcher")
    assert launcher.get_attribute("aria-label") == "Apri Fonti: domande sulle notizie"
    assert launcher.get_attribute("aria-expanded") == "false"
    launcher.focus()
    h.page.keyboard.press("Enter")
    assert launcher.get_attribute("aria-expanded") == "true"
    panel = h.loc(".panel")
    assert panel.get_attribute("role") == "dialog"
    assert h.loc("#fonti-title").inner_text() == "Fonti"
    assert h.loc(".log").get_attribute("role") == "log"
    assert h.loc(".log").get_attribute("aria-live") == "polite"
    textarea = h.loc("textarea")
    assert textarea.get_attribute("aria-label") == "La tua domanda"
    assert h.page.evaluate("document.querySelector('fonti-widget').shadowRoot.activeElement.tagName") == (
        "TEXTAREA"
    )
    h.page.keyboard.type("prima riga")
    h.page.keyboard.press("Shift+Enter")
    h.page.keyboard.type("seconda")
    assert textarea.input_value() == "prima riga\nseconda"
    assert h.calls == []
    h.page.keyboard.press("Enter")
    h.page.wait_for_function(
        "() => document.querySelector('fonti-widget').shadowRoot.querySelector('.msg.bot.answer')"
    )
    assert h.calls[0]["body"]["question"] == "prima riga\nseconda"
    assert textarea.input_value() == ""
    h.loc(".cite").click()
    assert (
        h.page.evaluate("document.querySelector('fonti-widget').shadowRoot.activeElement.className") == "card"
    )
    h.page.keyboard.press("Escape")  # first Esc closes the quote, focus back on its marker
    assert h.loc(".card").count() == 0
    assert (
        h.page.evaluate("document.querySelector('fonti-widget').shadowRoot.activeElement.className") == "cite"
    )
    h.page.keyboard.press("Escape")  # then Esc closes the panel, focus back on the launcher
    assert panel.is_hidden()
    assert launcher.get_attribute("aria-expanded") == "false"
    assert h.page.evaluate("document.querySelector('fonti-widget').shadowRoot.activeElement.className") == (
        "launcher"
    )


def test_options_come_from_data_attributes(widget):
    h = widget(
        attrs='data-lang="en" data-title="Newsroom archive" data-position="bottom-left" '
        'data-accent="rgb(0, 128, 0)" data-api-key="k-123"'
    )
    h.replies.append(sse_reply(("done", answer("Peskov denied it [1].", [CITATION]))))
    launcher = h.loc(".launcher")
    assert launcher.get_attribute("aria-label") == "Open Fonti: questions about the news"
    box = launcher.bounding_box()
    assert box["x"] < 100 and box["y"] > DESKTOP["height"] - 100  # bottom-left
    assert launcher.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(0, 128, 0)"
    h.open()
    assert h.loc("#fonti-title").inner_text() == "Newsroom archive"
    assert h.loc("textarea").get_attribute("placeholder") == "Ask about the news…"
    h.ask("Who denied the contacts?")
    assert h.calls[0]["headers"]["authorization"] == "Bearer k-123"
    assert h.loc(".cite").get_attribute("aria-label") == "Source 1: WIRED Italia"


def test_language_defaults_to_the_page_and_bad_options_fall_back(widget):
    h = widget(attrs='data-position="middle" data-accent="url(javascript:alert(1))"', lang="en-GB")
    assert h.loc(".launcher").get_attribute("aria-label") == "Open Fonti: questions about the news"
    box = h.loc(".launcher").bounding_box()
    assert box["x"] > DESKTOP["width"] - 100  # the default corner, bottom-right
    assert h.loc(".launcher").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(11, 92, 173)"


def test_follow_ups_send_history_trimmed_to_the_service_limit(widget):
    h = widget()
    h.replies.append(sse_reply(("done", answer("Peskov ha smentito [1].", [CITATION]))))
    limit = {"error": "history: 2 turns, the limit is 1", "detail": {"field": "history", "limit": 1}}
    h.replies.append({"status": 422, "content_type": "application/json", "body": json.dumps(limit)})
    h.replies.append(sse_reply(("done", answer("Il 25 ottobre [1].", [CITATION]))))
    h.open()
    h.ask("Chi ha smentito i contatti?")
    bot = h.ask("Quando?")
    assert "answer" in bot.get_attribute("class")
    assert "history" not in h.calls[0]["body"]
    assert h.calls[1]["body"]["history"] == [
        {"role": "user", "content": "Chi ha smentito i contatti?"},
        {"role": "assistant", "content": "Peskov ha smentito [1]."},
    ]
    assert h.calls[2]["body"]["history"] == [{"role": "assistant", "content": "Peskov ha smentito [1]."}]
    # A new conversation forgets the history.
    h.page.locator(".hbtn", has_text="Nuova conversazione").click()
    assert h.loc(".msg").count() == 0
    h.replies.append(sse_reply(("done", answer("Peskov [1].", [CITATION]))))
    h.ask("Chi?")
    assert "history" not in h.calls[3]["body"]


def test_hostile_page_css_neither_breaks_nor_is_broken(widget):
    h = widget(head=f"<style>{HOSTILE_CSS}</style>")
    page_button = "getComputedStyle(document.getElementById('page-button'))"
    before = h.page.evaluate(f"[{page_button}.fontSize, {page_button}.display, {page_button}.width]")
    assert before[0] == "3px" and before[2] == "5px"  # the page's own rules apply to the page
    launcher = h.loc(".launcher")
    assert launcher.bounding_box()["width"] == 56
    h.replies.append(sse_reply(("done", answer("Peskov ha smentito [1].", [CITATION]))))
    h.open()
    panel = h.loc(".panel")
    box = panel.bounding_box()
    assert box["width"] == 390 and box["height"] == 600
    assert panel.evaluate("e => getComputedStyle(e).fontSize") == "14px"
    h.ask("Chi ha smentito i contatti?")
    assert h.loc(".cite").bounding_box()["height"] >= 16
    after = h.page.evaluate(f"[{page_button}.fontSize, {page_button}.display, {page_button}.width]")
    assert after == before  # and the widget's rules do not reach the page


def test_phone_width_panel_fills_the_screen(widget):
    h = widget(viewport=PHONE, is_mobile=True, has_touch=True)
    h.loc(".launcher").tap()
    box = h.loc(".panel").bounding_box()
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, PHONE["width"], PHONE["height"])
    assert h.loc("textarea").evaluate("e => getComputedStyle(e).fontSize") == "16px"  # no zoom on focus
    h.loc(".hbtn.x").tap()
    assert h.loc(".panel").is_hidden()


def _slow_answer(handler: Any, _body: bytes, chunks: list[bytes], delay: float) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Cache-Control", "no-cache")
    handler.end_headers()
    try:
        for chunk in chunks:
            handler.wfile.write(chunk)
            handler.wfile.flush()
            time.sleep(delay)
    except (BrokenPipeError, ConnectionResetError):
        handler.server.aborted = True  # type: ignore[attr-defined]


def test_stream_is_parsed_across_arbitrary_chunk_boundaries(browser):
    """SSE split every 5 bytes, mid-character and with CRLF line ends, still renders exactly."""
    text = "Così è: Peskov ha smentito «tutto» [1]."
    body = sse(
        ("token", {"text": "Così è: "}),
        ("token", {"text": "Peskov ha smentito «tutto» [1]."}),
        ("done", answer(text, [CITATION])),
    ).replace("\n", "\r\n")
    raw = body.encode("utf-8")
    chunks = [raw[i : i + 5] for i in range(0, len(raw), 5)]
    with Loopback() as site:
        site.page("/", host_page('src="/widget.js"'))
        site.handlers[("POST", "/v1/ask")] = lambda hd, b: _slow_answer(hd, b, chunks, 0.002)
        with _asked_on(browser, site) as page:
            page.locator(".msg.bot.answer").wait_for()
            assert page.locator(".msg.bot .text").inner_text() == "Così è: Peskov ha smentito «tutto» 1."


def test_text_streams_in_and_stop_keeps_the_verified_sentences_shown(browser):
    words = [f"parola{i} " for i in range(60)]
    chunks = [sse(("token", {"text": w})).encode() for w in words]
    chunks.append(sse(("done", answer("fine [1].", [CITATION]))).encode())
    with Loopback() as site:
        site.server.aborted = False  # type: ignore[attr-defined]
        site.page("/", host_page('src="/widget.js"'))
        site.handlers[("POST", "/v1/ask")] = lambda hd, b: _slow_answer(hd, b, chunks, 0.1)
        with _asked_on(browser, site) as page:
            streaming = page.locator(".msg.bot.streaming .text")
            page.wait_for_function(
                "() => { const t = document.querySelector('fonti-widget').shadowRoot"
                ".querySelector('.msg.bot.streaming .text'); return t && t.textContent.includes('parola2 '); }"
            )
            seen = streaming.inner_text()
            assert page.locator(".msg.bot").get_attribute("aria-busy") == "true"
            assert page.locator(".send").is_hidden()
            page.locator(".stop").click()
            stopped = page.locator(".msg.bot.stopped")
            stopped.wait_for()
            partial = stopped.locator(".text").inner_text()
            assert partial.startswith(seen.strip()) and "parola59" not in partial
            assert stopped.locator(".label").inner_text() == (
                "Risposta interrotta: le frasi mostrate sono verificate, la risposta è incompleta."
            )
            assert page.locator(".send").is_visible() and page.locator(".stop").is_hidden()
            assert page.evaluate(
                "document.querySelector('fonti-widget').shadowRoot.activeElement.tagName"
            ) == ("TEXTAREA")
            deadline = time.monotonic() + 10
            while not site.server.aborted and time.monotonic() < deadline:  # type: ignore[attr-defined]
                time.sleep(0.1)
            assert site.server.aborted, "the connection stayed open after Stop"  # type: ignore[attr-defined]
            assert re.search(r"parola\d+", partial)
