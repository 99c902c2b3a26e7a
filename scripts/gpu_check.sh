#!/usr/bin/env bash
# The GPU device check: train and score a GPU profile, and pack what the analysis needs into a few files.
#
#   bash scripts/gpu_check.sh [-p key value ...]     # PROFILE=gpu (default) or gpu-extra; REQUIRE_CUDA=1 to
#                                                     # stop at once where torch sees no GPU; ARCHIVE_DIR (else
#                                                     # $OUT, else build/<profile>-archive) receives the archive
#   bash scripts/gpu_results.sh [-p key value ...]   # on the CPU: ARCHIVE=<folder> -> notebooks 04-05, report
#
# With the project's .venv (`make venv`): notebooks 01-02 (data, domain labels; no GPU needed) run first, then
# 03-05 train, evaluate and analyse on the GPU (bf16 autocast, TF32) — or on the CPU where there is none, which
# is how CI tests this script (tiny overrides, same code path, device recorded as cpu).
#
# On a bare machine with torch but no pip index and no hub (the lent GPU machine): the bundle that
# `python scripts/gpu_bundle.py` wrote to .device/ (wheels, LAReQA files, e5-small's weights with the vocabulary
# rows no LAReQA text uses zeroed) is unpacked into /tmp first, and build/<profile>/01_data and 02_domains must
# come with it, made where the full weights are: the domain classifier of notebook 02 reads texts (titles,
# domain descriptions) whose tokens the bundle may have zeroed, so the bundle never runs 01-02.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-gpu}
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

if [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
else
  [ -d .device/whl ] || { echo "gpu_check: no .venv and no .device/ bundle (run scripts/gpu_bundle.py)" >&2; exit 2; }
  PY=python3
  SITE=/tmp/hybridir-site
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .device/whl/*.whl
  export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  $PY -m ipykernel install --user --name python3 >/dev/null  # papermill's kernel: this python, this PYTHONPATH
  mkdir -p /tmp/hybridir-e5 /tmp/hybridir-data
  for f in .device/e5/*.gz; do gunzip -c "$f" > "/tmp/hybridir-e5/$(basename "$f" .gz)"; done
  tar -xzf .device/lareqa.tar.gz -C /tmp/hybridir-data
  export HYBRIDIR_E5_SOURCE_DIR=/tmp/hybridir-e5 HYBRIDIR_DATA_DIR=/tmp/hybridir-data/lareqa
fi
if [ -z "${HYBRIDIR_DATA_DIR:-}" ] && [ -f ../shared/data/lareqa/xquad-r/en.json ]; then
  export HYBRIDIR_DATA_DIR="$(cd ../shared/data/lareqa && pwd)"
fi

"$PY" -c "from hybridir_utils.utils import environment as e; print('gpu_check:', e.describe('auto'))"
if [ "${REQUIRE_CUDA:-0}" = 1 ]; then
  "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: REQUIRE_CUDA=1 but torch sees no GPU')"
fi
overrides=()
while [ $# -gt 0 ]; do overrides+=("$1"); shift; done
BUILD=${HYBRIDIR_BUILD_DIR:-build}
if [ -n "${HYBRIDIR_E5_SOURCE_DIR:-}" ]; then
  [ -f "$BUILD/$PROFILE/02_domains/labels.parquet" ] || {
    echo "gpu_check: the bundle needs $BUILD/$PROFILE/01_data and 02_domains made with the full weights" >&2; exit 2; }
else
  "$PY" -m hybridir_utils.pipeline --profile "$PROFILE" --only 01 02 "${overrides[@]}"  # labels match the profile
fi
start=$(date +%s)
# the GPU's part: train (03) and score every system (04 up to its `scores` cell); the analysis runs on the CPU.
# STAGE=train / STAGE=score split it into two device commands when one cannot hold both (build/ stays between them)
case "${STAGE:-all}" in
  all) only=(03 04) ;;
  train) only=(03) ;;
  score) only=(04) ;;
  *) echo "gpu_check: STAGE must be all, train or score, got ${STAGE}" >&2; exit 2 ;;
esac
"$PY" -m hybridir_utils.pipeline --profile "$PROFILE" --only "${only[@]}" --until scores "${overrides[@]}"
echo "gpu_check: notebooks ${only[*]} (to the scores) took $(( $(date +%s) - start )) s"
[ "${STAGE:-all}" = train ] && exit 0
ARCHIVE_DIR=${ARCHIVE_DIR:-${OUT:-$BUILD/$PROFILE-archive}}  # $OUT: the folder a device command brings back
"$PY" -m hybridir_utils.pipeline.archive pack "$ARCHIVE_DIR" --profile "$PROFILE"
echo "gpu_check: then, on the CPU: make gpu-results ARCHIVE=$ARCHIVE_DIR (PROFILE=$PROFILE)"
