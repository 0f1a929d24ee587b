"""keras.layers.Hashing on int ids exports as a layers model (bridge._hashing writes tf_keras' Hashing;
static/facepack/layers/hashing.js runs it in TF.js), bit-exact with Keras on the TensorFlow backend.
Before, the bridge refused every Hashing ("string/vocabulary preprocessing has no TF.js layer") and
the graph path failed too (TF.js has no AsString op), so no model with a Hashing exported.

Two levels:
  * the hash functions themselves (tests/js/hashing_check.mjs) against TensorFlow: the full 64-bit
    FarmHash Fingerprint64 / SipHash-2-4 of the decimal strings of 100k+ int32 ids (0, +-1,
    INT32_MIN/MAX, every digit count, random ids) and of random byte strings of every length class
    of farmhash (0-16, 17-32, 33-64, > 64 bytes), and hashBin's unsigned 64-bit mod for several
    num_bins against tf.strings.to_hash_bucket_fast/strong;
  * exported models (cpu and wasm, one Node process): mask_value, salt (pair and single), int64
    inputs, one_hot/multi_hot/count, each matching Keras on the probe and a sample with negatives,
    INT32_MIN/MAX and the mask value; and 20k random ids through two exported models, compared id by id.
"""

from __future__ import annotations

import numpy as np
import pytest

from export_support import NODE, export_cases

pytestmark = [pytest.mark.node, pytest.mark.skipif(NODE is None, reason="node is not installed")]

BACKENDS = ("cpu", "wasm")
I32 = np.iinfo(np.int32)
# ids every test sees: the edges of int32 and of each digit count, both signs
EDGES = np.array([0, 1, -1, 9, 10, -9, -10, 99, 100, 12345678, -12345678, 999999999, 1000000000, -1000000000,
                  I32.max, I32.max - 1, I32.min, I32.min + 1], np.int64)
SALT = [133, 137]
BINS = [1, 2, 3, 7, 1000, 65537, 2**31 - 1]
SAMPLE = np.array([[0, 1, -5, I32.max, I32.min, 99999], [7, 7, 0, -1, 123456789, 42],
                   [-2147483647, 1000000000, 5, 0, -42, 2**30]], np.int32)


