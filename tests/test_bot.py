"""The Telegram bot (facepack/bot/) against a stub Bot API server on 127.0.0.1 (tests/botapi_stub.py).

The real python-telegram-bot Application runs on its own event loop in a thread, its ``base_url``
pointing at the stub; tests act as users (push updates) and read what the bot sent. The models are
the session's small untrained runs, loaded once for the module; the expected scores come from
facepack.pipeline on the same bytes.
"""

import contextlib
import io
import logging
import time

import numpy as np
import pytest
from PIL import Image

try:
    import telegram  # noqa: F401
except ImportError as exc:  # fail loudly: CI installs it from requirements.lock
    raise ImportError("tests/test_bot.py needs python-telegram-bot (pip install -r requirements.lock)") from exc

from botapi_stub import StubBotAPI
from facepack.bot import texts
from facepack.bot.analysis import Limits, analyze_photo, annotate_scaled
from facepack.bot.app import Settings, build_application, serve_in_thread
from facepack.bot.redact import HTTP_LOGGERS, MASK, redact_token

TOKEN = "123456789:AAH-facepack_stub_token_0123456789abcdef"
REPLY_TIMEOUT_S = 60.0  # generous: the CI box is shared
SCORE_DECIMALS = 1  # the caption's 0..100 score: f"{score:.1f}"
JPEG_TOL_LEVELS = 4.0  # mean |difference| between a JPEG reply and the image it encodes, 0..255
BOX_COLOR_TOL = 60  # per channel, a box-edge pixel after JPEG vs plots_predict.BOX_COLOR
HEATMAP_CHANGE_LEVELS = 16  # a pixel the Grad-CAM overlay changes by more than this, 0..255
SLOW_PHOTO_S = 2.0  # the wrapped analyzer's extra delay for the "slow" photo
POLL_S = 1.0  # the bot's getUpdates timeout in tests (the stub answers within 0.2 s anyway)


# --- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pipe(untrained_runs):
    from facepack.bot.cli import warm_up
    from facepack.pipeline import FacePipeline

    p = FacePipeline.from_runs(untrained_runs["beauty"], untrained_runs["keypoints"])
    warm_up(p)
    return p


@pytest.fixture(scope="module")
def stub():
    server = StubBotAPI(TOKEN).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def photos(fixtures_dir):
    astronaut = (fixtures_dir / "astronaut.png").read_bytes()
    rgb = np.asarray(Image.open(io.BytesIO(astronaut)).convert("RGB"))
    return {
        "astronaut": astronaut,
        "einstein": (fixtures_dir / "einstein.jpg").read_bytes(),
        "two_faces": _png(np.concatenate([rgb, rgb[:, ::-1]], axis=1)),
        "small": _png(np.asarray(Image.fromarray(rgb).resize((256, 256), Image.Resampling.BILINEAR))),
        "small_mirrored": _png(np.asarray(Image.fromarray(rgb[:, ::-1]).resize((256, 256), Image.Resampling.BILINEAR))),
        "faceless": _png(np.tile(np.linspace(0, 255, 256, dtype=np.uint8)[None, :, None], (256, 1, 3))),
        "huge": _png(np.zeros((6000, 8000, 3), dtype=np.uint8)),  # 48 MP > Limits.max_pixels
    }


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


@contextlib.contextmanager
def running_bot(stub, pipe, settings=None, analyzer=analyze_photo):
    """The bot served in a thread of its own, built inside redact_token as the CLI does; yields PhotoBot."""
    settings = settings or Settings(poll_timeout_s=POLL_S)
    with redact_token(TOKEN):
        app = build_application(TOKEN, pipe, settings, base_url=stub.base_url, base_file_url=stub.base_file_url,
                                analyzer=analyzer)
        with serve_in_thread(app) as bot:
            yield bot


def reply_image(reply) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(reply["photo"])).convert("RGB")).astype(np.float64)


def expected(pipe, data: bytes, heatmap=False, max_faces=10):
    """What the pipeline says about these bytes (the analysis the bot must report)."""
    return pipe.analyze(data, heatmaps=heatmap, max_faces=max_faces)["faces"]


