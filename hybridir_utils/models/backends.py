"""Faster CPU inference for sentence-transformers encoders: token-length batching and quantised backends.

Two independent levers, both behind :func:`models.load_encoder` arguments:

- **Token-length batching** (``token_batching=True``, default): sentence-transformers sorts a call's texts by
  *character* count before batching, a poor proxy for tokens across scripts (a 30-character Chinese sentence can be
  longer in tokens than a 100-character English one), so mixed-language batches pad to their longest member. On
  mixed en/de/zh XQuAD-R sentences at batch 64 only 45% of the computed positions are real tokens; sorting by
  token count raises that to 74% (93% at batch 16). Only the batch composition changes, so the embeddings equal
  the unsorted ones up to float rounding and the encoder keeps its fingerprint (and its embedding cache).
- **Tokenised batches reused** (:func:`reused_features`, around the project's encode): the next model with the
  same tokenizer encoding the same texts (every system of a grid) gets the batches' features without tokenising.
- **Backends** (``backend=``): ``"torch"`` (the model as loaded); ``"onnx"`` (exported to ONNX, attention / GELU /
  LayerNorm fused by ONNX Runtime's transformer optimizer, fp32: the same embeddings as torch to ~1e-6, faster,
  and much less hurt than torch by other jobs competing for the cores); ``"onnx-int8"`` (that graph with ONNX
  Runtime's dynamic int8 quantisation of every MatMul / Attention weight: per-channel, reduced range because AVX2
  CPUs without VNNI saturate the full u8*s8 range); ``"torch-int8"`` (``torch.ao`` dynamic int8 quantisation of the
  ``nn.Linear`` layers, no export needed, ``torch.ao.quantization`` is deprecated).

  int8 costs accuracy (measured: docs/performance.md): ``onnx-int8`` is faster than ``onnx`` but loses
  multilingual and cross-lingual mAP (per-tensor quantisation of the activations perturbs the cross-language score
  scale); keeping the attention-output and FFN-output layers in fp32 still lost some for a smaller gain, and
  weight-only block quantisation (MatMulNBits) kept the mAP but was no faster than fp32 on AVX2. ``torch-int8`` is
  slower than ``onnx-int8`` and loses more. Dynamic quantisation also takes its activation scales from each batch,
  so an int8 embedding depends on the texts it was batched with. So only ``"onnx"`` keeps the numbers; the int8
  backends are opt-in for rough, fast passes.

sentence-transformers' own ``backend="onnx"`` needs ``optimum.onnxruntime``: the installed optimum 1.17 does not
import with transformers 5, and ``optimum-onnx`` 0.1 requires transformers < 4.58, so the export is done here with
``torch.onnx`` and ``onnxruntime`` directly. The ONNX graph replaces only the Hugging Face model *inside* the
sentence-transformers ``Transformer`` module, so tokenisation, prompts, pooling, normalisation and ``encode``
stay sentence-transformers' own. Exported graphs are built once per source model and kept under
``paths.models_dir()/onnx/``; a self-check against the torch model refuses a graph that does not reproduce it.

A converted encoder carries ``hybridir_backend`` and ``hybridir_backend_id`` (the source model's fingerprint, the
backend, its settings and library versions); :func:`models.fingerprints.fingerprint` hashes the latter, so every
backend has its own embedding cache. Backends are for inference only: train the torch model.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hybridir_utils.errors import BackendError
from hybridir_utils.models.fingerprints import fingerprint
from hybridir_utils.utils import atomic, paths

__all__ = [
    "BACKENDS",
    "BackendError",
    "OnnxTransformer",
    "apply_backend",
    "check_backend",
    "forget_features",
    "onnx_model_path",
    "reused_features",
    "token_length_batching",
]

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "onnx-int8", "torch-int8")
_ONNX_FILE = "model.onnx"
_OPSET = 17
# int8 settings (see the module docstring for why); part of the backend id, so changing them re-keys the cache.
_INT8_OPTIONS = {"per_channel": True, "reduce_range": True, "op_types": ["MatMul", "Attention"], "weights": "int8"}
# Self-check: the fp32 graph must match torch to rounding; int8 must stay close (typical mean cosine 0.996).
_MIN_COSINE = {"onnx": 0.9999, "onnx-int8": 0.98}
_PROBES = (
    "passage: The Amazon rainforest covers much of the Amazon basin of South America.",
    "query: 亚马逊雨林位于哪里？",
    "passage: Die Universität wurde im Jahr 1636 gegründet und ist die älteste Hochschule der Vereinigten Staaten.",
    "query: ok",
)


def check_backend(backend: str) -> str:
    """``backend`` if it is one of :data:`BACKENDS`, else a BackendError naming it."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown encoder backend {backend!r}; choose one of {BACKENDS}")
    return backend


