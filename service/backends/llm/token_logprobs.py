"""How sure the model was of the tokens it wrote: a llama.cpp logits processor.

The answer pipeline reads these figures to tell a figure the model copied (written
with near certainty) from one it guessed (see :mod:`service.pipeline.confidence`).
Only tokens that hold a digit get a log-probability: the log-sum-exp over the whole
vocabulary costs ~0.5 ms, and only figures are checked.
"""

from __future__ import annotations

from typing import Any


class TokenLogprobs:
    """Records each sampled token and, for tokens holding a digit, its log-probability.

    llama-cpp-python calls a logits processor with the input ids and the logits of the
    next token, before sampling it; the token sampled after one call is the last input
    id of the next. The logits are copied each step (a memcpy) because the buffer is
    reused; the normalisation is computed only when the sampled token holds a digit.
    The last token sampled is never seen (no call follows it): it is not recorded.
    """

    def __init__(self, llm: Any):
        self._llm = llm
        # A candidate list shorter than the vocabulary is not indexed by token id: not read.
        self._n_vocab = int(llm.n_vocab())
        self._logits: Any = None
        self.tokens: list[tuple[int, float]] = []
        self._pieces: dict[int, str] = {}

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        # ctypes swallows an exception raised here: whatever happens, keep this step's
        # logits, so a failure cannot shift every later probability by one token.
        try:
            if self._logits is not None:
                token = int(input_ids[-1])
                holds_digit = any(c.isdigit() for c in self.piece(token))
                self.tokens.append((token, self._logprob(token) if holds_digit else 0.0))
        finally:
            self._logits = scores.copy() if len(scores) == self._n_vocab else None
        return scores

    def _logprob(self, token: int) -> float:
        import numpy as np

        logits = self._logits.astype(np.float64)
        top = logits.max()
        return float(logits[token] - top - np.log(np.exp(logits - top).sum()))

    def piece(self, token: int) -> str:
        """The text of one token (a multi-byte character split across tokens shows as U+FFFD)."""
        if token not in self._pieces:
            self._pieces[token] = bytes(self._llm.detokenize([token])).decode("utf-8", "replace")
        return self._pieces[token]

    def pieces(self) -> list[tuple[str, float]]:
        """The generated text as (piece, log-probability) pairs; 0.0 for pieces without a digit."""
        return [(self.piece(t), lp) for t, lp in self.tokens]
