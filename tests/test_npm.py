"""The npm package: pack it, install the tarball into an empty project, run the README example
under Node and compare its numbers with the Keras models (facepack/export/npm.py).

`npm install` runs with --offline first (the @tensorflow packages come from the npm cache filled
when the repo's node_modules was installed), then falls back to the registry.
"""

import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from export_support import NODE, calibrated_run
from facepack.export import build_bundle
from facepack.export.npm import build_npm_package, check_name_version

NPM = shutil.which("npm")
pytestmark = [pytest.mark.node, pytest.mark.slow,
              pytest.mark.skipif(NODE is None or NPM is None, reason="node/npm are not installed")]
ROOT = Path(__file__).resolve().parent.parent
KEYPOINT_TOL = 1e-4  # crop units (0..1), relative to max |reference| when larger than 1
SCORE_TOL_POINTS = 1e-3  # beauty score, points on 0..100


def pattern(shape) -> np.ndarray:
    """The README example's input: value (i * 7) % 256 at flat index i (exact in float32)."""
    n = int(np.prod(shape))
    return ((np.arange(n) * 7) % 256).astype(np.float32).reshape(shape)


def install(tarball: Path, project: Path) -> None:
    project.mkdir(parents=True)
    (project / "package.json").write_text(json.dumps({"name": "t", "private": True, "type": "module"}))
    errors = []
    for mode in ("--offline", "--prefer-offline"):
        proc = subprocess.run([NPM, "install", mode, "--no-audit", "--no-fund", "--ignore-scripts", str(tarball)],
                              cwd=project, capture_output=True, text=True, timeout=600)
        if proc.returncode == 0:
            return
        errors.append(proc.stderr[-1500:])
    raise RuntimeError("npm install failed:\n" + "\n".join(errors))


def readme_example(package_dir: Path, index: int = 0) -> str:
    text = (package_dir / "README.md").read_text()
    blocks = re.findall(r"```js\n(.*?)```", text, re.S)
    assert blocks, "README.md has no ```js example"
    return blocks[index]