# ---------------------------------------------------------------------------------------------- batching


def token_length_batching(model):
    """Make ``model.encode`` sort texts by token count instead of character count (module docstring).

    sentence-transformers asks ``self._input_length(text)`` for the sort key of every input; an instance attribute
    overrides its static method. Non-text inputs keep the library's own estimate. Returns ``model``.
    """
    tokenizer = getattr(model, "tokenizer", None)
    original = getattr(type(model), "_input_length", None)
    if tokenizer is None or original is None:
        log.info("token-length batching unavailable for %s (no tokenizer or sort hook)", type(model).__name__)
        return model

    lengths = _length_memo(tokenizer)

    def _input_length(sample) -> int:
        if not isinstance(sample, str):
            return original(sample)
        n = lengths.get(sample)
        if n is None:
            if len(lengths) >= _MEMO_TEXTS:  # a corpus larger than this: keep memory bounded, start again
                lengths.clear()
            n = lengths[sample] = len(tokenizer(sample, add_special_tokens=False, verbose=False)["input_ids"])
        return n

    model._input_length = _input_length
    return model


_MEMO_TEXTS = 200_000  # texts whose token count one tokenizer's memo keeps (the strings stay alive with it)
_LENGTHS: dict[str, dict[str, int]] = {}  # token counts per tokenizer (the xxh3 of its serialised form)


def _length_memo(tokenizer) -> dict[str, int]:
    """Token counts already computed in this process with an identical tokenizer: every system of a grid (31 on
    the GPU profile) encodes the same 26,104 test texts, and counting their tokens one text at a time costs a CPU core
    seconds per system. A count depends only on the tokenizer's definition and the text, so models loaded from
    different folders with the same tokenizer share one memo (hashing its definition is cheap next to counting). A
    tokenizer without a serialisable definition gets a memo of its own."""
    key = _tokenizer_key(tokenizer)
    return {} if key is None else _LENGTHS.setdefault(key, {})


class _FeatureMemo:
    """Tokenised batches of one tokenizer definition, bounded by the number of texts they hold."""

    def __init__(self) -> None:
        self.batches: dict[tuple, dict] = {}
        self.n_texts = 0


# what shapes a batch's features beside the tokenizer's definition: the input module's settings, and the
# tokenizer's padding and outputs, which transformers applies on every call from attributes outside its definition
_SETTINGS = ("max_seq_length", "do_lower_case", "processing_kwargs", "transformer_task", "modality_config")
_TOKENIZER_SETTINGS = ("padding_side", "truncation_side", "pad_token_id", "model_input_names")
_FEATURES: dict[str, _FeatureMemo] = {}  # tokenised encode batches per tokenizer (the xxh3 of its serialised form)


