"""``python -m hybridir_utils.bench {eval,throughput,sampler} ...``."""

from hybridir_utils.bench.cli import main

raise SystemExit(main())