# --- photo in, annotated photo out ----------------------------------------------------------------
def test_photo_gets_annotated_photo_with_the_pipeline_score(stub, pipe, photos):
    from facepack.plots_predict import BOX_COLOR

    faces = expected(pipe, photos["astronaut"])
    assert len(faces) == 1
    with running_bot(stub, pipe):
        stub.push_photo(1, photos["astronaut"])
        [reply] = stub.wait_for_replies({1: 1}, REPLY_TIMEOUT_S)[1]
    assert reply["method"] == "sendPhoto"
    b = faces[0]["beauty"]
    assert f"{b['score']:.{SCORE_DECIMALS}f}/100" in reply["caption"]
    assert f"{b['score_1to5']:.2f} on 1..5" in reply["caption"]
    assert reply["caption"].startswith("1 face:")
    img = reply_image(reply)
    assert img.shape == (512, 512, 3)
    # The box's left edge, half way down, is drawn in the box colour.
    box = faces[0]["box"]
    edge = img[int(box["y"] + box["height"] / 2), int(round(box["x"]))]
    assert np.abs(edge - np.array(BOX_COLOR)).max() <= BOX_COLOR_TOL, edge
    # It is the pipeline's drawing, not just any: equal to annotate() of the same faces up to JPEG.
    drawn = np.asarray(annotate_scaled(np.asarray(Image.open(io.BytesIO(photos["astronaut"])).convert("RGB")),
                                       faces, False, Limits().reply_max_side_px), dtype=np.float64)
    assert np.abs(img - drawn).mean() <= JPEG_TOL_LEVELS


def test_document_with_heatmap_on_is_answered_with_the_heatmap(stub, pipe, photos):
    faces = expected(pipe, photos["two_faces"], heatmap=True)
    assert len(faces) == 2
    with running_bot(stub, pipe):
        stub.push_text(2, "/heatmap on")
        stub.wait_for_replies({2: 1}, REPLY_TIMEOUT_S)
        stub.push_document(2, photos["two_faces"], "two.png", "image/png")
        replies = stub.wait_for_replies({2: 2}, REPLY_TIMEOUT_S)[2]
    assert replies[0]["text"] == texts.heatmap_state(True)
    photo = replies[1]
    assert photo["method"] == "sendPhoto" and "Heatmap shown" in photo["caption"]
    assert photo["caption"].startswith("2 faces:")
    for face in faces:
        assert f"{face['beauty']['score']:.{SCORE_DECIMALS}f}/100" in photo["caption"]
    rgb = np.asarray(Image.open(io.BytesIO(photos["two_faces"])).convert("RGB"))
    img = reply_image(photo)
    assert img.shape == (512, 1024, 3)  # a document keeps its resolution (under reply_max_side_px)
    with_map = np.asarray(annotate_scaled(rgb, faces, True, 1600), dtype=np.float64)
    without = np.asarray(annotate_scaled(rgb, faces, False, 1600), dtype=np.float64)
    overlay = np.abs(with_map - without).max(axis=-1) > HEATMAP_CHANGE_LEVELS  # where the heatmap shows
    assert overlay.mean() > 0.01  # it covers the faces: > 1 % of the photo
    assert np.abs(img - with_map)[overlay].mean() <= JPEG_TOL_LEVELS < np.abs(img - without)[overlay].mean()


