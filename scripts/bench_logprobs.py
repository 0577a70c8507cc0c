"""Decode speed with and without the token log-probability recorder, same process, same prompt.

The guessed-figure check (FONTI_ANSWER_MIN_FIGURE_CONFIDENCE) installs a llama.cpp
logits processor on answer generations: a Python call per token that copies the
logits and, for digit tokens, normalises them. This measures what it costs: the same
messages generated greedily with ``logprobs`` off and on, alternating, the prompt
cached after the first run so the decode dominates. Prints decode tokens/s per mode,
their medians and the ratio (on/off).

    python scripts/bench_logprobs.py [--rounds 4] [--max-tokens 160]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MESSAGES = [
    {
        "role": "user",
        "content": "Scrivi un resoconto di dieci frasi su un'alluvione immaginaria: date, ore, numero di "
        "vittime, comuni colpiti, sfollati, millimetri di pioggia e stime dei danni in euro.",
    }
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=160)
    args = parser.parse_args()

    from service.backends.llm import GenerationStats, build_generator
    from service.settings import Settings

    settings = Settings()
    generator = build_generator(settings.llm, settings.models_dir)
    "".join(generator.stream(MESSAGES, max_tokens=4))  # the prompt into the KV cache
    rates: dict[bool, list[float]] = {False: [], True: []}
    for r in range(args.rounds):
        for logprobs in (False, True) if r % 2 == 0 else (True, False):
            stats = GenerationStats()
            "".join(generator.stream(MESSAGES, max_tokens=args.max_tokens, stats=stats, logprobs=logprobs))
            decode_s = stats.total_s - (stats.first_token_s or 0.0)
            rate = (stats.completion_tokens - 1) / decode_s
            rates[logprobs].append(rate)
            digits = sum(any(c.isdigit() for c in p) for p, _ in stats.token_logprobs)
            print(
                f"round {r + 1} logprobs {'on ' if logprobs else 'off'}: {stats.completion_tokens} tokens "
                f"({digits} with a digit), {rate:.1f} tokens/s"
            )
    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"median decode tokens/s: off {off:.2f}, on {on:.2f}; ratio on/off {on / off:.3f}")
    per_token, per_digit = recorder_cost(generator._llm)
    print(
        f"recorder call: {per_token * 1000:.2f} ms per token, {per_digit * 1000:.2f} ms per digit token; "
        f"decode {1000 / off:.1f} ms per token (the call's share: {per_token * off:.2%})"
    )


def recorder_cost(llm: object, calls: int = 200) -> tuple[float, float]:
    """Seconds per recorder call on vocabulary-sized logits: a word token, a digit token."""
    import time

    import numpy as np

    from service.backends.llm.token_logprobs import TokenLogprobs

    n_vocab = llm.n_vocab()  # type: ignore[attr-defined]
    scores = np.random.default_rng(0).normal(size=n_vocab).astype(np.float32)
    word, digit = (llm.tokenize(t.encode(), add_bos=False)[0] for t in (" ponte", "7"))  # type: ignore[attr-defined]
    out = []
    for token in (word, digit):
        recorder = TokenLogprobs(llm)
        recorder(np.array([1]), scores)
        ids = np.array([1, token])
        start = time.perf_counter()
        for _ in range(calls):
            recorder(ids, scores)
        out.append((time.perf_counter() - start) / calls)
    return out[0], out[1]


if __name__ == "__main__":
    main()
