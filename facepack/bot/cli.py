"""``python -m facepack.bot``: run the Telegram bot on this machine (long polling).

The token comes from the environment variable FACEPACK_BOT_TOKEN or from a file (--token-file),
never from the command line (other users can read a process's arguments) and never into a log
line (facepack/bot/redact.py). Create a bot and get its token from @BotFather in Telegram.

    export FACEPACK_BOT_TOKEN=123456:ABC...      # or: --token-file ~/.config/facepack/bot-token
    python -m facepack.bot                       # newest real-data runs not worse than shipped, else shipped
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

TOKEN_ENV = "FACEPACK_BOT_TOKEN"
LOG = logging.getLogger("facepack.bot")


def build_parser() -> argparse.ArgumentParser:
    from facepack.bot.analysis import Limits
    from facepack.bot.app import Settings

    s, lim = Settings(), Limits()
    parser = argparse.ArgumentParser(
        prog="python -m facepack.bot", allow_abbrev=False,
        description="Run the facepack Telegram bot on this machine (long polling, the Python reference pipeline).",
        epilog=f"The token: set {TOKEN_ENV} or pass --token-file (it is never a command-line argument).")
    parser.add_argument("--token-file", metavar="PATH", default=None,
                        help=f"file holding the bot token (default: the {TOKEN_ENV} environment variable)")
    parser.add_argument("--beauty", metavar="RUN", default=None,
                        help="beauty run: a folder, a run name, latest or shipped (default: the newest run under --runs trained on real data and not worse than the shipped model, else the shipped model)")
    parser.add_argument("--keypoints", metavar="RUN", default=None,
                        help="keypoint run: a folder, a run name, latest or shipped (default: the newest run under --runs trained on real data and not worse than the shipped model, else the shipped model)")
    parser.add_argument("--runs", metavar="DIR", default=None, help="where to look for runs (default: runs/)")
    parser.add_argument("--workers", type=int, default=s.workers, metavar="N",
                        help=f"analysis threads (default {s.workers})")
    parser.add_argument("--queue-size", type=int, default=s.queue_size, metavar="N",
                        help=f"photos waiting beyond the workers before the bot answers 'busy' (default {s.queue_size})")
    parser.add_argument("--max-faces", type=int, default=lim.max_faces, metavar="N",
                        help=f"faces scored per photo, most confident first (default {lim.max_faces})")
    parser.add_argument("--api-url", metavar="URL", default=None,
                        help="Bot API base URL, the token appended (default Telegram's https://api.telegram.org/bot; "
                             "a local Bot API server otherwise)")
    parser.add_argument("--file-url", metavar="URL", default=None,
                        help="Bot API file base URL (default Telegram's https://api.telegram.org/file/bot)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log level (default INFO: outcomes and timings only; DEBUG adds the libraries' "
                             "request lines, which name chat ids; the token is masked at every level)")
    return parser


def read_token(token_file: str | None, environ=os.environ) -> str:
    """The token from ``token_file`` (first line, stripped) or from FACEPACK_BOT_TOKEN.

    ValueError (naming the file or the variable, never the token) when missing or malformed.
    """
    if token_file is not None:
        path = Path(token_file)
        if path.is_dir():
            raise ValueError(f"--token-file: {str(path)!r} is a folder; name the file that holds the token")
        if not path.is_file():
            raise ValueError(f"--token-file: no such file {str(path)!r}")
        if os.name == "posix" and path.stat().st_mode & 0o077:
            print(f"warning: --token-file {str(path)!r} can be read by other users (mode "
                  f"{path.stat().st_mode & 0o777:o}); `chmod 600` it: the token controls the bot", file=sys.stderr)
        lines = path.read_text().strip().splitlines()
        token, source = (lines[0].strip() if lines else ""), f"--token-file {str(path)!r}"
    else:
        token, source = environ.get(TOKEN_ENV, "").strip(), TOKEN_ENV
    if not token:
        raise ValueError(f"{source}: no bot token; get one from @BotFather and set {TOKEN_ENV} or pass --token-file")
    if ":" not in token or any(c.isspace() for c in token):
        raise ValueError(f"{source}: this does not look like a bot token (expected '<digits>:<letters>' "
                         "as @BotFather gives it)")
    return token


def check_token(token: str, base_url: str | None = None, base_file_url: str | None = None) -> str:
    """Ask the Bot API who the token belongs to (getMe) before loading any model; the bot's @name.

    ValueError when the API rejects the token or cannot be reached (the message never holds the token).
    """
    import asyncio

    from telegram import Bot
    from telegram.error import InvalidToken, NetworkError

    urls = {k: v for k, v in (("base_url", base_url), ("base_file_url", base_file_url)) if v is not None}

    async def get_me() -> str:
        async with Bot(token, **urls) as bot:  # initialize() calls getMe
            return bot.username

    where = base_url or "https://api.telegram.org"
    try:
        return asyncio.run(get_me())
    except InvalidToken:
        raise ValueError(f"bot token: rejected by the Bot API at {where} (401 Unauthorized); check {TOKEN_ENV} "
                         "or --token-file, or ask @BotFather for the current token") from None
    except NetworkError as exc:
        flag = "--api-url: " if base_url else ""
        raise ValueError(f"{flag}cannot reach the Bot API at {where} ({exc.__class__.__name__}); "
                         f"check the network{' or the URL' if base_url else ''}") from None


def warm_up(pipe, heatmaps: bool = True) -> float:
    """Trace the compiled models once (before worker threads share them); returns seconds."""
    import numpy as np

    from facepack import pipeline, spec

    t0 = time.perf_counter()
    pipe.analyze(np.zeros((64, 64, 3), dtype=np.uint8))  # the detector's first call
    if pipe.beauty_model is not None:
        crops = np.zeros((1, pipe.beauty_size, pipe.beauty_size, 3), dtype=np.float32)
        pipeline.beauty(pipe.predictor("beauty"), crops)
        if heatmaps:
            features, head = pipe.gradcam_models()
            pipeline.gradcam(features, head, crops, [(0.0, 0.0, float(pipe.beauty_size))], pipe.gradcam_compiled())
    if pipe.keypoint_model is not None:
        # the path analyze takes: the spec default (mirror averaging -> a batch of crop + mirror)
        mirror = pipeline._resolve_mirror_keypoints(None)
        perm = spec.MIRROR_PERMUTATION[str(pipe.num_points)] if mirror else None
        crops = np.zeros((1, pipe.keypoint_size, pipe.keypoint_size, 3), dtype=np.float32)
        pipeline.keypoints(pipe.predictor("keypoints"), crops, [(0.0, 0.0, float(pipe.keypoint_size))], perm)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from facepack.bot.analysis import Limits
    from facepack.bot.app import Settings, build_application
    from facepack.bot.redact import quiet_http_loggers, redact_token

    if isinstance(args.max_faces, int) and args.max_faces < 1:
        raise ValueError(f"--max-faces must be an integer >= 1, got {args.max_faces}")
    limits = Limits(max_faces=args.max_faces)
    settings = Settings(workers=args.workers, queue_size=args.queue_size,
                        concurrent_updates=max(64, 2 * (args.workers + args.queue_size) + 1), limits=limits)
    token = read_token(args.token_file)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    quiet_http_loggers()
    with redact_token(token):
        from facepack.pipeline import FacePipeline

        LOG.info("bot @%s", check_token(token, args.api_url, args.file_url))
        pipe = FacePipeline.from_runs(args.beauty, args.keypoints, runs_root=args.runs)
        LOG.info("models loaded: %s; warm-up %.1f s", pipe.runs, warm_up(pipe))
        app = build_application(token, pipe, settings, base_url=args.api_url, base_file_url=args.file_url)
        LOG.info("polling for updates (%d workers, queue %d); Ctrl-C stops", settings.workers, settings.queue_size)
        app.run_polling(timeout=settings.poll_timeout_s, poll_interval=0.0)
        app.bot_data["photo_bot"].pool.shutdown()
    return 0