def _ids(n_random: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wide = rng.integers(I32.min, I32.max, n_random, endpoint=True, dtype=np.int64)
    # small ids too (1-4 digits: the short-string branches of farmhash), both signs
    small = rng.integers(-10000, 10000, n_random // 10, dtype=np.int64)
    return np.concatenate([EDGES, wide, small]).astype(np.int32)


def _tf_hash64(strings, salt=None) -> np.ndarray:
    """TensorFlow's full unsigned 64-bit hash of each string, rebuilt from two bucketings: h mod
    (2^63 - 1) and h mod 2 (h < 2^64, so h is r or r + 2^63 - 1, whose parities differ)."""
    import tensorflow as tf

    m = 2**63 - 1
    if salt is None:
        r = tf.strings.to_hash_bucket_fast(strings, m).numpy().astype(np.uint64)
        p = tf.strings.to_hash_bucket_fast(strings, 2).numpy().astype(np.uint64)
    else:
        r = tf.strings.to_hash_bucket_strong(strings, m, key=salt).numpy().astype(np.uint64)
        p = tf.strings.to_hash_bucket_strong(strings, 2, key=salt).numpy().astype(np.uint64)
    return np.where(r % np.uint64(2) == p, r, r + np.uint64(m))


@pytest.fixture(scope="module")
def js_hashes(tmp_path_factory):
    """Runs hashing_check.mjs once: {"ids": [(ids, salt)], "dir": out, "result": its JSON}."""
    from jsharness import run_node

    out = tmp_path_factory.mktemp("hashing")
    runs = [(_ids(100_000, 1), None, BINS), (_ids(30_000, 2), SALT, [1, 3, 1000, 2**31 - 1]),
            (_ids(10_000, 3), [5, 5], [7])]
    job = {"out": str(out), "runs": [], "salts": [SALT, [0, 0], [2**53, 1]], "strings": []}
    for r, (ids, salt, bins) in enumerate(runs):
        path = out / f"ids{r}.i32"
        ids.astype("<i4").tofile(path)
        job["runs"].append({"ids": str(path), "salt": salt, "bins": bins})
    rng = np.random.default_rng(4)
    strings = [bytes(rng.integers(0, 256, n, dtype=np.uint8)) for n in list(range(0, 131)) + [200, 255, 256, 257, 1000]]
    job["strings"] = [s.hex() for s in strings]
    result = run_node("hashing_check.mjs", job, timeout=120)
    return {"runs": runs, "dir": out, "result": result, "strings": strings}


def _js64(js_hashes, r: int) -> np.ndarray:
    hi = np.fromfile(js_hashes["dir"] / f"{r}_hi.u32", "<u4").astype(np.uint64)
    lo = np.fromfile(js_hashes["dir"] / f"{r}_lo.u32", "<u4").astype(np.uint64)
    return (hi << np.uint64(32)) | lo


@pytest.mark.parametrize("r", [0, 1, 2], ids=["farmhash", "siphash_133_137", "siphash_single_5"])
def test_64_bit_hash_of_int32_ids_matches_tensorflow(js_hashes, r):
    import tensorflow as tf

    ids, salt, _ = js_hashes["runs"][r]
    strings = tf.strings.as_string(tf.constant(ids, tf.int32))
    assert strings.numpy()[:3].tolist() == [b"0", b"1", b"-1"]
    want = _tf_hash64(strings, salt)
    got = _js64(js_hashes, r)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{bad.size} of {ids.size} ids differ, first: {ids[bad[:5]].tolist()}"


@pytest.mark.parametrize("r", [0, 1, 2], ids=["farmhash", "siphash_133_137", "siphash_single_5"])
def test_bins_match_tensorflow_bucketing(js_hashes, r):
    """hashBin(id, n): the unsigned 64-bit mod, for small, prime and int32-max bin counts."""
    import tensorflow as tf

    ids, salt, bins = js_hashes["runs"][r]
    strings = tf.strings.as_string(tf.constant(ids, tf.int64))  # an int64 id within int32 prints alike
    for n in bins:
        want = (tf.strings.to_hash_bucket_fast(strings, n) if salt is None
                else tf.strings.to_hash_bucket_strong(strings, n, key=salt)).numpy()
        got = np.fromfile(js_hashes["dir"] / f"{r}_bins_{n}.i32", "<i4")
        assert np.array_equal(got, want), (n, int(np.sum(got != want)))


def test_hash_of_byte_strings_of_every_length_class_matches_tensorflow(js_hashes):
    """farmhash's four length branches (0-16, 17-32, 33-64, > 64 bytes with its 64-byte loop) and
    SipHash's packets, on random bytes: decimal ids only reach 20 bytes, the rest is the algorithm."""
    strings = js_hashes["strings"]
    result = js_hashes["result"]["strings"]
    assert [int(s["farm"]) for s in result] == _tf_hash64(strings).tolist()
    for k, salt in enumerate([SALT, [0, 0], [2**53, 1]]):
        assert [int(s["sip"][k]) for s in result] == _tf_hash64(strings, salt).tolist(), salt


# --- exported models ---------------------------------------------------------------------------

def _input(n=6, dtype="int32"):
    import keras

    return keras.layers.Input((n,), dtype=dtype, name="ids")


def _embedded(hashing, ids):
    """ids -> Hashing -> Embedding -> mean pooling -> Dense; outputs [dense, the bins]."""
    import keras

    L = keras.layers
    bins = hashing(ids)
    x = L.GlobalAveragePooling1D(name="gap")(L.Embedding(hashing.num_bins, 4, name="emb")(bins))
    return keras.Model(ids, [L.Dense(3, name="d")(x), bins])


def _hot(hashing, ids):
    import keras

    y = hashing(ids)
    return keras.Model(ids, [keras.layers.Dense(3, name="d")(y), y])


def _models():
    """{case: (model, sample)}."""
    import keras

    L = keras.layers
    keras.utils.set_random_seed(5)
    return {
        "plain": (_embedded(L.Hashing(num_bins=7, name="hash"), _input()), SAMPLE),
        "mask": (_embedded(L.Hashing(num_bins=5, mask_value=0, name="hash"), _input()), SAMPLE),
        "mask_negative": (_embedded(L.Hashing(num_bins=9, mask_value=-1, name="hash"), _input()), SAMPLE),
        "salt_pair": (_embedded(L.Hashing(num_bins=11, salt=SALT, name="hash"), _input()), SAMPLE),
        "salt_single_mask": (_embedded(L.Hashing(num_bins=4, salt=133, mask_value=7, name="hash"), _input()), SAMPLE),
        "int64_input": (_embedded(L.Hashing(num_bins=13, name="hash"), _input(dtype="int64")), SAMPLE.astype(np.int64)),
        "one_hot": (_hot(L.Hashing(num_bins=6, output_mode="one_hot", name="hash"), _input(1)), SAMPLE[:, :1].copy()),
        "multi_hot_mask": (_hot(L.Hashing(num_bins=6, output_mode="multi_hot", mask_value=0, name="hash"), _input()),
                           SAMPLE),
        "count_salt": (_hot(L.Hashing(num_bins=5, output_mode="count", salt=SALT, name="hash"), _input()), SAMPLE),
    }


CASES = ["plain", "mask", "mask_negative", "salt_pair", "salt_single_mask", "int64_input", "one_hot", "multi_hot_mask",
         "count_salt"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{case: (manifest entry, bundle, model)}, each exported on cpu and wasm in one Node process."""
    return export_cases(_models(), tmp_path_factory.mktemp("hashing_export"), BACKENDS)


@pytest.mark.parametrize("case", CASES)
def test_hashing_is_a_layers_model_matching_keras(exported, case):
    entry, _, _ = exported[case]
    assert entry["format"] == "layers-model", entry["export"]["tried"]
    assert [p["kind"] for p in entry["export"]["probes"]] == ["generated", "sample"]
    for backend in BACKENDS:
        measured = entry["parity"]["backends"][backend]
        # the bins / hot rows are integers: a wrong bin is off by >= 1; the Dense after them: rounding
        assert measured["max_abs_diff"] <= 1e-5, (case, backend, measured)


def test_bins_of_20k_random_ids_match_keras_in_tfjs(exported, tmp_path):
    """Two exported models (FarmHash with mask_value, SipHash with a salt) on 20k random int32 ids
    (and the edges) in TF.js, id by id against Keras' own Hashing layer."""
    from facepack.export.keras_export import keras_outputs
    from facepack.export.node_check import run_node_backends

    ids = _ids(20_000, 9)
    ids = np.concatenate([ids, np.zeros(-ids.size % 6, np.int32)]).reshape(-1, 6)
    for case in ("mask", "salt_pair"):
        _, bundle, model = exported[case]
        want = keras_outputs(model, [ids])[1]
        results = run_node_backends(bundle, BACKENDS, [(case, ids)], tmp_path / case)
        for backend in BACKENDS:
            (got,) = results[backend]
            assert not isinstance(got, Exception), (case, backend, got)
            assert np.array_equal(np.asarray(got[1]).astype(np.int64), want.astype(np.int64)), (
                case, backend, int(np.sum(np.asarray(got[1]) != want)))


def test_masked_ids_map_to_zero_and_the_rest_to_one_plus_the_hash(exported):
    """Keras' rule spelled out: mask_value -> 0, any other id -> 1 + hash mod (num_bins - 1)."""
    import tensorflow as tf

    from facepack.export.keras_export import keras_outputs

    _, _, model = exported["mask"]  # num_bins 5, mask_value 0
    got = keras_outputs(model, [SAMPLE])[1]
    want = 1 + tf.strings.to_hash_bucket_fast(tf.strings.as_string(SAMPLE), 4).numpy()
    assert np.array_equal(got, np.where(SAMPLE == 0, 0, want))


@pytest.mark.parametrize("kwargs, shape, dtype, says", [
    ({}, (3,), "float32", "inputs of dtype float32"),
    ({}, (3,), "string", "inputs of dtype string"),
    (dict(output_mode="multi_hot", sparse=True), (3,), "int32", "sparse=True outputs have no TF.js equivalent"),
    (dict(output_mode="count"), (2, 3), "int32", "output_mode='count' on inputs of rank 3"),
    (dict(salt=[2**53, 1]), (3,), "int32", "integers of magnitude below 2^53"),
])
def test_unsupported_hashing_is_refused_by_name(kwargs, shape, dtype, says):
    import keras
    import tf_keras

    from facepack.export.bridge import BridgeError, to_tf_keras

    x = keras.layers.Input(shape, dtype=dtype, name="x")
    model = keras.Model(x, keras.layers.Hashing(5, name="hash", **kwargs)(x))
    with pytest.raises(BridgeError) as excinfo:
        to_tf_keras(model, tf_keras)
    text = str(excinfo.value)
    assert text.startswith("layer 'hash' (Hashing): ") and says in text and "\n" not in text, text
