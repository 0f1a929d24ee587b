"""facepack.data.images.load_rgb: every input kind becomes (H, W, 3) uint8 RGB, by content."""

import io

import numpy as np
import pytest
from PIL import Image

from facepack.data.images import ImageDecodeError, array_to_rgb, load_rgb

RED, BLUE = (220, 20, 30), (10, 40, 230)


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _halves(w=12, h=8) -> np.ndarray:
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2] = RED
    a[:, w // 2:] = BLUE
    return a


def test_rgb_png_round_trips_exactly():
    a = _halves()
    out = load_rgb(_encode(Image.fromarray(a), "PNG"))
    assert out.dtype == np.uint8 and out.shape == (8, 12, 3)
    np.testing.assert_array_equal(out, a)


def test_grayscale_becomes_three_equal_channels():
    g = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    out = load_rgb(_encode(Image.fromarray(g, "L"), "PNG"))
    assert out.shape == (8, 8, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], g)


def test_rgba_is_composited_onto_black():
    """spec.ALPHA_RULE: c -> round(c * alpha / 255), the pixels a browser canvas keeps (tests/test_alpha_decode.py)."""
    a = np.zeros((4, 4, 4), np.uint8)
    a[..., :3] = (100, 150, 200)
    a[..., 3] = 0  # fully transparent: black, as the page sees it
    a[0, 0] = (1, 2, 3, 255)
    a[2, 2] = (100, 150, 200, 128)
    out = load_rgb(_encode(Image.fromarray(a, "RGBA"), "PNG"))
    assert out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out[1, 1], (0, 0, 0))
    np.testing.assert_array_equal(out[0, 0], (1, 2, 3))
    np.testing.assert_array_equal(out[2, 2], (50, 75, 100))  # 100 * 128 / 255 = 50.2, 150 -> 75.3, 200 -> 100.4


def test_rgba_png_named_jpg_is_decoded_by_content(tmp_path):
    a = np.dstack([_halves(), np.full((8, 12), 255, np.uint8)])
    path = tmp_path / "face.jpg"  # the keypoint dataset's quirk: a PNG behind a .jpg name
    Image.fromarray(a, "RGBA").save(path, format="PNG")
    assert path.read_bytes()[:4] == b"\x89PNG"
    np.testing.assert_array_equal(load_rgb(path), a[..., :3])


def test_la_and_palette_with_transparency():
    la = Image.fromarray(np.dstack([np.full((4, 4), 77, np.uint8), np.zeros((4, 4), np.uint8)]), "LA")
    np.testing.assert_array_equal(load_rgb(_encode(la, "PNG"))[2, 2], (0, 0, 0))  # alpha 0: onto black
    la = Image.fromarray(np.dstack([np.full((4, 4), 77, np.uint8), np.full((4, 4), 255, np.uint8)]), "LA")
    np.testing.assert_array_equal(load_rgb(_encode(la, "PNG"))[2, 2], (77, 77, 77))
    p = Image.fromarray(_halves()).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    transparent = p.getpixel((0, 0))  # the palette index of the red half
    out = load_rgb(_encode(p, "PNG", transparency=transparent))
    assert out.shape == (8, 12, 3)
    assert out[0, 0].max() == 0 and np.abs(out[0, 11].astype(int) - BLUE).max() <= 2


def test_exif_orientation_is_applied():
    img = Image.fromarray(_halves(w=20, h=10))  # red left half, blue right half, landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the left half ends on top
    out = load_rgb(_encode(img, "JPEG", exif=exif, quality=95))
    assert out.shape == (20, 10, 3)
    assert np.abs(out[2, 5].astype(int) - RED).max() < 20
    assert np.abs(out[17, 5].astype(int) - BLUE).max() < 20


def test_16bit_png_is_scaled_from_0_65535():
    a = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)  # 257 * (0, 1, 128, 255)
    out = load_rgb(_encode(Image.fromarray(a), "PNG"))
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])


def test_dark_16bit_image_stays_dark():
    a = np.full((4, 4), 200, dtype=np.uint16)  # 200 / 65535: nearly black, not 200 / 255
    out = load_rgb(_encode(Image.fromarray(a), "PNG"))
    assert out.max() <= 1


def test_cmyk_jpeg_gives_the_original_colours():
    cmyk = Image.fromarray(_halves()).convert("CMYK")
    out = load_rgb(_encode(cmyk, "JPEG", quality=95))
    assert out.shape == (8, 12, 3)
    assert np.abs(out[4, 2].astype(int) - RED).max() < 12
    assert np.abs(out[4, 9].astype(int) - BLUE).max() < 12


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ImageDecodeError, match="nope.jpg: no such image file"):
        load_rgb(tmp_path / "nope.jpg")


def test_garbage_and_truncated_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"this is not an image")
    with pytest.raises(ImageDecodeError, match="bad.jpg: not a readable image"):
        load_rgb(bad)
    cut = tmp_path / "cut.jpg"
    rng = np.random.default_rng(0)
    cut.write_bytes(_encode(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")[:400])
    with pytest.raises(ImageDecodeError, match="cut.jpg"):
        load_rgb(cut)


def test_arrays_of_every_supported_shape_and_dtype():
    g = np.full((3, 5), 9, np.uint8)
    assert load_rgb(g).shape == (3, 5, 3)
    assert load_rgb(g[:, :, None]).shape == (3, 5, 3)
    rgba = np.zeros((3, 5, 4), np.uint8)
    rgba[..., 0] = 50
    np.testing.assert_array_equal(load_rgb(rgba)[0, 0], (0, 0, 0))  # alpha 0: onto black (spec.ALPHA_RULE)
    rgba[..., 3] = 255
    np.testing.assert_array_equal(load_rgb(rgba)[0, 0], (50, 0, 0))
    np.testing.assert_array_equal(load_rgb(np.full((2, 2), 65535, np.uint16))[0, 0], (255, 255, 255))
    np.testing.assert_array_equal(load_rgb(np.full((2, 2, 3), 12.6, np.float32))[0, 0], (13, 13, 13))
    with pytest.raises(ImageDecodeError, match="expected an HxW"):
        array_to_rgb(np.zeros((2, 2, 2), np.uint8))
