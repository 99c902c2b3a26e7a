"""``python -m hybridir_utils.pipeline --profile <name> [-p key value ...] [--only 03 04]``."""

from hybridir_utils.pipeline.runner import main

raise SystemExit(main())
