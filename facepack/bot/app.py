"""The Telegram side: handlers, the python-telegram-bot Application, and serving it.

    app = build_application(token, pipe, Settings())      # pipe: a loaded FacePipeline
    app.run_polling()                                      # the CLI (facepack/bot/cli.py)
    await serve(app, stop_event)                           # on an event loop of your own
    with serve_in_thread(app) as photo_bot: ...            # tests, benchmarks: a thread of its own

Handlers (concurrent: python-telegram-bot's ``concurrent_updates`` lets one chat's photo wait
for a worker while other chats are answered):
    photo, or a document          -> one reply: annotated photo + caption, or a clear message
    /start, /help                 -> texts.HELP
    /heatmap on|off               -> per-chat setting (memory only, default off)
    /about                        -> texts.about(pipe.runs, the pipeline's mirror_keypoints default)
    anything else, private chat   -> texts.NOT_A_PHOTO (in groups: nothing)

Per photo: admit (AnalysisPool.try_reserve, else texts.BUSY), download into memory, analyse on
a worker thread (analysis.analyze_photo), reply, release. Logged per photo: kind, faces, queue
wait and analysis time; never the chat, the user, the photo or the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field

from facepack import pipeline
from facepack.bot import texts
from facepack.bot.analysis import Limits, analyze_photo
from facepack.bot.pool import AnalysisPool

LOG = logging.getLogger("facepack.bot")
IMAGE_MIME_PREFIX = "image/"
UNTYPED_MIME = "application/octet-stream"  # clients send unknown files so; let the decoder decide
HEATMAP_KEY = "heatmap"


@dataclass(frozen=True)
class Settings:
    """Load-time settings of the bot.

    workers: analysis threads (default 2: this project's CI box has 2 cores; TensorFlow's own
        ops use every core inside each).
    queue_size: photos admitted beyond the busy workers before replying "busy" (default 30: 20
        chats sending at once are all answered, in ~10 s with the shipped models on 2 cores).
    concurrent_updates: updates handled at once by python-telegram-bot (default 64; must exceed
        workers + queue_size so that busy replies are not themselves queued).
    limits: per-photo limits (analysis.Limits defaults).
    poll_timeout_s: getUpdates long-poll timeout (default 10 s).
    """

    workers: int = 2
    queue_size: int = 30
    concurrent_updates: int = 64
    limits: Limits = field(default_factory=Limits)
    poll_timeout_s: float = 10.0

    def __post_init__(self):
        for name, flag, low in (("workers", "--workers", 1), ("queue_size", "--queue-size", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{flag} must be an integer >= {low}, got {value!r}")
        if self.concurrent_updates <= self.workers + self.queue_size:
            raise ValueError(f"concurrent_updates ({self.concurrent_updates}) must exceed workers + queue_size "
                             f"({self.workers + self.queue_size}); raise it or lower --queue-size")
        if not self.poll_timeout_s > 0:
            raise ValueError(f"poll_timeout_s must be > 0 seconds, got {self.poll_timeout_s!r}")


class PhotoBot:
    """The handlers, holding the pipeline, the pool and the limits (no module-level state).

    analyzer: ``fn(pipe, data, heatmap, limits) -> Reply`` (default analysis.analyze_photo;
        tests wrap it to make one photo slow).
    """

    def __init__(self, pipe, settings: Settings, analyzer=analyze_photo):
        self.pipe = pipe
        self.settings = settings
        self.pool = AnalysisPool(settings.workers, settings.queue_size)
        self.analyzer = analyzer
        # analyze_photo passes no mirror_keypoints: the pipeline's default decides what /about quotes
        self.about_text = texts.about(getattr(pipe, "runs", {}) or {},
                                      mirror_keypoints=pipeline._resolve_mirror_keypoints(None))

    # --- commands -----------------------------------------------------------------------------
    async def help(self, update, context) -> None:
        await update.effective_message.reply_text(texts.HELP)

    async def about(self, update, context) -> None:
        await update.effective_message.reply_text(self.about_text)

    async def heatmap(self, update, context) -> None:
        args = [a.lower() for a in (context.args or [])]
        if args == ["on"] or args == ["off"]:
            context.chat_data[HEATMAP_KEY] = args == ["on"]
        elif args:
            await update.effective_message.reply_text(texts.HEATMAP_USAGE)
            return
        await update.effective_message.reply_text(texts.heatmap_state(context.chat_data.get(HEATMAP_KEY, False)))

    async def other(self, update, context) -> None:
        if update.effective_message is not None:
            await update.effective_message.reply_text(texts.NOT_A_PHOTO)

    # --- photos -------------------------------------------------------------------------------
    async def photo(self, update, context) -> None:
        message = update.effective_message
        if message.photo:
            item = message.photo[-1]  # the largest size Telegram made
        else:
            item = message.document
            mime = item.mime_type
            if mime and not mime.startswith(IMAGE_MIME_PREFIX) and mime != UNTYPED_MIME:
                if message.chat.type == "private":  # in groups, other people's files are not for us
                    await message.reply_text(texts.not_an_image(mime, item.file_name))
                return
        if item.file_size and item.file_size > texts.DOWNLOAD_MAX_BYTES:
            await message.reply_text(texts.too_big_to_download(item.file_size))
            return
        if not self.pool.try_reserve():
            LOG.info("photo refused: busy (%d admitted)", self.pool.admitted)
            await message.reply_text(texts.BUSY)
            return
        try:
            await self._answer(message, item, bool(context.chat_data.get(HEATMAP_KEY, False)))
        finally:
            self.pool.release()

    async def _answer(self, message, item, heatmap: bool) -> None:
        from telegram.error import TelegramError

        t0 = time.perf_counter()
        try:
            file = await item.get_file()
            data = bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            LOG.warning("download failed: %s", exc.__class__.__name__)
            await message.reply_text(texts.DOWNLOAD_FAILED)
            return
        t1 = time.perf_counter()
        try:
            reply, wait_ms = await self.pool.run(self.analyzer, self.pipe, data, heatmap, self.settings.limits)
        except Exception:
            LOG.exception("analysis failed")
            await message.reply_text(texts.FAILED)
            return
        finally:
            del data  # the photo is not kept beyond its analysis
        if reply.photo is not None:
            await message.reply_photo(reply.photo, caption=reply.text, write_timeout=60)
        else:
            await message.reply_text(reply.text)
        LOG.info("photo answered: %s, %d face(s), download %.0f ms, queue %.0f ms, analysis %.0f ms, total %.0f ms",
                 reply.kind, len(reply.faces), (t1 - t0) * 1e3, wait_ms, reply.timings_ms.get("total", 0.0),
                 (time.perf_counter() - t0) * 1e3)

    async def on_error(self, update, context) -> None:
        LOG.error("update failed: %s", context.error.__class__.__name__, exc_info=context.error)


def build_application(token: str, pipe, settings: Settings = Settings(), base_url: str | None = None,
                      base_file_url: str | None = None, analyzer=analyze_photo):
    """The python-telegram-bot Application with the handlers registered.

    base_url / base_file_url: Bot API endpoints (default Telegram's; a local Bot API server or
    the tests' stub otherwise), as python-telegram-bot's ``base_url``: the token is appended.
    Returns the Application; ``application.bot_data["photo_bot"]`` is the PhotoBot.
    """
    from telegram.ext import ApplicationBuilder, CommandHandler, MessageHandler, filters

    if not token or any(c.isspace() for c in token):
        raise ValueError("bot token: empty or contains whitespace; check FACEPACK_BOT_TOKEN or --token-file")
    builder = (ApplicationBuilder().token(token).concurrent_updates(settings.concurrent_updates)
               .get_updates_read_timeout(settings.poll_timeout_s + 5.0))
    if base_url is not None:
        builder = builder.base_url(base_url)
    if base_file_url is not None:
        builder = builder.base_file_url(base_file_url)
    app = builder.build()
    bot = PhotoBot(pipe, settings, analyzer)
    app.bot_data["photo_bot"] = bot
    app.add_handler(CommandHandler(["start", "help"], bot.help))
    app.add_handler(CommandHandler("about", bot.about))
    app.add_handler(CommandHandler("heatmap", bot.heatmap))
    new = filters.UpdateType.MESSAGE  # not edits: an edited caption is not a new photo
    app.add_handler(MessageHandler(new & (filters.PHOTO | filters.Document.ALL), bot.photo))
    app.add_handler(MessageHandler(new & filters.ChatType.PRIVATE, bot.other))  # groups: stay quiet
    app.add_error_handler(bot.on_error)
    return app


async def serve(app, stop: asyncio.Event) -> None:
    """Run ``app`` (long polling, Settings.poll_timeout_s) until ``stop`` is set, then shut it down."""
    bot = app.bot_data["photo_bot"]
    async with app:
        await app.start()
        await app.updater.start_polling(timeout=bot.settings.poll_timeout_s, poll_interval=0.0)
        try:
            await stop.wait()
        finally:
            await app.updater.stop()
            await app.stop()
            bot.pool.shutdown()


@contextlib.contextmanager
def serve_in_thread(app, timeout_s: float = 30.0):
    """Serve ``app`` on its own event loop in a daemon thread; yields its PhotoBot; stops on exit.

    RuntimeError when it does not start or stop within ``timeout_s``; an exception inside the
    bot's loop (e.g. InvalidToken) is re-raised here.
    """
    box, ready = {}, threading.Event()

    async def main():
        box["loop"], box["stop"] = asyncio.get_running_loop(), asyncio.Event()
        ready.set()
        await serve(app, box["stop"])

    def target():
        try:
            asyncio.run(main())
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc
            ready.set()

    thread = threading.Thread(target=target, daemon=True, name="facepack-bot")
    thread.start()
    if not ready.wait(timeout_s):
        raise RuntimeError(f"the bot's event loop did not start within {timeout_s} s")
    try:
        yield app.bot_data["photo_bot"]
    finally:
        if "loop" in box:
            box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(timeout_s)
    if thread.is_alive():
        raise RuntimeError(f"the bot did not stop within {timeout_s} s")
    if "error" in box:
        raise box["error"]
