"""``python -m hybridir_utils.training --config run.json``: one training run from the command line."""

from hybridir_utils.training.trainer import main

raise SystemExit(main())
