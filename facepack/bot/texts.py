"""Every sentence the bot sends (plain text, no parse mode), in one place.

Model facts in /about (dataset, terms, held-out metrics) are read from the loaded runs
(``run.json``, and ``eval/metrics.json`` that training/evaluate.py writes beside a run), so the
text follows whatever models the bot was started with. The keypoint numbers are those of what the
bot runs: with test-time mirror averaging (the pipeline's default, spec.KEYPOINTS mirror_average)
run.json's ``metrics_mirror`` (bench/bench_keypoints_mirror.py), else the model alone.
"""

from __future__ import annotations

import json
from pathlib import Path

CAPTION_MAX_CHARS = 1024  # Telegram's limit for a photo caption
DOWNLOAD_MAX_BYTES = 20 * 1024 * 1024  # the Bot API's getFile limit for bots

HELP = (
    "Send me a photo with one or more faces (as a photo, or as a file for full resolution). "
    "I answer with the photo annotated: a box per face, 68 keypoints, and a beauty score on "
    "0..100 and 1..5.\n\n"
    "/heatmap on - also draw the Grad-CAM heatmap (where the score looked)\n"
    "/heatmap off - boxes and keypoints only (default)\n"
    "/about - what the score is and is not, the data behind it, and what happens to your photo\n"
    "/help - this message"
)

BUSY = ("I am busy with other people's photos right now; my queue is full. "
        "Please send the photo again in a minute.")
NOT_A_PHOTO = "I only analyse photos. Send a photo (or an image file) with a face in it. /help"
FAILED = "Something went wrong while analysing this photo; please try again later."
DOWNLOAD_FAILED = "I could not download this file from Telegram; please send it again."
HEATMAP_USAGE = "Use /heatmap on or /heatmap off."


def heatmap_state(on: bool) -> str:
    return ("Heatmap on: replies also show the Grad-CAM heatmap of the score." if on
            else "Heatmap off: replies show boxes, keypoints and scores.")


def not_an_image(mime_type: str | None, file_name: str | None) -> str:
    what = " ".join(x for x in (file_name and f"'{file_name}'", mime_type and f"({mime_type})") if x) or "This file"
    return f"{what} is not an image. Send a photo or an image file (JPEG, PNG, WebP) with a face in it."


def too_big_to_download(size_bytes: int) -> str:
    return (f"This file is {size_bytes / 2**20:.1f} MB; bots can only download files up to "
            f"{DOWNLOAD_MAX_BYTES // 2**20} MB. Send it as a photo instead (Telegram shrinks it).")


def too_many_pixels(size: tuple[int, int], max_pixels: int) -> str:
    w, h = size
    return (f"This image is {w}x{h} pixels ({w * h / 1e6:.0f} megapixels); I analyse images up to "
            f"{max_pixels / 1e6:.0f} megapixels. Send a smaller copy or send it as a photo.")


def unreadable(reason: str) -> str:
    return f"I could not read this image: {reason}. Send a JPEG, PNG or WebP photo."


def no_face(width: int, height: int) -> str:
    return (f"No face found in this {width}x{height} photo. Faces should be roughly frontal, "
            "well lit and at least about 40 pixels across.")


def face_line(index: int, face: dict) -> str:
    if "beauty" in face:
        b = face["beauty"]
        return f"Face {index + 1}: {b['score']:.1f}/100, {b['score_1to5']:.2f} on 1..5 (detector {face['score']:.2f})"
    return f"Face {index + 1}: detector confidence {face['score']:.2f}"


def caption(faces: list[dict], heatmap: bool, more_faces: bool, max_faces: int) -> str:
    """The reply photo's caption: one line per face, then notes; cut to Telegram's limit."""
    head = f"{len(faces)} face{'s' if len(faces) != 1 else ''}"
    if more_faces:
        head = f"More than {max_faces} face(s) found: the {max_faces} most confident are scored"
    lines = [head + ("" if more_faces else ":")] + [face_line(i, f) for i, f in enumerate(faces)]
    lines.append("Heatmap shown (/heatmap off to hide)." if heatmap else "Heatmap: /heatmap on")
    lines.append("The score reflects one dataset's raters, not a truth about anyone: /about")
    text = "\n".join(lines)
    return text if len(text) <= CAPTION_MAX_CHARS else text[:CAPTION_MAX_CHARS - 1] + "…"


# --- /about ---------------------------------------------------------------------------------------
def _metrics(run_dir: str | None) -> tuple[dict, dict]:
    """(run.json, held-out metrics) of a run folder; evaluate.py's numbers when present."""
    if not run_dir:
        return {}, {}
    run = Path(run_dir)
    info = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
    metrics = info.get("metrics") or {}
    evaluated = run / "eval" / "metrics.json"
    if evaluated.is_file():
        metrics = json.loads(evaluated.read_text()).get("metrics") or metrics
    return info, metrics