def test_bad_inputs_get_clear_replies(stub, pipe, photos):
    einstein = photos["einstein"]
    with running_bot(stub, pipe):
        stub.push_document(19, b"minutes\n", "minutes.txt", "text/plain", chat_type="group")  # not for the bot
        stub.push_text(19, "hello all", chat_type="group")
        stub.push_document(10, b"just some notes\n", "notes.txt", "text/plain")
        stub.push_document(11, einstein[:3000], "cut.jpg", "image/jpeg")  # truncated JPEG
        stub.push_photo(12, photos["faceless"], 256, 256)
        stub.push_text(13, "hello")
        stub.push_document(14, photos["huge"], "huge.png", "image/png")
        stub.push_document(15, b"x", "big.jpg", "image/jpeg", file_size=texts.DOWNLOAD_MAX_BYTES + 1)
        stub.push_text(16, "/heatmap maybe")
        stub.push_text(17, "/about")
        stub.push_text(18, "/help")
        got = stub.wait_for_replies({c: 1 for c in range(10, 19)}, REPLY_TIMEOUT_S)
        time.sleep(0.3)  # a reply in the group would come by now
    assert [r for r in stub.replies if r["chat_id"] == -19] == []  # groups: silence for non-photos
    text = {c: got[c][0].get("text") for c in got}
    assert all(r[0]["method"] == "sendMessage" for r in got.values())
    assert text[10] == texts.not_an_image("text/plain", "notes.txt")
    assert text[11].startswith("I could not read this image: this file: not a readable image")
    assert text[12] == texts.no_face(256, 256)
    assert text[13] == texts.NOT_A_PHOTO
    assert text[14] == texts.too_many_pixels((8000, 6000), Limits().max_pixels)
    assert text[15] == texts.too_big_to_download(texts.DOWNLOAD_MAX_BYTES + 1)
    assert text[16] == texts.HEATMAP_USAGE
    assert "not a truth about anyone" in text[17] and "processed in memory" in text[17]
    assert "leave your device" in text[17] and "SCUT-FBP5500" not in text[17]  # the untrained runs' facts
    assert text[18] == texts.HELP
    assert stub.unknown_calls == [] and stub.unauthorized == 0


def test_too_many_faces_scores_the_most_confident(stub, pipe, photos):
    faces = expected(pipe, photos["two_faces"], max_faces=None)
    assert len(faces) == 2
    settings = Settings(poll_timeout_s=POLL_S, limits=Limits(max_faces=1))
    with running_bot(stub, pipe, settings):
        stub.push_photo(20, photos["two_faces"], 1024, 512)
        [reply] = stub.wait_for_replies({20: 1}, REPLY_TIMEOUT_S)[20]
    assert reply["caption"].startswith("More than 1 face(s) found: the 1 most confident are scored")
    assert f"{faces[0]['beauty']['score']:.{SCORE_DECIMALS}f}/100" in reply["caption"]
    assert "Face 2" not in reply["caption"]


# --- concurrency ----------------------------------------------------------------------------------
def test_twenty_chats_at_once_all_get_their_photo(stub, pipe, photos, artifacts_dir):
    chats = range(100, 120)
    name = {c: "small" if c % 2 else "small_mirrored" for c in chats}  # two photos, two different scores
    data = {c: photos[name[c]] for c in chats}
    scores = {n: [f"{f['beauty']['score']:.{SCORE_DECIMALS}f}/100" for f in expected(pipe, photos[n])]
              for n in ("small", "small_mirrored")}
    assert scores["small"] != scores["small_mirrored"]
    want = {c: scores[name[c]] for c in chats}
    settings = Settings(poll_timeout_s=POLL_S)  # the defaults: 2 workers, 30 queued
    with running_bot(stub, pipe, settings) as bot:
        t0 = time.monotonic()
        with stub.cond:  # all 20 arrive in one getUpdates answer
            for c in chats:
                stub.push_photo(c, data[c])
        got = stub.wait_for_replies({c: 1 for c in chats}, REPLY_TIMEOUT_S * 2)
        elapsed = {c: got[c][0]["t"] - t0 for c in chats}
        peak = bot.pool.peak
    for c in chats:
        assert [r["method"] for r in got[c]] == ["sendPhoto"], c
        assert all(s in got[c][0]["caption"] for s in want[c]), (c, got[c][0]["caption"], want[c])
    assert all(len(want[c]) == 1 for c in chats)
    assert peak == 20  # all admitted at once: none was refused
    times = sorted(elapsed.values())
    (artifacts_dir / "bot_twenty_chats.txt").write_text(
        f"20 chats, 2 workers, untrained test models: first reply {times[0]:.2f} s, "
        f"median {times[9]:.2f} s, last {times[-1]:.2f} s\n")


