"""How fast does the Telegram bot answer, one photo at a time and with 20 chats at once?

    python bench/bench_bot.py            # about 1-2 minutes on 2 cores
    python bench/bench_bot.py --quick    # fewer repetitions

The real bot (facepack/bot, python-telegram-bot) with the shipped models runs in this process
against the tests' stub Bot API server on 127.0.0.1 (tests/botapi_stub.py), so the times are the
bot's own work (getUpdates, download, analysis, drawing, JPEG, upload) without Telegram's network.
Reply time: from the moment the photo is queued on the stub to the moment the stub receives the
bot's sendPhoto. Photos: tests/fixtures/astronaut.png (512x512, 1 face), the same photo twice side
by side (1024x512, 2 faces) and upscaled to 2048x2048 (a phone-sized JPEG, 1 face).

Table 1: sequential reply time per photo (median over --runs; heatmap off and on).
Table 2: 20 chats sending one photo each at the same moment, with the default settings
(2 workers, queue 30) and with a small queue (2 workers, queue 8: the rest are told "busy").
JSON: bench/results/bot.json.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))  # the stub Bot API server lives with the tests
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import common  # noqa: E402,F401  (a bench script's TensorFlow start-up lines are filtered: facepack/tfquiet.py)

TOKEN = "123456789:AAH-bench_token_for_the_stub_server_00000"
CHATS = 20


def photos() -> dict:
    import numpy as np
    from PIL import Image

    raw = (ROOT / "tests" / "fixtures" / "astronaut.png").read_bytes()
    rgb = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))

    def jpeg(a, q=90):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="JPEG", quality=q)
        return buf.getvalue()

    big = np.asarray(Image.fromarray(rgb).resize((2048, 2048), Image.Resampling.BICUBIC))
    return {"astronaut 512x512 PNG (1 face)": raw,
            "two faces 1024x512 JPEG": jpeg(np.concatenate([rgb, rgb[:, ::-1]], axis=1)),
            "astronaut 2048x2048 JPEG (1 face)": jpeg(big)}


def run(args) -> dict:
    from botapi_stub import StubBotAPI

    from facepack.bot.app import Settings, build_application, serve_in_thread
    from facepack.bot.cli import warm_up
    from facepack.bot.redact import redact_token
    from facepack.pipeline import FacePipeline

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the stub's request lines
    pipe = FacePipeline.from_runs()
    t0 = time.perf_counter()
    warm_up(pipe)
    import tensorflow as tf
    import telegram

    import common

    machine = {**common.machine_info(), "tensorflow": tf.__version__, "python_telegram_bot": telegram.__version__}
    results = {"machine": machine, "models": pipe.runs, "warm_up_s": time.perf_counter() - t0,
               "sequential": {}, "concurrent": {}}
    stub = StubBotAPI(TOKEN).start()
    chat = iter(range(1000, 10**6))
    pics = photos()
    with redact_token(TOKEN):
        # 1. one photo at a time
        app = build_application(TOKEN, pipe, Settings(poll_timeout_s=1.0), base_url=stub.base_url,
                                base_file_url=stub.base_file_url)
        with serve_in_thread(app):
            for heatmap in (False, True):
                for name, data in pics.items():
                    times = []
                    for _ in range(args.runs):
                        c = next(chat)
                        if heatmap:
                            stub.push_text(c, "/heatmap on")
                            stub.wait_for_replies({c: 1}, 60)
                        t = time.monotonic()
                        stub.push_document(c, data, "photo", "image/jpeg")
                        reply = stub.wait_for_replies({c: 1 + heatmap}, 120)[c][-1]
                        assert reply["method"] == "sendPhoto", reply
                        times.append(reply["t"] - t)
                    results["sequential"][f"{name}, heatmap {'on' if heatmap else 'off'}"] = {
                        "median_s": statistics.median(times), "min_s": min(times), "runs": len(times)}
        # 2. twenty chats at once
        data = pics["astronaut 512x512 PNG (1 face)"]
        for label, settings in (("defaults: 2 workers, queue 30", Settings(poll_timeout_s=1.0)),
                                ("2 workers, queue 8", Settings(poll_timeout_s=1.0, queue_size=8))):
            app = build_application(TOKEN, pipe, settings, base_url=stub.base_url, base_file_url=stub.base_file_url)
            with serve_in_thread(app):
                chats = [next(chat) for _ in range(CHATS)]
                t = time.monotonic()
                with stub.cond:  # all in one getUpdates answer
                    for c in chats:
                        stub.push_photo(c, data)
                got = stub.wait_for_replies({c: 1 for c in chats}, 300)
            photos_t = sorted(got[c][0]["t"] - t for c in chats if got[c][0]["method"] == "sendPhoto")
            busy_t = sorted(got[c][0]["t"] - t for c in chats if got[c][0]["method"] == "sendMessage")
            results["concurrent"][label] = {
                "photos": len(photos_t), "busy": len(busy_t),
                "first_s": photos_t[0], "median_s": statistics.median(photos_t), "last_s": photos_t[-1],
                "photos_per_s": len(photos_t) / photos_t[-1],
                "busy_last_s": busy_t[-1] if busy_t else None}
    stub.stop()
    results["load_average_end"] = os.getloadavg()[0]
    return results


def print_tables(r: dict) -> None:
    import common

    print("\n" + common.machine_line(r["machine"]) + f", python-telegram-bot {r['machine']['python_telegram_bot']}; "
          f"load {r['load_average_end']:.1f} at the end")
    print(f"models: {r['models']}; warm-up {r['warm_up_s']:.1f} s\n")
    print("| photo (sent as a file) | reply time, median | fastest |\n| --- | --- | --- |")
    for name, v in r["sequential"].items():
        print(f"| {name} | {v['median_s'] * 1e3:.0f} ms | {v['min_s'] * 1e3:.0f} ms |")
    print(f"\n| {CHATS} chats at once (512x512 photo) | annotated replies | busy replies | first / median / last "
          "photo reply | photos/s |\n| --- | --- | --- | --- | --- |")
    for label, v in r["concurrent"].items():
        busy = f"{v['busy']} (all within {v['busy_last_s']:.2f} s)" if v["busy"] else "0"
        print(f"| {label} | {v['photos']} | {busy} | {v['first_s']:.2f} / {v['median_s']:.2f} / "
              f"{v['last_s']:.2f} s | {v['photos_per_s']:.1f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="repetitions per sequential photo (default 5)")
    parser.add_argument("--quick", action="store_true", help="2 repetitions")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 2
    results = run(args)
    import common

    out = common.write_json("bot", results)
    print_tables(results)
    print(f"\nJSON: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