@contextlib.contextmanager
def reused_features(model):
    """While inside, ``model.encode`` reuses the tokenised features of any batch an identical tokenizer (same cut-off,
    same prompt) already tokenised in this process, and keeps the ones it makes.

    Every system of a grid encodes the same test texts in the same token-sorted order, so its batches are the same
    texts every time: tokenising XQuAD-R's 26,104 texts costs one CPU core seconds per system (``bench device``
    times it), while a GPU encodes them in a fraction of that. Features are reused
    only under ``torch.inference_mode`` (as ``encode`` runs), never for training batches, and each caller gets its
    own copy (``encode`` adds outputs to the dict, and on a CPU the model reads the very tensors), so the embeddings
    are the ones tokenising again gives. A model that is not a sentence-transformers model with a serialisable
    tokenizer encodes as it always does. The hook is removed on exit, so copies and saves of the model never carry it.
    """
    first = model[0] if isinstance(model, torch.nn.Sequential) and len(model) else None
    tokenizer_key = _tokenizer_key(getattr(model, "tokenizer", None))
    if first is None or tokenizer_key is None or not callable(getattr(model, "preprocess", None)):
        yield model
        return
    memo = _FEATURES.setdefault(tokenizer_key, _FeatureMemo())
    tokenizer = model.tokenizer
    setting = (type(first).__name__, repr(getattr(getattr(first, "config", None), "model_type", None)),
               *(repr(getattr(first, name, None)) for name in _SETTINGS),
               *(repr(getattr(tokenizer, name, None)) for name in _TOKENIZER_SETTINGS))  # fmt: skip
    original, had_own = model.preprocess, "preprocess" in vars(model)

    def preprocess(inputs, prompt=None, **kwargs):
        if kwargs or not torch.is_inference_mode_enabled() or not all(isinstance(x, str) for x in inputs):
            return original(inputs, prompt=prompt, **kwargs)
        key = (setting, prompt, tuple(inputs))
        features = memo.batches.get(key)
        if features is None:
            if memo.n_texts + len(inputs) > _MEMO_TEXTS:  # a corpus larger than this: keep memory bounded
                memo.batches.clear()
                memo.n_texts = 0
            # a plain dict of the outputs: the BatchEncoding would also keep the tokenizer's per-text encodings
            features = memo.batches[key] = dict(original(inputs, prompt=prompt))
            memo.n_texts += len(inputs)
        return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in features.items()}

    model.preprocess = preprocess
    try:
        yield model
    finally:
        if had_own:
            model.preprocess = original
        else:
            del model.preprocess


def forget_features() -> None:
    """Empty the memo of :func:`reused_features`: a benchmark timing one system's encode starts from it."""
    _FEATURES.clear()


def _tokenizer_key(tokenizer) -> str | None:
    """The xxh3 of a tokenizer's serialised definition, or None when it has none.

    The serialisation opens with the truncation and padding of the tokenizer's last call (transformers sets them on
    every call), so that head is left out: a tokenizer keeps its key once it has been used.
    """
    import xxhash

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not hasattr(backend, "to_str"):
        return None
    text = backend.to_str()
    head, found, rest = text.partition(',"added_tokens":')
    return xxhash.xxh3_64_hexdigest((rest if found and '"truncation":' in head else text).encode())


# ---------------------------------------------------------------------------------------------- backends


def apply_backend(model, backend: str, *, threads: int | None = None, source_fingerprint: str | None = None):
    """Convert a loaded SentenceTransformer to ``backend`` in place and return it (``"torch"``: unchanged).

    ``threads`` sets ONNX Runtime's intra-op threads (default: ``torch.get_num_threads()``, so one setting governs
    both). ``source_fingerprint`` saves rehashing the weights when the caller already has it.
    """
    check_backend(backend)
    if backend == "torch":
        return model
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "tokenizer"):
        raise BackendError(f"backend {backend!r} needs a sentence-transformers model, got {type(model).__name__}")
    if getattr(model, "hybridir_backend", "torch") != "torch":
        raise BackendError(f"model is already converted to {model.hybridir_backend!r}; load it afresh")
    if model.device.type != "cpu":
        raise BackendError(f"backend {backend!r} runs on the CPU; the model is on {model.device} (use 'torch' there)")
    source = source_fingerprint or fingerprint(model)
    if backend == "torch-int8":
        backend_id = _quantize_torch(model)
    else:
        path = onnx_model_path(model, backend, source_fingerprint=source)
        model[0].model = OnnxTransformer(path, _backbone(model).config, threads)
        backend_id = {"onnxruntime": _ort_version(), **({"int8": _INT8_OPTIONS} if backend == "onnx-int8" else {})}
    model.eval()
    model.hybridir_backend = backend
    model.hybridir_backend_id = {"backend": backend, "source": source, **backend_id}
    return model


