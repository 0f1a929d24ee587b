"""``python -m facepack.bot`` (see facepack/bot/cli.py)."""

import sys

from facepack.bot.cli import main
from facepack.cli import run_cli

sys.exit(run_cli(main))
