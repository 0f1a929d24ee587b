"""The face-attributes model: a beauty backbone -> global average pooling -> Dense(K) sigmoid.

One independent probability per attribute (CelebA: K = 40), input raw RGB 0..255 (the
backbone's normalisation is the model's first layer, facepack/models/common.py). The backbones,
their normalisation and packaged weight sets are the beauty model's (facepack/models/beauty.py,
importers.py): the model is the beauty graph up to its pooled features with another head, so
it exports through the same bridge. An attribute is "on" when its probability reaches its
decision threshold, chosen per attribute on the validation part (``choose_thresholds``).

Also here: the losses (class-weighted binary cross-entropy, focal loss), the thresholds, the
metrics people report for CelebA (mean accuracy; macro precision, recall, F1; each per
attribute), the baselines to compare with, and ``attribute_results`` (the named result the JS
twin, static/facepack/attributes.js, returns).
"""

from __future__ import annotations

import numpy as np

from facepack.models.beauty import FEATURES_LAYER, POOL_LAYER, build_beauty_model
from facepack.models.common import input_norm

ATTRIBUTES_LAYER = "attributes"  # the output layer: (N, K) probabilities
MAX_POS_WEIGHT = 20.0  # cap of the positive-class weight n_neg / n_pos (CelebA's Bald: 0.02 -> 49)
FOCAL_GAMMA = 2.0  # focusing exponent of the focal loss (Lin et al., 2017)
THRESHOLD_GRID = np.round(np.linspace(0.02, 0.98, 49), 4)  # candidate decision thresholds, probability
THRESHOLD_METHODS = ("f1", "prior", "0.5")  # see choose_thresholds
# "small_cnn": (filters, stride) of its 3x3 convolutions (ReLU, no BatchNormalization), then global
# MAX pooling (an attribute present anywhere fires; average pooling dilutes a small mark 100-fold):
# a light backbone that trains from scratch in seconds on CPU (the synthetic preset and the tests).
SMALL_CNN = ((16, 1), (32, 2), (64, 2), (64, 1))
BACKBONES = ("small_cnn",) + tuple(__import__("facepack.spec", fromlist=["BEAUTY"]).BEAUTY["backbones"])


def build_attributes_model(keras, n_attributes: int, backbone: str = "mobilenet_v2", input_size: int = 128,
                           weights=None, dropout: float = 0.0, alpha: float = 1.0, name: str = "attributes"):
    """Build the attributes model with ``keras`` (Keras 3 or tf_keras): image (N, S, S, 3) raw
    RGB 0..255 -> (N, n_attributes) sigmoid probabilities, layer ``ATTRIBUTES_LAYER``.

    backbone, input_size, weights, dropout, alpha: as facepack/models/beauty.py:build_beauty_model
    (which raises ValueError naming the flag on a bad value; importers.ImporterError when a
    weight package is missing). Layer names are the beauty model's up to the pooled features,
    so a beauty run's backbone weights can be copied in by name (common.copy_weights_by_name).
    """
    if not isinstance(n_attributes, int) or n_attributes < 1:
        raise ValueError(f"n_attributes must be a positive integer, got {n_attributes!r}")
    if backbone == "small_cnn":
        return _small_cnn(keras, n_attributes, input_size, weights, dropout, name)
    base = build_beauty_model(keras, backbone, input_size, weights=weights, dropout=dropout, alpha=alpha)
    names = [layer.name for layer in base.layers]
    y = base.get_layer("head_dropout" if "head_dropout" in names else POOL_LAYER).output
    out = keras.layers.Dense(n_attributes, activation="sigmoid", name=ATTRIBUTES_LAYER)(y)
    return keras.Model(base.input, out, name=f"{name}_{backbone}")


def _small_cnn(keras, n_attributes: int, input_size: int, weights, dropout: float, name: str):
    """SMALL_CNN backbone with the beauty model's layer names (input_norm .. features, pool)."""
    if weights is not None:
        raise ValueError(f"--weights for --backbone small_cnn must be none (it has no pretrained weights), got {weights!r}")
    if not isinstance(input_size, int) or input_size < 16:
        raise ValueError(f"--input-size must be an integer >= 16, got {input_size!r}")
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = input_norm(keras, inputs, "tf")
    for i, (filters, stride) in enumerate(SMALL_CNN, start=1):
        x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", activation="relu", name=f"conv{i}")(x)
    y = keras.layers.GlobalMaxPooling2D(name=POOL_LAYER)(keras.layers.Activation("linear", name=FEATURES_LAYER)(x))
    if dropout > 0:
        y = keras.layers.Dropout(dropout, name="head_dropout")(y)
    out = keras.layers.Dense(n_attributes, activation="sigmoid", name=ATTRIBUTES_LAYER)(y)
    return keras.Model(inputs, out, name=f"{name}_small_cnn")


# --- Class imbalance and losses --------------------------------------------------------------------
def positive_weights(labels: np.ndarray, cap: float = MAX_POS_WEIGHT) -> np.ndarray:
    """(N, K) 0/1 training labels -> (K,) float32 weight of the positive term, n_neg / n_pos per
    attribute clipped to [1 / cap, cap] (an attribute without positives gets ``cap``)."""
    labels = np.asarray(labels, dtype=np.float64)
    if labels.ndim != 2 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty (N, K) 0/1 array, got shape {labels.shape}")
    pos = labels.sum(axis=0)
    neg = len(labels) - pos
    with np.errstate(divide="ignore"):
        ratio = np.where(pos > 0, neg / np.maximum(pos, 1), cap)
    return np.clip(ratio, 1.0 / cap, cap).astype(np.float32)


