"""The prompt cache's prefix arithmetic (pure); the real model's cache is tested in
tests/integration/test_llm_cache.py."""

from __future__ import annotations

from service.backends.llm.llama_cpp import reusable_prefix


def test_reusable_prefix_mirrors_llama_cpp():
    assert reusable_prefix([1, 2, 3, 9], [1, 2, 3, 4, 5]) == 3
    assert reusable_prefix([1, 2, 3, 4, 5, 6], [1, 2, 3]) == 2  # all cached: the last one is recomputed
    assert reusable_prefix([1, 2, 3], [1, 2, 3]) == 2
    assert reusable_prefix([], [1, 2]) == 0
    assert reusable_prefix([5], [1]) == 0