def run_example(project: Path, code: str, *args: str) -> list[dict]:
    (project / "example.mjs").write_text(code)
    proc = subprocess.run([NODE, "example.mjs", *args], cwd=project, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def face_package(tmp_path_factory):
    """(tarball, package folder, keypoint model, beauty model) for a calibrated face bundle."""
    import keras

    from facepack.runs import load_run

    root = tmp_path_factory.mktemp("npm")
    kp = calibrated_run("keypoints", root / "kp")
    beauty = calibrated_run("beauty", root / "beauty", backbone="mobilenet_v2", input_size=64)
    build_bundle(root / "models", beauty_run=beauty, keypoints_run=kp, log=None)
    tarball = build_npm_package(root / "models", root / "dist" / "npm", name="facepack-test",
                                version="1.2.3", log=None)
    return tarball, root / "dist" / "npm", load_run(kp, keras)[0], load_run(beauty, keras)[0]


def test_package_json_and_contents(face_package):
    tarball, folder, _, _ = face_package
    assert tarball.name == "facepack-test-1.2.3.tgz"
    pkg = json.loads((folder / "package.json").read_text())
    assert pkg["name"] == "facepack-test" and pkg["version"] == "1.2.3" and pkg["type"] == "module"
    assert pkg["dependencies"] == {"@tensorflow/tfjs": "4.22.0", "@tensorflow/tfjs-backend-wasm": "4.22.0",
                                   "@jsquash/jpeg": "1.6.0", "pngjs": "7.0.0"}
    assert set(pkg["exports"]["."]) == {"node", "browser", "import", "require", "default"}
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    for needed in ("package/index.js", "package/index.d.ts", "package/README.md", "package/example.mjs",
                   "package/lib/index.js", "package/lib/generic.js", "package/models/manifest.json",
                   "package/models/keypoints/model.json", "package/models/mtcnn_pnet/model.json"):
        assert needed in names, needed
    assert not any(n.endswith((".node", ".py")) for n in names)
    readme = (folder / "README.md").read_text()
    assert "non-commercial research only" in readme and "MIT" in readme
    assert "synthetic" in readme  # the test models are untrained: the README says so


def test_readme_example_runs_from_installed_tarball(face_package, tmp_path):
    tarball, folder, kp_model, beauty_model = face_package
    project = tmp_path / "proj"
    install(tarball, project)
    assert (project / "node_modules" / "facepack-test" / "models" / "manifest.json").is_file()
    out = run_example(project, readme_example(folder, 1))  # "Any bundled model by name"
    result = {k: v for line in out for k, v in line.items()}
    kx = pattern((1, 96, 96, 3))
    ref_kp = np.asarray(kp_model(kx))[0]
    assert np.abs(ref_kp).max() > 0.1  # calibrated: a real comparison
    np.testing.assert_allclose(result["keypoints"], ref_kp, atol=KEYPOINT_TOL * max(1, np.abs(ref_kp).max()))
    probs = np.asarray(beauty_model(pattern((1, 64, 64, 3))))[0].astype(np.float64)
    assert abs(result["beauty"] - float(probs @ np.arange(probs.size))) <= SCORE_TOL_POINTS
    # load(dir, name) alone (no loadModel / analyzer before it) starts the default backend too: its
    # predict() threw "backend 'wasm' has not yet been initialized"; the same keypoints as loadModel.
    generic = ("import { load } from 'facepack-test';\n"
               "const m = await load('node_modules/facepack-test/models', 'keypoints');\n"
               "const data = Float32Array.from({ length: 96 * 96 * 3 }, (_, i) => (i * 7) % 256);\n"
               "const y = m.predict({ data, shape: [1, 96, 96, 3] });\n"
               "console.log(JSON.stringify({ keypoints: Array.from(await y.data()) })); y.dispose(); m.dispose();\n")
    (loaded,) = run_example(project, generic)
    np.testing.assert_allclose(loaded["keypoints"], ref_kp.ravel(), atol=KEYPOINT_TOL * max(1, np.abs(ref_kp).max()))
    # The Node example on a photo file (README block 0; the faces' numbers: test_npm_bundlers.py)
    from PIL import Image
    Image.new("RGB", (80, 60), (128, 128, 128)).save(project / "grey.png")
    (photo,) = run_example(project, readme_example(folder, 0), "grey.png")
    assert photo["backend"] == "wasm" and photo["reason"].startswith("Node")
    assert photo["faces"] == []  # a flat grey picture
    proc = subprocess.run([NODE, "-e", "require('facepack-test').createFaceAnalyzer()"
                           ".then((a) => a.analyzeFile('grey.png')).then((r) => console.log(JSON.stringify(r.faces)))"],
                          cwd=project, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr[-2000:]  # require() works

    # JPEG files: the same pixels as PIL (what predict.py and the parity tests decode) and the
    # browsers: libjpeg-turbo's decoder; a pure-JS one differed by up to 42 grey levels (4:2:0).
    from PIL import ImageOps

    from conftest import FIXTURES
    shutil.copy(FIXTURES / "einstein.jpg", project / "einstein.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the EXIF orientation is applied as PIL's exif_transpose
    Image.open(FIXTURES / "astronaut.png").convert("RGB").save(project / "rotated.jpg", quality=83, subsampling=2,
                                                               exif=exif.tobytes())
    script = ("import { readImageFile } from 'facepack-test'; import { writeFileSync } from 'node:fs';\n"
              "for (const f of ['einstein.jpg', 'rotated.jpg']) { const im = await readImageFile(f);\n"
              "  writeFileSync(f + '.raw', im.data); console.log(JSON.stringify({f, w: im.width, h: im.height})); }\n")
    (project / "decode.mjs").write_text(script)
    proc = subprocess.run([NODE, "decode.mjs"], cwd=project, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for line in proc.stdout.splitlines():
        info = json.loads(line)
        want = np.asarray(ImageOps.exif_transpose(Image.open(project / info["f"])).convert("RGB"))
        got = np.fromfile(project / (info["f"] + ".raw"), np.uint8)
        assert (info["h"], info["w"]) == want.shape[:2] and got.size == want.size // 3 * 4, info
        np.testing.assert_array_equal(got.reshape(info["h"], info["w"], 4)[..., :3], want, err_msg=info["f"])
    # Over the pixel limit (the page's 108 MP): refused from the header, before any decoding.
    import struct
    import zlib

    jpeg = bytearray((project / "einstein.jpg").read_bytes())
    sof = next(i for i in range(2, len(jpeg) - 9) if jpeg[i] == 0xFF and jpeg[i + 1] in (0xC0, 0xC1, 0xC2))
    jpeg[sof + 5:sof + 9] = struct.pack(">HH", 10000, 12000)  # height, width: 120 MP
    (project / "huge.jpg").write_bytes(bytes(jpeg))
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    (project / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
                                       + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))
    # A JPEG cut short is refused as by PIL and the page (libjpeg alone only warns "Premature end of
    # JPEG file" and fills the rest with grey); a non-image and a missing file carry err.code too.
    whole = (project / "einstein.jpg").read_bytes()
    (project / "cut.jpg").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(OSError, match="truncated"):
        Image.open(project / "cut.jpg").load()
    (project / "notes.txt").write_text("not a photo")
    files = ["huge.jpg", "huge.png", "cut.jpg", "notes.txt", "missing.jpg"]
    check = ("import { readImageFile } from 'facepack-test';\n"
             f"for (const f of {json.dumps(files)}) {{ try {{ await readImageFile(f); console.log('decoded'); }}\n"
             "  catch (e) { console.log(JSON.stringify({code: e.code, message: e.message})); } }\n")
    (project / "huge.mjs").write_text(check)
    proc = subprocess.run([NODE, "huge.mjs"], cwd=project, capture_output=True, text=True, timeout=120)
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["code"] for r in results] == ["image-too-large"] * 2 + ["corrupt-image", "not-image", "ENOENT"], \
        proc.stdout + proc.stderr[-2000:]
    assert "12000 x 10000" in results[0]["message"] and "30000 x 30000" in results[1]["message"]
    assert results[2]["message"].startswith("cut.jpg: not a readable image (the file is truncated"), results[2]
    assert all("\n" not in r["message"] for r in results) and "Premature end" not in proc.stderr, proc.stderr[-2000:]


def test_user_model_package(tmp_path):
    """convert/to_tfjs.py --model --name --npm: a generic package whose example equals Keras."""
    import keras

    keras.utils.set_random_seed(5)
    inp = keras.Input((12, 12, 3), name="x")
    y = keras.layers.Conv2D(6, 3, activation="hard_silu", name="c")(inp)
    y = keras.layers.GlobalAveragePooling2D(name="g")(y)
    y = keras.layers.Dense(3, activation="softmax", name="d")(y)
    model = keras.Model(inp, y)
    path = tmp_path / "mine.keras"
    model.save(path)
    sys.path.insert(0, str(ROOT / "convert"))
    try:
        import to_tfjs
    finally:
        sys.path.pop(0)
    code = to_tfjs.main(["--model", str(path), "--name", "mine", "--out", str(tmp_path / "bundle"),
                         "--npm", str(tmp_path / "dist" / "npm"), "--npm-version", "0.0.1"])
    assert code == 0
    tarball = tmp_path / "dist" / "mine-0.0.1.tgz"
    assert tarball.is_file()
    project = tmp_path / "proj"
    install(tarball, project)
    out = run_example(project, readme_example(tmp_path / "dist" / "npm"))
    assert out[0]["inputs"] == ["x"]  # MODEL_SPECS
    assert [(o["name"], o["shape"]) for o in out[0]["outputs"]] == [("d", [1, 3])]
    got = np.asarray(out[0]["outputs"][0]["first"])
    np.testing.assert_allclose(got, np.asarray(model(pattern((1, 12, 12, 3))))[0], atol=1e-5)


@pytest.mark.parametrize("name,version,flag", [("Bad Name", "1.0.0", "--npm-name"), ("ok", "1.0", "--npm-version")])
def test_bad_name_or_version_names_the_flag(name, version, flag):
    with pytest.raises(ValueError, match=flag):
        check_name_version(name, version)
