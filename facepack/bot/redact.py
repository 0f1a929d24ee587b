"""Keep the bot token out of every log line.

The token is part of every Bot API URL, and libraries log URLs: httpx at INFO ("HTTP Request:
POST https://api.telegram.org/bot<token>/getUpdates"), python-telegram-bot at DEBUG ("Set Bot API
URL: ...") and in InvalidToken messages. ``redact_token(token)`` installs a log-record factory
that formats each record's message at once (freezing its arguments) and replaces the token with
``MASK`` in it and in the exception text as the record is created, so no handler (file, console, pytest's capture) ever sees it; ``quiet_http_loggers()``
additionally lowers httpx/httpcore to WARNING (their request lines are noise).
"""

from __future__ import annotations

import contextlib
import logging

MASK = "<token>"
HTTP_LOGGERS = ("httpx", "httpcore")


def _redacted(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


@contextlib.contextmanager
def redact_token(token: str):
    """While active, every LogRecord created has ``token`` (and its URL-quoted form) masked."""
    from urllib.parse import quote

    secrets = tuple(dict.fromkeys(s for s in (token, quote(token, safe="")) if s))
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error handling
            return record
        # Always freeze the message now: an argument may be mutated after the call and gain the
        # token (python-telegram-bot logs getFile's result dict, then writes the file URL into it).
        record.msg, record.args = _redacted(message, secrets), ()
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = _redacted(text, secrets)  # Formatter.format uses exc_text when set
        if record.stack_info:
            record.stack_info = _redacted(record.stack_info, secrets)
        return record

    logging.setLogRecordFactory(factory)
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous)


def quiet_http_loggers(level: int = logging.WARNING) -> None:
    for name in HTTP_LOGGERS:
        logging.getLogger(name).setLevel(level)