def test_full_queue_answers_busy_at_once(stub, pipe, photos):
    """Capacity 3 (1 worker + 2 queued); slow downloads keep the 3 admitted, so 17 are told "busy"."""
    chats = range(200, 220)
    settings = Settings(poll_timeout_s=POLL_S, workers=1, queue_size=2)
    stub.download_delay_s = 0.5
    try:
        with running_bot(stub, pipe, settings) as bot:
            with stub.cond:
                for c in chats:
                    stub.push_photo(c, photos["astronaut"])
            got = stub.wait_for_replies({c: 1 for c in chats}, REPLY_TIMEOUT_S)
            time.sleep(0.3)  # a second reply to any chat would be a bug: give it time to show
            refused = bot.pool.busy_replies
    finally:
        stub.download_delay_s = 0.0
    assert all(len([r for r in stub.replies if r["chat_id"] == c]) == 1 for c in chats)
    kinds = [got[c][0]["method"] for c in chats]
    assert kinds.count("sendPhoto") == 3 and refused == 17
    busy = [got[c][0] for c in chats if got[c][0]["method"] == "sendMessage"]
    assert all(r["text"] == texts.BUSY for r in busy)
    # The busy replies came at once, before any photo was answered.
    first_photo = min(got[c][0]["t"] for c in chats if got[c][0]["method"] == "sendPhoto")
    assert max(r["t"] for r in busy) < first_photo


def test_a_slow_photo_does_not_stall_other_chats(stub, pipe, photos):
    slow = photos["two_faces"]

    def analyzer(p, data, heatmap, limits):
        if data == slow:
            time.sleep(SLOW_PHOTO_S)
        return analyze_photo(p, data, heatmap, limits)

    settings = Settings(poll_timeout_s=POLL_S, workers=2, queue_size=4)
    with running_bot(stub, pipe, settings, analyzer=analyzer):
        stub.push_photo(300, slow, 1024, 512)
        time.sleep(0.3)  # the slow photo is on a worker now
        for c in (301, 302, 303):
            stub.push_photo(c, photos["small"], 256, 256)
        stub.push_text(304, "/help")
        got = stub.wait_for_replies({c: 1 for c in range(300, 305)}, REPLY_TIMEOUT_S)
    slow_t = got[300][0]["t"]
    assert got[300][0]["method"] == "sendPhoto"
    assert all(got[c][0]["t"] < slow_t for c in (301, 302, 303, 304)), {c: got[c][0]["t"] - slow_t for c in got}


# --- the token --------------------------------------------------------------------------------------
def test_the_token_never_reaches_the_logs(stub, pipe, photos, caplog):
    caplog.set_level(logging.DEBUG)  # every library's DEBUG lines, httpx's URL lines included
    with running_bot(stub, pipe):
        stub.push_photo(400, photos["astronaut"])
        stub.push_text(400, "/about")
        stub.wait_for_replies({400: 2}, REPLY_TIMEOUT_S)
    messages = [r.getMessage() for r in caplog.records]
    assert any("/bot" + MASK in m for m in messages), "expected masked Bot API URLs in the DEBUG logs"
    assert any(m.startswith("photo answered: faces, 1 face(s)") for m in messages)
    leaks = [f"{r.name}: {r.getMessage()[:200]}" for r in caplog.records if TOKEN in r.getMessage()]
    assert not leaks and TOKEN not in caplog.text, leaks[:3]
    assert TOKEN.split(":")[1] not in caplog.text


def test_redaction_covers_exceptions(caplog):
    log = logging.getLogger("facepack.bot.test")
    with redact_token(TOKEN):
        try:
            raise RuntimeError(f"The token `{TOKEN}` was rejected by the server.")
        except RuntimeError:
            log.exception("failed with %s", TOKEN)
    assert TOKEN not in caplog.text
    assert caplog.text.count(MASK) == 2


