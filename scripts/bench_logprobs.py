"""Decode speed with and without the top-log-probability recorder, same process, same prompt.

The evidence read asks the backend for each step's likeliest pieces (``top_logprobs``):
llama.cpp then runs a logits processor, a Python call per token that normalises the
logits and picks the top 40. This measures what that costs per token: the same messages
generated greedily with the recorder off and on, alternating, the prompt cached after the
first run so the decode dominates. Prints decode tokens/s per mode, their medians and the
ratio (on/off). The evidence read records two steps; answers record none.

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
        for on in (False, True) if r % 2 == 0 else (True, False):
            stats = GenerationStats()
            top = 40 if on else 0
            "".join(generator.stream(MESSAGES, max_tokens=args.max_tokens, stats=stats, top_logprobs=top))
            decode_s = stats.total_s - (stats.first_token_s or 0.0)
            rate = (stats.completion_tokens - 1) / decode_s
            rates[on].append(rate)
            print(
                f"round {r + 1} recorder {'on ' if on else 'off'}: {stats.completion_tokens} tokens, "
                f"{len(stats.steps)} steps recorded, {rate:.1f} tokens/s"
            )
    off, on_rate = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"median decode tokens/s: off {off:.2f}, on {on_rate:.2f}; ratio on/off {on_rate / off:.3f}")
    per_token = recorder_cost(generator._llm)  # type: ignore[attr-defined]
    print(
        f"recorder call: {per_token * 1000:.2f} ms per token; decode {1000 / off:.1f} ms per token "
        f"(the call's share: {per_token * off:.2%})"
    )


def recorder_cost(llm: object, calls: int = 200) -> float:
    """Seconds per recorder call on vocabulary-sized logits."""
    import time

    import numpy as np

    from service.backends.llm.token_logprobs import TopLogprobs

    n_vocab = llm.n_vocab()  # type: ignore[attr-defined]
    scores = np.random.default_rng(0).normal(size=n_vocab).astype(np.float32)
    recorder = TopLogprobs(llm, 40)
    ids = np.array([1, 2])
    start = time.perf_counter()
    for _ in range(calls):
        recorder(ids, scores)
    return (time.perf_counter() - start) / calls


if __name__ == "__main__":
    main()
