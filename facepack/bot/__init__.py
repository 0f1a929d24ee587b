"""The Telegram bot: send a face photo, get it back annotated with the reference pipeline's results.

Modules (one concern each):
    analysis.py  photo bytes -> Reply (annotated JPEG + caption), on a worker thread
    texts.py     every sentence the bot sends; /about from the loaded runs' model facts
    pool.py      AnalysisPool: worker threads with a bounded queue ("busy" beyond it)
    app.py       python-telegram-bot handlers, build_application(), serve()
    redact.py    the token never reaches a log line
    cli.py       ``python -m facepack.bot`` (token from FACEPACK_BOT_TOKEN or --token-file)

The bot runs where the models run, so it is the one part of facepack where photos leave the
user's device; each photo is processed in memory and not stored (texts.about says so to users).
"""
