"""``python -m hybridir_utils.training --config train.yaml``: one training from a TrainConfig YAML file."""

from hybridir_utils.training.trainer import main

raise SystemExit(main())
