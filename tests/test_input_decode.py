"""input.js:decodeInput: the float32 values of a {data, width, height} photo come back with its tensor.

analyze() (static/facepack/index.js) uses them instead of reading the photo back from the backend
(`image.data()`: on WASM a copy of the whole photo, 5-8 ms at 1986 x 1545); they must be the
tensor's values bit for bit, so every later stage sees the same numbers as before.
"""
from jsharness import run_node

HEIGHT, WIDTH = 37, 53  # px; odd sizes
DIFFERING_VALUES = 0  # float32 values whose bits differ between `pixels` and `await image.data()`


def test_decoded_pixels_are_the_tensors_values():
    """On WASM, whose data() copies the tensor's values out of the module's memory. (The cpu
    backend's tensor3d keeps the very Float32Array it is given, so there the check could not fail.)"""
    out = run_node("decode_pixels.mjs", {"backend": "wasm", "seed": 1201, "height": HEIGHT, "width": WIDTH},
                   timeout=120)
    cases = {c["name"]: c for c in out["cases"]}
    assert out["leaked"] == 0
    for name in ["rgb_uint8", "rgb_float32", "rgb_array", "rgba_uint8", "rgba_clamped"]:
        assert cases[name]["pixels"], name
        assert cases[name]["shape"] == [HEIGHT, WIDTH, 3], name
        assert cases[name]["values"] == HEIGHT * WIDTH * 3, name
        assert not cases[name]["same"], name  # two arrays compared, not one with itself
        assert cases[name]["differing"] == DIFFERING_VALUES, name
    assert not cases["tensor"]["pixels"]  # a tensor's values stay on the backend (read when needed)
