"""R/O-Net area patches (static/facepack/ops/area_patches.js) in a reused integral-image buffer.

AreaPatcher.release() hands its 30 MB float64 table (a 1280 x 996 photo) to the next photo's
patcher, as a camera loop goes; the patches must keep every bit they have in fresh memory (and so
stay equal to facepack/detect/mtcnn_detector.py:area_patches, tests/test_parity_crowd.py).
"""
from jsharness import run_node

# Photos [height, width], largest first so that each one's table fits in the previous one's
# buffer (a different width: row 0 and column 0 sit elsewhere and must be zeroed again).
PHOTOS = [[300, 400], [257, 311], [120, 90], [33, 47]]
DIFFERING_VALUES = 0  # float32 patch values whose bits differ from the fresh-memory patches


def test_reused_buffer_gives_the_same_patches_bit_for_bit():
    out = run_node("area_patches_reuse.mjs", {"seed": 20261201, "cases": PHOTOS}, timeout=120)
    cases = out["cases"]
    assert [c["reused"] for c in cases] == [False, True, True, True]
    assert all(c["values"] == 2 * 12 * 24 * 24 * 3 + 12 * 48 * 48 * 3 for c in cases)
    assert [c["differing"] for c in cases] == [DIFFERING_VALUES] * len(PHOTOS)


def test_a_release_after_release_spare_buffers_keeps_nothing():
    """releaseSpareBuffers() (analyzer.dispose()) while a patcher's integral image is in use: its
    release() afterwards drops the table instead of refilling the module-level spare buffer (the
    memory dispose freed stayed held); the next photo's patcher hands its buffer on as before."""
    h, w = PHOTOS[0]
    out = run_node("area_patches_reuse.mjs", {"seed": 7, "cases": [[h, w]]}, timeout=120)
    assert out["release_after_drop"] == {"spare_bytes": 0, "next_photo_spare_bytes": (h + 1) * (w + 1) * 3 * 8}, out