def _beauty_metrics(m: dict) -> str:
    if "pc" not in m:
        return "no held-out metrics recorded for this model"
    return (f"Pearson correlation {m['pc']:.3f} with the raters' mean, MAE {m['mae']:.3f}, "
            f"RMSE {m['rmse']:.3f} on the 1..5 scale ({m.get('n', '?')} held-out faces)")


def _keypoint_metrics(m: dict, info: dict, mirror: bool) -> str:
    """The held-out NME of what the bot runs: mirror-averaged (run.json metrics_mirror) when
    ``mirror``, else the model alone (evaluate.py's ground_truth_crop or run.json metrics)."""
    averaged = info.get("metrics_mirror") or {}
    if mirror and "nme_mean" in averaged:
        m, how = averaged, "with test-time mirror averaging, as I answer"
    else:
        m = m.get("ground_truth_crop", m)
        how = ("the model alone; I average each face with its mirror, for which no numbers are recorded"
               if mirror else "the model alone, as I answer")
    if "nme_mean" not in m:
        return "no held-out metrics recorded for this model"
    return (f"normalised mean error {m['nme_mean']:.4f} (inter-ocular; {how}), failure rate "
            f"{100 * m.get('failure_rate', 0.0):.1f} % ({m.get('n', '?')} held-out faces)")


# Display names of run.json "backbone" values (facepack/models/beauty.py BACKBONES, keypoints.py
# BACKBONES and LITE_BACKBONE); an unknown name is shown as recorded.
BACKBONE_NAMES = {"resnet50": "ResNet50", "mobilenet_v2": "MobileNetV2", "mobilenet_v3_small": "MobileNetV3-Small",
                  "efficientnet_b0": "EfficientNet-B0", "kpnet": "kpnet (a small CNN)"}


def backbone_name(name) -> str:
    """A run's backbone as people call it: "lite0" / "efficientnet_lite0" -> "EfficientNet-Lite0"."""
    text = str(name or "?")
    lite = text.removeprefix("efficientnet_")
    if lite.startswith("lite") and lite[4:].isdigit():
        return f"EfficientNet-Lite{lite[4:]}"
    return BACKBONE_NAMES.get(text, text)


def about(runs: dict, mirror_keypoints: bool) -> str:
    """/about for a pipeline's runs ({"beauty": run_dir, "keypoints": run_dir}); ``mirror_keypoints``:
    whether the bot's analyses mirror-average the keypoints (which held-out NME to quote)."""
    b_info, b_metrics = _metrics(runs.get("beauty"))
    k_info, k_metrics = _metrics(runs.get("keypoints"))
    b_data = b_info.get("dataset") or {}
    k_data = k_info.get("dataset") or {}
    k_name = k_data.get("name", "?")
    points = k_info.get("num_points")
    k_points = f" ({points} points)" if points and f"{points} points" not in k_name else ""
    return "\n\n".join([
        "What the score is: the beauty model's estimate of how the raters of "
        f"{b_data.get('name', 'its training dataset')} would rate this face on average, as 0..100 "
        "(and 1..5, the raters' scale). It is not a truth about anyone: it carries the taste and "
        "biases of one group of raters, is not calibrated for other populations, ages, poses, "
        "lighting or image quality, and must not be used to judge, rank or decide anything about people.",
        f"Beauty model: {backbone_name(b_info.get('backbone'))} at {b_info.get('input_size', '?')} px, trained on "
        f"{b_data.get('name', '?')}; {_beauty_metrics(b_metrics)}. Terms: {b_data.get('terms', 'see the model card')}.",
        f"Keypoint model{k_points}: {backbone_name(k_info.get('backbone'))} at {k_info.get('input_size', '?')} px, "
        f"trained on {k_name}; "
        f"{_keypoint_metrics(k_metrics, k_info, mirror_keypoints)}. Terms: {k_data.get('terms', 'see the model card')}.",
        "Faces are found by MTCNN (the mtcnn package's weights, MIT licence).",
        "Your photo: the facepack web page and npm package analyse photos on your own device. This bot "
        "is the one part of facepack where photos leave your device: Telegram delivers them to the "
        "machine that runs the bot. There each photo is processed in memory, answered, and dropped; "
        "the bot does not store photos, results or who sent them. Telegram keeps the chat itself "
        "under its own terms; delete the messages there if you want them gone.",
    ])