def make_loss(keras, kind: str = "bce", pos_weight=None, gamma: float = FOCAL_GAMMA):
    """A Keras loss for (N, K) 0/1 labels and (N, K) probabilities, averaged over attributes.

    kind "bce": binary cross-entropy, the positive term times ``pos_weight`` ((K,) or None);
    "focal": focal loss (1 - p_t)^gamma * BCE with the same positive weights (alpha-balancing).
    """
    if kind not in ("bce", "focal"):
        raise ValueError(f"--loss must be bce or focal, got {kind!r}")
    ops = keras.ops
    w = None if pos_weight is None else np.asarray(pos_weight, dtype=np.float32)
    eps = 1e-7

    def attribute_loss(y_true, y_pred):
        y_true = ops.cast(y_true, "float32")
        p = ops.clip(y_pred, eps, 1.0 - eps)
        pos = -y_true * ops.log(p)
        neg = -(1.0 - y_true) * ops.log(1.0 - p)
        if kind == "focal":
            pos = pos * ops.power(1.0 - p, gamma)
            neg = neg * ops.power(p, gamma)
        if w is not None:
            pos = pos * ops.convert_to_tensor(w)
        return ops.mean(pos + neg, axis=-1)

    attribute_loss.__name__ = f"{kind}_loss"
    return attribute_loss


# --- Thresholds and metrics (numpy) -------------------------------------------------------------------
def _counts(pred: np.ndarray, true: np.ndarray):
    tp = (pred & true).sum(axis=0).astype(np.float64)
    fp = (pred & ~true).sum(axis=0).astype(np.float64)
    fn = (~pred & true).sum(axis=0).astype(np.float64)
    tn = (~pred & ~true).sum(axis=0).astype(np.float64)
    return tp, fp, fn, tn


def _f1(tp, fp, fn):
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def choose_thresholds(probs, labels, method: str = "f1", train_rates=None) -> np.ndarray:
    """(K,) decision thresholds from validation probabilities and labels ((N, K) each).

    method "f1": per attribute the THRESHOLD_GRID value with the highest validation F1 (ties: the
    one nearest 0.5; an attribute whose validation part has no positives keeps 0.5);
    "prior": threshold rescaling, the attribute's training positive rate (``train_rates``, (K,));
    "0.5": 0.5 for all.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"--thresholds must be one of {list(THRESHOLD_METHODS)}, got {method!r}")
    k = probs.shape[1]
    if method == "0.5":
        return np.full(k, 0.5)
    if method == "prior":
        if train_rates is None:
            raise ValueError("--thresholds prior needs the training positive rates")
        return np.clip(np.asarray(train_rates, dtype=np.float64), THRESHOLD_GRID[0], THRESHOLD_GRID[-1])
    if probs.shape != labels.shape:
        raise ValueError(f"probabilities {probs.shape} and labels {labels.shape} must have the same shape")
    scores = np.stack([_f1(*_counts(probs >= t, labels)[:3]) for t in THRESHOLD_GRID])  # (T, K)
    out = np.full(k, 0.5)
    for j in range(k):
        if labels[:, j].any():
            best = np.flatnonzero(scores[:, j] >= scores[:, j].max() - 1e-12)
            out[j] = THRESHOLD_GRID[best[np.argmin(np.abs(THRESHOLD_GRID[best] - 0.5))]]
    return out


def attribute_metrics(pred, labels, names) -> dict:
    """(N, K) 0/1 decisions and labels -> {mean_accuracy, macro_precision, macro_recall, macro_f1,
    n, per_attribute: {name: {accuracy, precision, recall, f1, positives, predicted}}}.

    Precision of an attribute never predicted on, and recall of one without positives, count as 0
    (so a model that says "off" everywhere scores macro F1 = 0).
    """
    pred = np.asarray(pred).astype(bool)
    true = np.asarray(labels).astype(bool)
    if pred.shape != true.shape or pred.shape[1] != len(names):
        raise ValueError(f"decisions {pred.shape}, labels {true.shape} and {len(names)} names disagree")
    tp, fp, fn, tn = _counts(pred, true)
    acc = (tp + tn) / max(len(true), 1)
    prec = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
    rec = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0)
    f1 = _f1(tp, fp, fn)
    per = {name: {"accuracy": float(acc[j]), "precision": float(prec[j]), "recall": float(rec[j]),
                  "f1": float(f1[j]), "positives": int(tp[j] + fn[j]), "predicted": int(tp[j] + fp[j])}
           for j, name in enumerate(names)}
    return {"mean_accuracy": float(acc.mean()), "macro_precision": float(prec.mean()),
            "macro_recall": float(rec.mean()), "macro_f1": float(f1.mean()), "n": int(len(true)),
            "per_attribute": per}


def baselines(train_labels, labels, names) -> dict:
    """Metrics of label-blind predictors on ``labels``: "all_negative" (every attribute off: macro
    F1 0) and "majority" (each attribute's majority class on the training part)."""
    train = np.asarray(train_labels, dtype=np.float64)
    true = np.asarray(labels)
    majority = np.broadcast_to(train.mean(axis=0) > 0.5, true.shape)
    return {"all_negative": _summary(attribute_metrics(np.zeros_like(true), true, names)),
            "majority": _summary(attribute_metrics(majority, true, names))}


def _summary(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "per_attribute"}


def attribute_results(probs, names, thresholds) -> list[dict]:
    """(N, K) probabilities -> per face {name: {probability, on}} (on: probability >= threshold).
    Mirrors static/facepack/attributes.js:attributeResults."""
    probs = np.asarray(probs, dtype=np.float64)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(names) or len(thresholds) != len(names):
        raise ValueError(f"probabilities {probs.shape}, {len(names)} names and {len(thresholds)} thresholds disagree")
    return [{n: {"probability": float(p), "on": bool(p >= t)} for n, p, t in zip(names, row, thresholds)}
            for row in probs]
