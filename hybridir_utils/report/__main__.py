"""``python -m hybridir_utils.report answer [--profile P] [--write | --check]`` writes a profile's results section
of RESULTS.md from ``results/<profile>/*.csv``; ``python -m hybridir_utils.report confirmation [--write | --check]``
the pre-registered H1's."""

import sys

from hybridir_utils.report import answer, confirmation

COMMANDS = {"answer": answer.main, "confirmation": confirmation.main}

if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
    sys.exit(f"usage: python -m hybridir_utils.report {{{','.join(COMMANDS)}}} [options]\n{__doc__}")
sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
