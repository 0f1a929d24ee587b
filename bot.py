"""Run the facepack Telegram bot: ``python bot.py`` = ``python -m facepack.bot`` (see its --help)."""

import sys

from facepack.bot.cli import main
from facepack.cli import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(main))
