#!/usr/bin/env bash
# The CPU's part of a GPU run: unpack the archive that scripts/gpu_check.sh packed on the GPU machine into
# build/<profile>/ and results/<profile>/, then finish notebook 04 from the scores it holds (score_systems false:
# no model is loaded, nothing is encoded) and run notebook 05 and the report.
#
#   ARCHIVE=<folder> bash scripts/gpu_results.sh [-p key value ...]    # PROFILE=gpu (default) or gpu-extra
#   make gpu-results ARCHIVE=<folder>
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-gpu}
[ -n "${ARCHIVE:-}" ] || { echo "gpu_results: ARCHIVE=<folder written by gpu_check.sh> is required" >&2; exit 2; }
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
if [ -z "${HYBRIDIR_DATA_DIR:-}" ] && [ -f ../shared/data/lareqa/xquad-r/en.json ]; then
  export HYBRIDIR_DATA_DIR="$(cd ../shared/data/lareqa && pwd)"
fi
"$PY" -m hybridir_utils.pipeline.archive unpack "$ARCHIVE" --profile "$PROFILE"
"$PY" -m hybridir_utils.pipeline --profile "$PROFILE" --only 04 05 -p score_systems false "$@"