def test_a_rejected_token_is_a_one_line_error_without_the_token(stub):
    from facepack.bot.cli import check_token

    assert check_token(TOKEN, stub.base_url, stub.base_file_url) == "facepack_test_bot"
    wrong = "987654321:AAH-wrong_token_for_the_stub_server_xyz"
    with pytest.raises(ValueError, match="rejected by the Bot API") as info:
        check_token(wrong, stub.base_url, stub.base_file_url)
    assert wrong not in str(info.value) and stub.unauthorized == 1


def test_token_comes_from_the_environment_or_a_file(tmp_path, capsys):
    from facepack.bot.cli import TOKEN_ENV, build_parser, read_token

    assert read_token(None, {TOKEN_ENV: f" {TOKEN}\n"}) == TOKEN
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "token").chmod(0o600)
    assert read_token(str(tmp_path / "token"), {}) == TOKEN
    assert capsys.readouterr().err == ""
    (tmp_path / "token").chmod(0o644)  # readable by others: accepted, with a warning that never shows the token
    assert read_token(str(tmp_path / "token"), {}) == TOKEN
    err = capsys.readouterr().err
    assert "chmod 600" in err and "644" in err and TOKEN not in err
    with pytest.raises(ValueError, match="is a folder"):
        read_token(str(tmp_path), {})
    with pytest.raises(ValueError, match=TOKEN_ENV):
        read_token(None, {})
    with pytest.raises(ValueError, match="--token-file"):
        read_token(str(tmp_path / "missing"), {})
    (tmp_path / "bad").write_text("not a token")
    with pytest.raises(ValueError, match="does not look like a bot token") as info:
        read_token(str(tmp_path / "bad"), {})
    assert "not a token" not in str(info.value)
    with pytest.raises(SystemExit):  # there is no way to pass the token as an argument
        build_parser().parse_args(["--token", TOKEN])


def test_the_cli_checks_the_token_before_loading_models(stub, tmp_path, monkeypatch):
    import facepack.pipeline
    from facepack.bot import cli

    monkeypatch.setattr(facepack.pipeline.FacePipeline, "from_runs",
                        classmethod(lambda *a, **k: pytest.fail("models loaded before the token was checked")))
    wrong = "987654321:AAH-another_wrong_token_for_the_stub_xyz"
    (tmp_path / "token").write_text(wrong + "\n")
    before = stub.unauthorized
    levels = {name: logging.getLogger(name).level for name in HTTP_LOGGERS}  # main() quiets them
    try:
        with pytest.raises(ValueError, match="rejected by the Bot API") as info:
            cli.main(["--token-file", str(tmp_path / "token"), "--api-url", stub.base_url,
                      "--file-url", stub.base_file_url])
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    assert wrong not in str(info.value) and stub.unauthorized == before + 1


@pytest.mark.parametrize("argv, flag", [(["--workers", "0"], "--workers"), (["--queue-size", "-1"], "--queue-size"),
                                        (["--max-faces", "0"], "--max-faces")])
def test_bad_settings_are_named_before_the_token_is_read(argv, flag, monkeypatch):
    from facepack.bot import cli

    monkeypatch.delenv(cli.TOKEN_ENV, raising=False)  # the token error must not come first
    with pytest.raises(ValueError, match=flag):
        cli.main(argv)


def test_warm_up_traces_the_keypoint_path_analyze_takes(pipe):
    """warm_up runs the keypoint model as analyze does by default (spec.KEYPOINTS mirror_average:
    one crop and its mirror, a batch of 2), so the bot's points follow the page and predict.py."""
    from facepack import spec
    from facepack.bot.cli import warm_up

    class Recording:
        def __init__(self, inner):
            self._inner, self.keypoint_batches = inner, []

        def __getattr__(self, name):
            return getattr(self._inner, name)

        def predictor(self, kind):
            fn = self._inner.predictor(kind)
            if kind != "keypoints":
                return fn
            return lambda x: (self.keypoint_batches.append(len(x)), fn(x))[1]

    assert spec.KEYPOINTS["mirror_average"] is True  # the default this test pins
    rec = Recording(pipe)
    warm_up(rec, heatmaps=False)
    assert rec.keypoint_batches == [2]


