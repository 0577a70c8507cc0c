"""What the model considered at each step of a reply: a llama.cpp logits processor.

The answer pipeline reads these distributions as evidence signals (how likely the model
thought "NONE" or each passage number was; see :mod:`service.pipeline.evidence`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.backends.llm.base import TokenStep


class TopLogprobs:
    """Records, at every step, the ``k`` likeliest next pieces with their log-probabilities.

    llama-cpp-python calls a logits processor with the input ids and the logits of the
    next token, before sampling it (and before any grammar), so each call sees one step;
    the piece sampled at a step is the last input id of the next call. The last step's
    piece is never seen that way: :meth:`steps` takes it from ``last`` when given, else
    from the step's likeliest piece.
    """

    def __init__(self, llm: Any, k: int):
        self._llm = llm
        self._k = max(1, k)
        self._n_vocab = int(llm.n_vocab())
        self._tops: list[dict[str, float]] = []
        self._sampled: list[int] = []
        self._pieces: dict[int, str] = {}

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        # ctypes swallows an exception raised here; a failure must not break the reply.
        try:
            if self._tops:
                self._sampled.append(int(input_ids[-1]))
            if len(scores) == self._n_vocab:
                logits = np.asarray(scores, dtype=np.float64)
                top = np.argpartition(logits, -self._k)[-self._k :]
                peak = logits.max()
                norm = peak + np.log(np.exp(logits - peak).sum())
                step: dict[str, float] = {}
                for t in top:
                    piece = self.piece(int(t))
                    step[piece] = max(step.get(piece, float("-inf")), float(logits[t] - norm))
                self._tops.append(step)
        except Exception:  # pragma: no cover - defensive: keep generating
            pass
        return scores

    def piece(self, token: int) -> str:
        """The text of one token (a multi-byte character split across tokens shows as U+FFFD)."""
        if token not in self._pieces:
            self._pieces[token] = bytes(self._llm.detokenize([token])).decode("utf-8", "replace")
        return self._pieces[token]

    def steps(self, last: str | None = None) -> list[TokenStep]:
        """One :class:`TokenStep` per step seen."""
        out = []
        for i, top in enumerate(self._tops):
            if i < len(self._sampled):
                piece = self.piece(self._sampled[i])
            elif last is not None:
                piece = last
            else:
                piece = max(top, key=lambda p: top[p]) if top else ""
            out.append(TokenStep(piece, top))
        return out
