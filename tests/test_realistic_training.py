"""Training on the realistic synthesis: batches of the right shape and classes from real photos, a warm start that
rebuilds the shipped networks exactly from their float TFLite files, and a short realistic fine-tuning leg."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from conftest import needs_packages  # noqa: E402

from deblurd.restore.manifest import ROLES, load_manifest  # noqa: E402
from tools.data.realistic import RealisticSource  # noqa: E402
from tools.train import cpu as train
from tools.train import warm_start  # noqa: E402

PHOTO = Path(__file__).resolve().parent.parent / "models" / "photo"


@pytest.fixture(scope="module")
def source():
    return RealisticSource("photo", "validation", seed=4)


@needs_packages
def test_generator_pairs_are_luminance_patches_degraded_by_the_camera(source):
    blurred, sharp = source.pairs("heavy", 3, 64)
    assert blurred.shape == sharp.shape == (3, 64, 64, 1) and blurred.dtype == np.float32
    assert 0 <= blurred.min() and blurred.max() <= 1 and np.abs(blurred - sharp).mean() > 0.002


@needs_packages
def test_classifier_batches_label_by_the_median_radius(source):
    crops, labels = source.severity(6)
    assert crops.shape == (6, 128, 128, 1) and set(labels.tolist()) <= {0, 1, 2}
    flat = np.full((128, 128), 0.5, np.float32)
    assert source.label(flat, np.full((128, 128), 9.0)) == 0, "no texture: passing it through is right"
    texture = np.random.default_rng(0).random((128, 128)).astype(np.float32)
    assert [source.label(texture, np.full((128, 128), r)) for r in (0.5, 2.0, 9.0)] == [0, 1, 2]


def test_realistic_synthesis_refuses_a_digit_pack():
    with pytest.raises(ValueError, match="realistic synthesis is for photo packs"):
        RealisticSource("mnist", "validation", 0)


@pytest.mark.parametrize("role", ROLES)
def test_warm_start_rebuilds_the_shipped_network(role):
    arch = load_manifest(PHOTO).models[role].architecture
    net = warm_start.load_from_tflite(train.build(arch, "photo"), PHOTO / f"{role}.float.tflite")
    assert net.count_params() == load_manifest(PHOTO).models[role].params


def test_a_radius_mapper_starts_from_the_shipped_class_mappers_body():
    """Every layer but the heads carries the shipped mapper's weights; the features before the heads match it."""
    import keras

    net = train.build("mapper-radius", "photo")
    fresh_heads = [w.copy() for w in net.get_layer("radius").get_weights()]
    assert warm_start.load_body_from_tflite(net, PHOTO / "classifier.float.tflite") == len(
        warm_start.tflite_weights(PHOTO / "classifier.float.tflite")) - 1
    shipped = warm_start.load_from_tflite(train.build("mapper", "photo"), PHOTO / "classifier.float.tflite")
    x = np.random.default_rng(1).random((1, 64, 64, 1)).astype(np.float32)
    features = [keras.Model(m.input, m.get_layer(index=-2 if m is shipped else -4).output) for m in (net, shipped)]
    np.testing.assert_allclose(np.asarray(features[0](x)), np.asarray(features[1](x)), atol=1e-5)
    assert all(np.array_equal(a, b) for a, b in zip(fresh_heads, net.get_layer("radius").get_weights()))
    with pytest.raises(ValueError, match="leave no head"):
        warm_start.load_body_from_tflite(train.build("mapper-radius", "photo"), PHOTO / "semi.float.tflite")


def test_warm_start_refuses_another_architecture():
    with pytest.raises(ValueError, match="not the same architecture"):
        warm_start.load_from_tflite(train.build("ours-semi", "photo"), PHOTO / "heavy.float.tflite")


@needs_packages
def test_realistic_leg_from_the_shipped_pack_is_recorded(tmp_path):
    args = train.parse_args(["--pack", "photo", "--role", "semi", "--runs", str(tmp_path), "--batch", "2",
                             "--patch", "64", "--val-size", "4", "--log-every", "1", "--ckpt-every", "2",
                             "--steps", "2", "--synthesis", "realistic", "--init-from", str(PHOTO)])
    meta = json.loads((train.train(args) / "run.json").read_text())
    assert meta["steps_done"] == 2 and np.isfinite(meta["final_val"])
    assert meta["legs"][-1].endswith(f"--synthesis realistic --init-from {PHOTO}")


@needs_packages
def test_mixed_batches_take_half_from_each_synthesis(tmp_path):
    args = train.parse_args(["--pack", "photo", "--role", "heavy", "--runs", str(tmp_path), "--synthesis", "mixed",
                             "--patch", "32", "--val-size", "3"])
    batches, (val_x, val_y) = train.sources(args, 0)
    x, y = batches(5)
    assert x.shape == y.shape == (5, 32, 32, 1) and val_x.shape == val_y.shape == (6, 32, 32, 1)
    assert train.run_dir(args).name == "photo-heavy-supervised-ours-heavy-mixed"


@needs_packages
def test_map_cells_are_labelled_by_their_radius_and_flat_cells_weigh_little(source):
    crops, targets = source.cells(3, 64)
    assert crops.shape == (3, 64, 64, 1) and targets.shape == (3, 8, 8, 2)
    assert set(np.unique(targets[..., 0])) <= {0, 1, 2}
    assert set(np.unique(targets[..., 1])) <= {1.0, np.float32(0.1)}


def test_a_dense_mapper_trains_only_on_the_realistic_synthesis():
    with pytest.raises(SystemExit):
        train.parse_args(["--pack", "photo", "--role", "classifier", "--arch", "mapper"])


@needs_packages
def test_a_mapper_leg_exports_a_dense_classifier_that_maps_frames(tmp_path):
    from deblurd.restore.blur_map import BlurMapper
    from deblurd.restore.inference import ModelPack
    from tools.train import export

    args = train.parse_args(["--pack", "photo", "--role", "classifier", "--arch", "mapper", "--synthesis",
                             "realistic", "--runs", str(tmp_path / "runs"), "--batch", "2", "--patch", "64",
                             "--val-size", "2", "--log-every", "1", "--ckpt-every", "2", "--steps", "2"])
    run = train.train(args)
    assert 0.0 <= json.loads((run / "run.json").read_text())["final_val"] <= 1.0
    pack_dir = tmp_path / "photo"
    pack_dir.mkdir()
    for path in PHOTO.iterdir():
        (pack_dir / path.name).write_bytes(path.read_bytes())
    export.export_pack("photo", tmp_path / "runs", pack_dir, {"classifier": run}, keep=("semi", "heavy"))
    entry = load_manifest(pack_dir).models["classifier"]
    assert entry.architecture == "mapper" and entry.input_shape == [1, 256, 256, 1] and entry.overlap == 64
    pack = ModelPack.load(pack_dir)
    blur_map = BlurMapper(pack.classifier).map(np.random.default_rng(0).random((480, 640), np.float32))
    assert blur_map.cells.shape == (60, 80, 3) and np.allclose(blur_map.cells.sum(-1), 1, atol=0.02)
    assert blur_map.record()["rows"][0].__len__() == 20