def _backbone(model):
    backbone = getattr(model[0], "model", None)
    if backbone is None or not hasattr(backbone, "config"):
        raise BackendError(f"cannot find a Hugging Face model in the first module {type(model[0]).__name__}")
    return backbone


def _quantize_torch(model) -> dict[str, Any]:
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao on every call
        warnings.simplefilter("ignore")
        quantize_dynamic(_backbone(model), {torch.nn.Linear: per_channel_dynamic_qconfig}, inplace=True)
    return {"torch": torch.__version__, "engine": torch.backends.quantized.engine, "int8": "per-channel Linear"}


def _ort_version() -> str:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendError("the onnx backends need the onnxruntime package (pip install onnxruntime)") from exc
    return onnxruntime.__version__


class _HiddenStates:
    """The slice of a transformers model output that sentence-transformers reads (item or attribute access)."""

    def __init__(self, last_hidden_state) -> None:
        self.last_hidden_state = last_hidden_state

    def __getitem__(self, key: str):
        if key != "last_hidden_state":
            raise KeyError(key)
        return self.last_hidden_state

    def __contains__(self, key: str) -> bool:
        return key == "last_hidden_state"


class OnnxTransformer(torch.nn.Module):
    """Stands in for the Hugging Face model inside a sentence-transformers ``Transformer``: same call, ONNX Runtime.

    Takes ``input_ids`` and ``attention_mask`` (token type ids are all zero for single texts and baked into the
    graph), returns ``last_hidden_state`` as a torch tensor. Holds no parameters; a non-persistent empty buffer
    lets ``SentenceTransformer.device`` resolve.
    """

    def __init__(self, path: str | Path, hf_config, threads: int | None = None) -> None:
        import onnxruntime as ort

        super().__init__()
        self.config = hf_config
        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        # Busy-waiting worker threads would steal cores from the other jobs on a shared CPU.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.register_buffer("_device_anchor", torch.zeros(0), persistent=False)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, **kwargs):
        if token_type_ids is not None and bool(token_type_ids.any()):
            raise BackendError("the ONNX backend encodes single texts only (got non-zero token_type_ids)")
        ids = input_ids.detach().cpu().numpy().astype(np.int64, copy=False)
        mask = np.ones_like(ids) if attention_mask is None else attention_mask.detach().cpu().numpy()
        (hidden,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask.astype(np.int64, copy=False)})
        return _HiddenStates(torch.from_numpy(hidden))

    def __deepcopy__(self, memo):
        # InferenceSession cannot be copied; a new session on the same (immutable) file is equivalent.
        threads = self.session.get_session_options().intra_op_num_threads
        return OnnxTransformer(self.path, self.config, threads)

    def extra_repr(self) -> str:
        return f"path={self.path}"


# ---------------------------------------------------------------------------------------------- ONNX export


def onnx_model_path(model, backend: str, *, source_fingerprint: str | None = None) -> Path:
    """The ONNX graph of ``model`` for ``backend`` ("onnx" | "onnx-int8"), exported on first use (about a minute).

    Kept under ``paths.models_dir()/onnx/<source fingerprint>-<backend>-ort<version>/`` and written atomically,
    so concurrent first uses cannot leave half a graph.
    """
    if backend not in ("onnx", "onnx-int8"):
        raise BackendError(f"{backend!r} is not an ONNX backend (onnx, onnx-int8)")
    source = source_fingerprint or fingerprint(model)
    target = paths.models_dir() / "onnx" / f"{source}-{backend}-ort{_ort_version()}"
    if (target / _ONNX_FILE).is_file():
        return target / _ONNX_FILE
    tmp = target.parent / f".{target.name}.tmp-{time.time_ns()}"
    tmp.mkdir(parents=True)
    try:
        log.info("exporting %s to ONNX (%s) into %s (one-time)", source, backend, target)
        start = time.perf_counter()
        report = _export(model, tmp, quantize=backend == "onnx-int8")
        report.update(source=source, backend=backend, seconds=round(time.perf_counter() - start, 1))
        if report["min_cosine"] < _MIN_COSINE[backend]:
            raise BackendError(
                f"ONNX export of {source} ({backend}) does not reproduce the torch model: cosine "
                f"{report['min_cosine']:.5f} < {_MIN_COSINE[backend]} on the probe sentences"
            )
        atomic.write_json(tmp / "export.json", report)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / _ONNX_FILE).is_file():  # not a concurrent build that finished first
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target / _ONNX_FILE


