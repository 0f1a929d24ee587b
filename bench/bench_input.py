"""Is training input-bound here? The tf.data pipeline's images/s against the model's training rate.

    python bench/bench_input.py            # 256 images, 30 input batches, 10 timed steps (about 3 minutes)
    python bench/bench_input.py --quick    # 128 images, 10 input batches, 3 timed steps

For each model the shipped configuration trains:
  beauty     MobileNetV2 alpha 0.75 @ 128 px, Dense(101) softmax, SGD (nesterov, momentum 0.9),
             categorical cross-entropy; data ../shared/datasets/scut-fbp5500-train
  keypoints  kpnet width 32 @ 96 px, Dense(136), AdamW, masked smooth-L1 (facepack.models.keypoints);
             data ../shared/datasets/youtube-faces-keypoints-train
the input pipeline (facepack.data.tfdata.beauty_dataset / keypoint_dataset, training=True:
decode by content, resize/crop, augmentation) is timed alone, uncached (every image decoded, as
in the first epoch) and cached (decoded images in memory, augmentation only: every later epoch),
with facepack.data.tfdata.measure_images_per_second over --batches batches (the set repeated);
then a few train_on_batch steps of the model
(random initial weights, Keras 3 on its configured backend, this CPU) on one real batch.
If a dataset is missing, the generator's synthetic data in the same layout is used (the table
says so). Ratio > 1: the input pipeline outpaces training. JSON: bench/results/input.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SCUT_DATA = common.KEYPOINT_DATA.parent / "scut-fbp5500-train"
BATCH = 32  # the trainers' default batch size
MODELS = {"beauty": {"backbone": "mobilenet_v2", "input_size": 128, "alpha": 0.75},
          "keypoints": {"backbone": "kpnet", "input_size": 96, "width": 32}}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="128 images, 10 input batches and 3 timed steps per model")
    p.add_argument("--images", type=int, help=f"images per input pipeline (default 256; --quick 128; >= {2 * BATCH})")
    p.add_argument("--batches", type=int, help="timed input batches (default 30; --quick 10)")
    p.add_argument("--steps", type=int, help="timed train_on_batch steps after 2 untimed (default 10; --quick 3)")
    p.add_argument("--synthetic", action="store_true", help="use synthetic data even when the datasets are present")
    args = p.parse_args(argv)
    args.images = (128 if args.quick else 256) if args.images is None else args.images
    args.batches = (10 if args.quick else 30) if args.batches is None else args.batches
    args.steps = (3 if args.quick else 10) if args.steps is None else args.steps
    if args.images < 2 * BATCH or args.steps < 1 or args.batches < 1:
        p.error(f"--images must be >= {2 * BATCH}, --steps and --batches >= 1, "
                f"got {args.images}, {args.steps}, {args.batches}")
    return args


def beauty_pipeline(n: int, synthetic: bool, cache: bool):
    """(dataset, data description) of n SCUT images (or synthetic ones)."""
    from facepack.data.scut import load_scut
    from facepack.data.synthetic import ensure_synthetic
    from facepack.data.tfdata import beauty_dataset

    real = SCUT_DATA.is_dir() and not synthetic
    root = SCUT_DATA if real else ensure_synthetic("beauty", n=max(n, 64))
    data = load_scut(root)
    samples = list(data.train)[:n]
    ds = beauty_dataset(samples, MODELS["beauty"]["input_size"], BATCH, training=True, label_sigma=3.0, cache=cache)
    return ds, f"{'SCUT-FBP5500' if real else 'synthetic'} ({len(samples)} images)"


def keypoint_pipeline(n: int, synthetic: bool, cache: bool):
    import numpy as np

    from facepack.data.keypoints import load_keypoints
    from facepack.data.synthetic import ensure_synthetic
    from facepack.data.tfdata import keypoint_dataset

    real = (common.KEYPOINT_DATA / "training_frames_keypoints.csv").is_file() and not synthetic
    data = load_keypoints(common.KEYPOINT_DATA if real else ensure_synthetic("keypoints68", n=max(n, 64)))
    idx = np.arange(min(n, len(data.images)))
    ds = keypoint_dataset(data, idx, MODELS["keypoints"]["input_size"], BATCH, training=True, cache=cache)
    return ds, f"{'YouTube Faces 68' if real else 'synthetic'} ({len(idx)} images)"


def input_rates(make, n: int, synthetic: bool, batches: int) -> dict:
    """{uncached, cached} images/s of the pipeline over ``batches`` batches, and one real batch for the model."""
    from facepack.data.tfdata import measure_images_per_second

    uncached_ds, what = make(n, synthetic, cache=False)
    uncached = measure_images_per_second(uncached_ds.repeat(), batches=batches)
    cached_ds, _ = make(n, synthetic, cache=True)
    for _ in cached_ds:  # first epoch fills the cache
        pass
    cached = measure_images_per_second(cached_ds.repeat(), batches=batches)
    return {"data": what, "uncached": uncached, "cached": cached, "batch": next(iter(cached_ds))}


def build(kind: str):
    """The model and its training compile, as the trainers build it (random weights)."""
    import keras

    if kind == "beauty":
        from facepack.models.beauty import build_beauty_model

        m = MODELS["beauty"]
        model = build_beauty_model(keras, m["backbone"], m["input_size"], weights=None, alpha=m["alpha"])
        model.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9, nesterov=True),
                      loss=keras.losses.CategoricalCrossentropy())
    else:
        from facepack.models.keypoints import build_keypoint_model, masked_keypoint_loss

        m = MODELS["keypoints"]
        model = build_keypoint_model(keras, 68, m["backbone"], m["input_size"], width=m["width"])
        model.compile(optimizer=keras.optimizers.AdamW(2e-3, weight_decay=1e-4), loss=masked_keypoint_loss(keras))
    return model


def train_rate(kind: str, batch, steps: int) -> dict:
    """images/s and ms/step of train_on_batch on ``batch`` (2 untimed steps first)."""
    import numpy as np

    x, y = (np.asarray(t) for t in batch)
    model = build(kind)
    for _ in range(2):
        model.train_on_batch(x, y)
    watch = common.Stopwatch()
    for _ in range(steps):
        model.train_on_batch(x, y)
    ms = watch.lap() / steps
    return {"ms_per_step": ms, "images_per_s": len(x) * 1000.0 / ms, "params": int(model.count_params())}


def main(argv=None) -> dict:
    args = parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    import keras
    import tensorflow as tf

    info = common.machine_info()
    info.update(tensorflow=tf.__version__, keras=keras.__version__, keras_backend=keras.backend.backend())
    rows, out = [], {}
    for kind, make in (("beauty", beauty_pipeline), ("keypoints", keypoint_pipeline)):
        log(f"  {kind}: input pipeline")
        rates = input_rates(make, args.images, args.synthetic, args.batches)
        log(f"  {kind}: {args.steps} training steps")
        train = train_rate(kind, rates.pop("batch"), args.steps)
        out[kind] = {**rates, **train, "model": MODELS[kind]}
        m = MODELS[kind]
        name = (f"beauty MobileNetV2-{m['alpha']}@{m['input_size']}" if kind == "beauty"
                else f"keypoints kpnet{m['width']}@{m['input_size']}")
        rows.append([name, rates["data"], rates["uncached"], rates["cached"], train["images_per_s"],
                     train["ms_per_step"], rates["cached"] / train["images_per_s"]])
    headers = ["model", "data", "input img/s (uncached)", "input img/s (cached)", "train img/s",
               "ms/step", "cached input / train"]
    print(common.machine_line(info) + f", Keras {info['keras']} ({info['keras_backend']})")
    print(f"Batch {BATCH}; input: {args.batches} batches after 1 warm-up batch (the set repeated); "
          f"train: mean of {args.steps} train_on_batch steps after 2 untimed, on one real batch.")
    print(common.format_table(headers, rows))
    path = common.write_json("input", {"machine": info, "args": vars(args), "models": out})
    print(f"JSON: {path.relative_to(common.ROOT)}")
    return out


if __name__ == "__main__":
    main()
