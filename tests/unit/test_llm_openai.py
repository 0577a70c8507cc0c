"""Unit tests of the openai backend's protocol logic: retries, backoff, SSE parsing, cancellation.

The upstream is an ``httpx.MockTransport`` scripted per test (pure logic: which
request is sent, what is retried, when the stream is closed). The user path against a
real server is tests/integration/test_llm_server.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from service.backends.llm import GenerationStats, LLMUnavailableError
from service.backends.llm.openai import OpenAIGenerator
from service.settings import LLMSettings

MESSAGES = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]


def sse(*deltas: str, done: bool = True) -> bytes:
    events = [": ping\n\n"]
    for d in deltas:
        chunk = {"choices": [{"index": 0, "delta": {"content": d}, "finish_reason": None}]}
        events.append(f"data: {json.dumps(chunk)}\n\n")
    if done:
        events.append("data: [DONE]\n\n")
    return "".join(events).encode()


class Upstream:
    """A scripted server: each POST /chat/completions takes the next response from the script."""

    def __init__(self, script: list[Callable[[httpx.Request], httpx.Response]]):
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"object": "list", "data": [{"id": "served-model"}]})
        return self.script.pop(0)(request)


def generator(upstream: Upstream, **settings: object) -> tuple[OpenAIGenerator, list[float]]:
    sleeps: list[float] = []
    s = LLMSettings(backend="openai", base_url="http://llm.test/v1", **settings)  # type: ignore[arg-type]
    return OpenAIGenerator(s, None, transport=httpx.MockTransport(upstream), sleep=sleeps.append), sleeps


def status(code: int, headers: dict[str, str] | None = None) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(code, headers=headers, text=f"status {code}")


def stream(*deltas: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse(*deltas))


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def test_request_carries_sampling_model_key_and_extra_body():
    up = Upstream([stream("Ciao", " mondo")])
    gen, _ = generator(up, api_key="k3y", temperature=0.0, seed=7, extra_body={"repeat_penalty": 1.0})
    stats = GenerationStats()
    assert "".join(gen.stream(MESSAGES, max_tokens=33, stats=stats)) == "Ciao mondo"  # type: ignore[arg-type]
    post = up.requests[-1]
    assert str(post.url) == "http://llm.test/v1/chat/completions"
    assert post.headers["authorization"] == "Bearer k3y"
    body = json.loads(post.content)
    assert body == {
        "model": "served-model",  # FONTI_LLM_MODEL empty: the first model the server lists
        "messages": MESSAGES,
        "max_tokens": 33,
        "temperature": 0.0,
        "seed": 7,
        "stream": True,
        "repeat_penalty": 1.0,
    }
    assert stats.completion_tokens == 2 and stats.first_token_s is not None


def test_429_and_5xx_are_retried_with_backoff_and_retry_after():
    up = Upstream([status(503), status(429, {"Retry-After": "2"}), status(502), stream("ok")])
    gen, sleeps = generator(up, model="m", max_retries=3, retry_backoff=0.5)
    assert list(gen.stream(MESSAGES, max_tokens=16)) == ["ok"]  # type: ignore[arg-type]
    assert sleeps == [0.5, 2.0, 2.0]  # backoff, Retry-After, backoff doubled twice
    assert gen.retries == 3


def test_connection_errors_give_up_after_max_retries_naming_the_server():
    up = Upstream([refused] * 4)
    gen, sleeps = generator(up, model="m", max_retries=3, retry_backoff=0.25)
    with pytest.raises(LLMUnavailableError, match=r"failed 4 times.*llm\.test"):
        list(gen.stream(MESSAGES, max_tokens=16))  # type: ignore[arg-type]
    assert sleeps == [0.25, 0.5, 1.0]
    assert not up.script


def test_client_errors_are_not_retried():
    up = Upstream([status(400), stream("never")])
    gen, sleeps = generator(up, model="m")
    with pytest.raises(LLMUnavailableError, match="answered 400"):
        list(gen.stream(MESSAGES, max_tokens=16))  # type: ignore[arg-type]
    assert sleeps == [] and len(up.script) == 1


class BreakingStream(httpx.SyncByteStream):
    """Sends some events, then the connection drops."""

    def __init__(self, body: bytes):
        self.body = body
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield self.body
        raise httpx.RemoteProtocolError("peer closed connection")

    def close(self) -> None:
        self.closed = True


def test_failure_after_the_first_token_is_not_retried():
    broken = BreakingStream(sse("Peskov", done=False))
    up = Upstream([lambda _: httpx.Response(200, stream=broken), stream("again")])
    gen, sleeps = generator(up, model="m")
    out = []
    with pytest.raises(LLMUnavailableError, match="mid-answer"):
        for delta in gen.stream(MESSAGES, max_tokens=16):  # type: ignore[arg-type]
            out.append(delta)
    assert out == ["Peskov"] and sleeps == [] and broken.closed


def test_failure_before_the_first_token_is_retried():
    broken = BreakingStream(b": ping\n\n")
    up = Upstream([lambda _: httpx.Response(200, stream=broken), stream("ok")])
    gen, sleeps = generator(up, model="m")
    assert list(gen.stream(MESSAGES, max_tokens=16)) == ["ok"]  # type: ignore[arg-type]
    assert len(sleeps) == 1 and broken.closed


class EndlessStream(httpx.SyncByteStream):
    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        while not self.closed:
            yield sse("tok", done=False)

    def close(self) -> None:
        self.closed = True


def test_closing_the_iterator_closes_the_upstream_stream():
    endless = EndlessStream()
    gen, _ = generator(Upstream([lambda _: httpx.Response(200, stream=endless)]), model="m")
    it = gen.stream(MESSAGES, max_tokens=1000)  # type: ignore[arg-type]
    assert next(it) == "tok"
    assert gen.load.active == 1
    it.close()  # what Fonti does when its client goes away
    assert endless.closed and gen.load.active == 0


def test_a_server_that_ignores_stream_still_answers():
    reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Tutto [1]."}}]}
    gen, _ = generator(Upstream([lambda _: httpx.Response(200, json=reply)]), model="m")
    assert list(gen.stream(MESSAGES, max_tokens=16)) == ["Tutto [1]."]  # type: ignore[arg-type]


def test_readiness_names_the_server_that_does_not_answer():
    gen, _ = generator(Upstream([]))
    assert gen.check_ready() is None
    down = OpenAIGenerator(
        LLMSettings(backend="openai", base_url="http://llm.test/v1"),
        None,
        transport=httpx.MockTransport(lambda r: refused(r)),
    )
    problem = down.check_ready()
    assert problem is not None and "llm.test/v1/models" in problem and "ConnectError" in problem


def test_token_count_without_a_vocabulary_is_a_conservative_estimate():
    gen, _ = generator(Upstream([]))
    text = "Il portavoce del Cremlino Dmitry Peskov ha smentito i contatti. " * 4
    assert gen.count_tokens(text) >= len(text) / 4


def logprob_chunk(content: str, *tokens: object) -> str:
    chunk = {"choices": [{"index": 0, "delta": {"content": content}, "logprobs": {"content": list(tokens)}}]}
    return f"data: {json.dumps(chunk)}\n\n"


def test_token_log_probabilities_are_asked_for_and_read_when_configured():
    top = [{"token": " [", "logprob": -0.2}, {"token": " NONE", "logprob": -1.8}]
    body = (
        logprob_chunk("Evidence:", {"token": "Evidence", "logprob": -0.01}, {"token": ":", "logprob": -0.02})
        + logprob_chunk(
            " [2", {"token": " [", "logprob": -0.2, "top_logprobs": top}, {"token": "2", "logprob": -0.6}
        )
        + logprob_chunk("]", {"token": "]", "logprob": None}, "junk")
        + "data: [DONE]\n\n"
    ).encode()
    headers = {"content-type": "text/event-stream"}
    up = Upstream([lambda _: httpx.Response(200, headers=headers, content=body)] * 3)
    gen, _ = generator(up, logprobs=True)
    stats = GenerationStats()
    deltas = gen.stream(MESSAGES, max_tokens=8, stats=stats, top_logprobs=40)  # type: ignore[arg-type]
    assert "".join(deltas) == "Evidence: [2]"
    sent = json.loads(up.requests[-1].content)
    assert sent["logprobs"] is True and sent["top_logprobs"] == 20  # the API's most
    assert [s.piece for s in stats.steps] == ["Evidence", ":", " [", "2"]  # malformed entries skipped
    assert stats.steps[2].top == {" [": -0.2, " NONE": -1.8}
    assert stats.steps[3].top == {"2": -0.6}  # a step always lists its own token
    "".join(gen.stream(MESSAGES, max_tokens=8))  # type: ignore[arg-type]  # not asked (a rewrite, a warm-up)
    assert "logprobs" not in json.loads(up.requests[-1].content)
    plain, _ = generator(up)  # off by default: the field is not sent
    "".join(plain.stream(MESSAGES, max_tokens=8, top_logprobs=40))  # type: ignore[arg-type]
    assert "logprobs" not in json.loads(up.requests[-1].content)


def test_grammars_are_sent_only_to_a_server_configured_for_them():
    body = (
        "data: " + json.dumps({"choices": [{"delta": {"content": " [1]"}}]}) + "\n\ndata: [DONE]\n\n"
    ).encode()
    headers = {"content-type": "text/event-stream"}
    up = Upstream([lambda _: httpx.Response(200, headers=headers, content=body)] * 2)
    plain, _ = generator(up)
    "".join(plain.stream(MESSAGES, max_tokens=4, grammar='root ::= " [1]"'))  # type: ignore[arg-type]
    assert not plain.constrains and "grammar" not in json.loads(up.requests[-1].content)
    gbnf, _ = generator(up, grammar=True)
    "".join(gbnf.stream(MESSAGES, max_tokens=4, grammar='root ::= " [1]"'))  # type: ignore[arg-type]
    assert gbnf.constrains and json.loads(up.requests[-1].content)["grammar"] == 'root ::= " [1]"'