def _export(model, folder: Path, quantize: bool) -> dict[str, Any]:
    """Export the backbone, fuse it, optionally quantise it, and compare with torch on the probe sentences."""
    import copy

    backbone = copy.deepcopy(_backbone(model)).eval()
    # The fuser recognises the eager attention pattern, not the SDPA one (12 fused Attention nodes vs 0).
    backbone.set_attn_implementation("eager")
    raw = _trace(backbone, folder / "raw.onnx")
    backbone.eval()  # export restores the module's training flag: a freshly loaded model is in train mode (dropout)
    fused = _fuse(raw, backbone.config)
    stats = {k: v for k, v in fused.get_fused_operator_statistics().items() if v}
    out = folder / _ONNX_FILE
    if quantize:
        _quantize(fused, folder / "fused.onnx", out)
    else:
        fused.save_model_to_file(str(out))
    raw.unlink()
    return {"fused_operators": stats, "min_cosine": _self_check(model, backbone, out), "opset": _OPSET}


class _LastHidden(torch.nn.Module):
    """The backbone with tensor inputs and one tensor output: the signature ``torch.onnx.export`` traces."""

    def __init__(self, inner) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, input_ids, attention_mask):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def _trace(backbone, raw: Path) -> Path:
    """The backbone as an unoptimised ONNX graph with dynamic batch and sequence axes."""
    # A padded dummy batch, so tracing keeps the attention-mask path.
    ids = torch.full((2, 8), 5, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():  # tracer warnings about Python control flow on shapes: checked below
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _LastHidden(backbone),
            (ids, mask),
            str(raw),
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
            opset_version=_OPSET,
            dynamo=False,  # the dynamo exporter needs onnxscript, which is not installed
        )
    return raw


def _fuse(raw: Path, cfg):
    """ONNX Runtime's BERT optimizer: attention, GELU and LayerNorm fused (the speed of the ``onnx`` backend)."""
    from onnxruntime.transformers.optimizer import optimize_model  # heavy; needed once per exported model

    return optimize_model(
        str(raw), model_type="bert", num_heads=cfg.num_attention_heads, hidden_size=cfg.hidden_size, opt_level=1
    )


def _quantize(fused, fp32: Path, out: Path) -> None:
    """Dynamic int8 quantisation of the fused graph with ``_INT8_OPTIONS`` (the ``onnx-int8`` backend)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fused.save_model_to_file(str(fp32))
    quantize_dynamic(
        str(fp32),
        str(out),
        weight_type=QuantType.QInt8,
        per_channel=_INT8_OPTIONS["per_channel"],
        reduce_range=_INT8_OPTIONS["reduce_range"],
        op_types_to_quantize=list(_INT8_OPTIONS["op_types"]),
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # fused ops defeat shape inference
    )
    fp32.unlink()


def _self_check(model, backbone, path: Path) -> float:
    """Smallest cosine between torch and ONNX mean-pooled embeddings of the padded probe batch."""
    session = OnnxTransformer(path, backbone.config, threads=1)
    features = model.tokenizer(list(_PROBES), padding=True, return_tensors="pt")
    with torch.inference_mode():
        ref = backbone(input_ids=features["input_ids"], attention_mask=features["attention_mask"]).last_hidden_state
        got = session(features["input_ids"], features["attention_mask"]).last_hidden_state
    mask = features["attention_mask"].unsqueeze(-1).float()
    a, b = ((x * mask).sum(1) / mask.sum(1) for x in (ref, got))
    return float(torch.nn.functional.cosine_similarity(a, b).min())