def _fake_keypoint_run(root, mirror_metrics: dict | None):
    """A keypoint run folder with model-alone metrics (run.json and evaluate.py's eval/metrics.json)
    and, when given, run.json's metrics_mirror (bench_keypoints_mirror.py's mirror-averaged numbers)."""
    import json

    root.mkdir()
    info = {"backbone": "lite0", "dataset": {"name": "fake keypoints", "terms": "fake terms"},
            "metrics": {"nme_mean": 0.0111, "failure_rate": 0.25, "n": 4}}
    if mirror_metrics is not None:
        info["metrics_mirror"] = mirror_metrics
    (root / "run.json").write_text(json.dumps(info))
    (root / "eval").mkdir()
    (root / "eval" / "metrics.json").write_text(json.dumps(
        {"metrics": {"ground_truth_crop": {"nme_mean": 0.0222, "failure_rate": 0.5, "n": 4}}}))
    return root


def test_about_quotes_the_keypoint_nme_of_what_the_bot_runs(tmp_path):
    """/about's keypoint NME: mirror-averaged (run.json metrics_mirror) when the bot mirror-averages,
    evaluate.py's model-alone number when it does not, and says so when no averaged number exists."""
    with_mirror = _fake_keypoint_run(tmp_path / "kp", {"nme_mean": 0.0333, "failure_rate": 0.0, "n": 4})
    averaged = texts.about({"keypoints": str(with_mirror)}, mirror_keypoints=True)
    assert "normalised mean error 0.0333 (inter-ocular; with test-time mirror averaging" in averaged
    assert "0.0222" not in averaged and "0.0111" not in averaged
    alone = texts.about({"keypoints": str(with_mirror)}, mirror_keypoints=False)
    assert "normalised mean error 0.0222 (inter-ocular; the model alone, as I answer)" in alone
    assert "failure rate 50.0 % (4 held-out faces)" in alone and "0.0333" not in alone
    without = _fake_keypoint_run(tmp_path / "kp_old", None)
    old = texts.about({"keypoints": str(without)}, mirror_keypoints=True)
    assert "Keypoint model: EfficientNet-Lite0 at ? px, trained on fake keypoints; " in old
    assert [texts.backbone_name(n) for n in ("lite0", "efficientnet_lite0", "mobilenet_v2", "new_net", None)] == [
        "EfficientNet-Lite0", "EfficientNet-Lite0", "MobileNetV2", "new_net", "?"]
    assert "normalised mean error 0.0222 (inter-ocular; the model alone; I average each face with its mirror" in old


def test_about_of_the_shipped_keypoint_model_is_the_mirror_averaged_nme():
    """The bot as started (its pipeline's default, spec.KEYPOINTS mirror_average) on the shipped
    keypoint run: /about quotes that run's recorded mirror-averaged NME, not the model alone's."""
    import json

    from facepack.bot.app import PhotoBot
    from facepack.runs import SHIPPED_ROOT

    run = SHIPPED_ROOT / "keypoints"
    info = json.loads((run / "run.json").read_text())
    recorded = info["metrics_mirror"]["nme_mean"]
    assert f"{recorded:.4f}" != f"{info['metrics']['nme_mean']:.4f}"  # else this test could not tell them apart

    class ShippedRuns:  # what PhotoBot reads of a pipeline for /about: its runs
        runs = {"keypoints": str(run)}

    text = PhotoBot(ShippedRuns(), Settings()).about_text
    # the backbone as people call it, its input size, the point count once (newuser #9)
    assert ("Keypoint model: EfficientNet-Lite0 at 96 px, trained on YouTube Faces keypoints (68 points); "
            in text), text
    assert text.count("68 points") == 1 and "lite0" not in text
    assert f"normalised mean error {recorded:.4f} (inter-ocular; with test-time mirror averaging" in text
