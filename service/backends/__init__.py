"""Backend adapters, one package each: ``llm``, ``embedder``, ``store``.

Each package has its protocol and shared types in ``base.py``, its implementations
beside it and its one factory in ``__init__.py`` (``build_generator``, ``build_embedder``,
``build_store``). The packages never import each other or the pipeline (import-linter
contracts in pyproject.toml); :mod:`~service.backends.runtime` is the process environment
the in-process models share.
"""
