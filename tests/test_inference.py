"""Inference with the shipped photo pack: loading, verification, classification, tiled restoration, routing."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import read_sample

from deblurd.restore.inference import ModelPack, merge_luma, rgb_to_luma, split_luma
from deblurd.restore.manifest import PackError, sha256_of
from deblurd.restore.tflite import TfliteModel


def test_loads_int8_with_integer_io(photo_pack):
    assert photo_pack.runtime == "ai-edge-litert" and photo_pack.precision == "int8"
    assert set(photo_pack.restorers) == {"semi", "heavy"}
    assert photo_pack.classifier.model._in["dtype"] == np.int8
    assert photo_pack.restorers["semi"].model._out["dtype"] == np.int8


def test_classifier_scores_every_class_of_a_crop(photo_pack):
    """The photo pack's classifier is a dense blur mapper: a distribution over the classes for every 8x8 cell."""
    size = photo_pack.classifier.model.input_shape[1]
    scores = photo_pack.classifier.scores(rgb_to_luma(read_sample())[:size, :size])
    assert scores.shape == (size // 8, size // 8, 3) and np.all(np.abs(scores.sum(axis=-1) - 1) < 0.05)
    assert photo_pack.classifier.model_id.startswith("photo/classifier.tflite@")


def test_blur_map_scales_a_small_image_to_the_working_width(photo_pack):
    from deblurd.restore.blur_map import BlurMapper

    tiny = np.random.default_rng(0).random((40, 50), np.float32)
    blur_map = BlurMapper(photo_pack.classifier).map(tiny)
    assert blur_map.work_shape == (512, 640) and blur_map.label() in ("sharp", "semi", "heavy")


@pytest.mark.parametrize("precision", ["int8", "float"])
def test_tiled_restoration_matches_an_untiled_run(photo_pack_dir, precision):
    pack = ModelPack.load(photo_pack_dir, precision, threads=1)
    luma = rgb_to_luma(read_sample())
    for restorer in pack.restorers.values():
        assert luma.shape[0] > restorer.tile_h and luma.shape[1] > restorer.tile_w
        tiled = restorer.restore_working(luma)
        whole = TfliteModel(restorer.model.path, threads=1)
        whole.resize((1, *luma.shape, 1))
        untiled = whole(luma[None, :, :, None])[0, :, :, 0]
        diff = np.abs(np.clip(tiled, 0, 1) - np.clip(untiled, 0, 1))
        assert diff.mean() < 0.003 and np.percentile(diff, 99) < 0.02, (diff.mean(), np.percentile(diff, 99))


def test_restore_keeps_size_at_and_off_working_scale(photo_pack):
    restorer = photo_pack.restorers["semi"]
    rgb = read_sample()
    luma = rgb_to_luma(rgb)
    at_scale = restorer.restore(luma)
    assert at_scale.shape == luma.shape and at_scale.dtype == np.float32 and 0 <= at_scale.min() <= at_scale.max() <= 1
    big = rgb_to_luma(cv2.resize(rgb, (1280, 960), interpolation=cv2.INTER_CUBIC))
    restored_big = restorer.restore(big)
    assert restored_big.shape == (960, 1280)
    correction = cv2.resize(restored_big - big, (640, 480), interpolation=cv2.INTER_AREA)
    expected = restorer.restore_working(cv2.resize(big, (640, 480), interpolation=cv2.INTER_AREA)) - cv2.resize(
        big, (640, 480), interpolation=cv2.INTER_AREA)
    assert np.abs(correction - expected).mean() < 0.01
    assert restorer.restore(rgb_to_luma(cv2.resize(rgb, (320, 240)))).shape == (240, 320)


def test_luma_split_and_merge_round_trip():
    rgb = read_sample("01-sharp.jpg")
    luma, ycrcb = split_luma(rgb)
    assert np.abs(merge_luma(luma, ycrcb).astype(int) - rgb).mean() < 1.0


def test_missing_pack_names_the_folder_and_fix(tmp_path):
    with pytest.raises(PackError, match=r"model pack folder .*nope does not exist.*models.dir"):
        ModelPack.load(tmp_path / "nope")


def test_checksum_mismatch_is_refused(pack_copy):
    with open(pack_copy / "semi.tflite", "ab") as f:
        f.write(b"\0")
    with pytest.raises(PackError, match=r"semi.tflite does not match its manifest checksum.*reinstall"):
        ModelPack.load(pack_copy)


def test_missing_model_file_is_refused(pack_copy):
    (pack_copy / "heavy.float.tflite").unlink()
    with pytest.raises(PackError, match=r"heavy.float.tflite is missing"):
        ModelPack.load(pack_copy, precision="float")


def _reseal(pack: Path, name: str) -> None:
    """Make the manifest agree with a damaged file, so the loader (not the checksum) must catch it."""
    manifest = json.loads((pack / "manifest.json").read_text())
    for entry in manifest["models"].values():
        if entry["file"] == name:
            entry["sha256"] = sha256_of(pack / name)
    (pack / "manifest.json").write_text(json.dumps(manifest))


def test_truncated_model_is_refused_even_with_a_matching_checksum(pack_copy):
    data = (pack_copy / "classifier.tflite").read_bytes()
    (pack_copy / "classifier.tflite").write_bytes(data[: len(data) // 3])
    with pytest.raises(PackError, match=r"classifier.tflite does not match"):
        ModelPack.load(pack_copy)
    _reseal(pack_copy, "classifier.tflite")
    with pytest.raises(PackError, match=r"classifier.tflite cannot be loaded.*truncated.*reinstall"):
        ModelPack.load(pack_copy)


def test_unreadable_manifest_is_refused(pack_copy):
    (pack_copy / "manifest.json").write_text("{not json")
    with pytest.raises(PackError, match=r"manifest.json is not a valid manifest"):
        ModelPack.load(pack_copy)


def test_unavailable_runtime_is_refused(photo_pack_dir):
    if importlib.util.find_spec("tflite_runtime"):
        pytest.skip("tflite_runtime is installed here, so it is not unavailable")
    with pytest.raises(PackError, match="no TFLite runtime could be imported.*pip install ai-edge-litert"):
        ModelPack.load(photo_pack_dir, runtime="tflite-runtime")
