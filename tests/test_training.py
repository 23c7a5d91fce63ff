"""A few-step smoke run of each training recipe, resume from checkpoint, and an export of the result."""

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from conftest import needs_packages  # noqa: E402

from deblurd.restore.manifest import load_manifest, verify_file  # noqa: E402
from tools.train import cpu as train  # noqa: E402
from tools.train import export


def _train(tmp_path, *extra):
    args = train.parse_args(["--pack", "fashion-mnist", "--runs", str(tmp_path), "--batch", "4", "--val-size", "8",
                             "--log-every", "1", "--ckpt-every", "2", *extra])
    return train.train(args)


@needs_packages
@pytest.mark.parametrize("role,recipe", [("heavy", "supervised"), ("semi", "hybrid"), ("classifier", "supervised")])
def test_each_recipe_trains_checkpoints_and_resumes(tmp_path, role, recipe):
    run = _train(tmp_path, "--role", role, "--recipe", recipe, "--steps", "2")
    meta = json.loads((run / "run.json").read_text())
    assert meta["steps_done"] == 2 and np.isfinite(meta["final_val"])
    assert (run / "final.weights.h5").exists() and (run / "loss.png").exists()
    run = _train(tmp_path, "--role", role, "--recipe", recipe, "--steps", "4")
    rows = (run / "losses.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"], "resumed at step 3, not from scratch"
    meta = json.loads((run / "run.json").read_text())
    assert meta["steps_done"] == 4
    assert [leg.split("--steps ")[1].split()[0] for leg in meta["legs"]] == ["2", "4"], "each training leg is recorded"


@needs_packages
def test_mse_leg_continues_the_run_and_is_recorded(tmp_path):
    _train(tmp_path, "--role", "heavy", "--steps", "2")
    run = _train(tmp_path, "--role", "heavy", "--steps", "3", "--loss", "mse")
    meta = json.loads((run / "run.json").read_text())
    assert meta["steps_done"] == 3 and np.isfinite(meta["final_val"])
    assert "--steps 3 --loss mse" in meta["legs"][-1] and "--loss" not in meta["legs"][0]


def test_a_leg_names_every_option_that_differs_from_the_defaults():
    options = vars(train.parse_args(["--pack", "photo", "--role", "semi", "--arch", "autoencoder", "--patch", "48",
                                     "--batch", "8", "--lr", "5e-4", "--steps", "10"]))
    assert train.command(options) == ("python -m tools.train --pack photo --role semi --recipe supervised "
                                      "--arch autoencoder --steps 10 --patch 48 --lr 0.0005 --batch 8")
    assert train.command(vars(train.parse_args(["--pack", "mnist", "--role", "heavy"]))).endswith("--steps 3000")


@needs_packages
def test_wide_classifier_is_built_and_chosen_for_export(tmp_path):
    _train(tmp_path, "--role", "classifier", "--arch", "classifier-wide", "--steps", "1")
    assert export.find_run(tmp_path, "fashion-mnist", "classifier").name.endswith("classifier-wide")


@needs_packages
def test_photo_generator_trains_on_patches(tmp_path):
    args = train.parse_args(["--pack", "photo", "--role", "semi", "--runs", str(tmp_path), "--steps", "2",
                             "--batch", "2", "--patch", "32", "--val-size", "4", "--ckpt-every", "2"])
    run = train.train(args)
    assert json.loads((run / "run.json").read_text())["steps_done"] == 2


@needs_packages
def test_export_writes_a_verified_pack(tmp_path):
    for role in ("classifier", "semi", "heavy"):
        _train(tmp_path, "--role", role, "--steps", "1")
    pack = export.export_pack("fashion-mnist", tmp_path, tmp_path / "pack", {})
    manifest = load_manifest(pack)
    for role, entry in manifest.models.items():
        verify_file(pack, entry.file, entry.sha256)
        verify_file(pack, entry.float_file, entry.float_sha256)
        assert entry.input_shape == ([1, 32, 32, 1])
        assert entry.training["commands"][0].startswith("python -m tools.train --pack fashion-mnist --role " + role)
        check = entry.evaluation["export_check"]
        if role == "classifier":
            assert 0 <= check["int8_float_agreement"] <= 1
        else:
            assert abs(check["int8_minus_float_db"]) < 1.0
    assert manifest.working_width == 28 and manifest.blur.psf == "gaussian"


@needs_packages
def test_export_keeps_the_roles_it_is_told_to(tmp_path):
    for role in ("classifier", "semi", "heavy"):
        _train(tmp_path, "--role", role, "--steps", "1")
    pack = export.export_pack("fashion-mnist", tmp_path, tmp_path / "pack", {})
    before = load_manifest(pack).models["classifier"]
    classifier_bytes = (pack / before.file).read_bytes()
    (pack / "semi.tflite").write_bytes(b"stale")
    export.export_pack("fashion-mnist", tmp_path, pack, {}, keep=("classifier",))
    after = load_manifest(pack)
    assert after.models["classifier"] == before and (pack / before.file).read_bytes() == classifier_bytes
    verify_file(pack, after.models["semi"].file, after.models["semi"].sha256)
    with pytest.raises(SystemExit, match="has no classifier model to keep"):
        export.export_pack("fashion-mnist", tmp_path, tmp_path / "empty", {}, keep=("classifier",))


def test_a_dead_relu_is_revived_for_int8_without_changing_the_float_model(tmp_path):
    """A unit that died in training (a ReLU negative everywhere) made the int8 interpreter abort at allocation."""
    import keras

    from tools.train import models

    net = models.ARCHITECTURES["ours-semi"]()
    relu = [layer for layer in net.layers if isinstance(layer, keras.layers.ReLU)  # the last block, read by a conv
            and isinstance(layer._inbound_nodes[0].parent_nodes[0].operation, keras.layers.Add)][-1]
    add = relu._inbound_nodes[0].parent_nodes[0].operation
    conv = next(n.operation for n in add._inbound_nodes[0].parent_nodes if isinstance(n.operation, keras.layers.Conv2D))
    x = np.random.default_rng(0).random((4, 64, 64, 1)).astype("float32")
    pre = keras.Model(net.input, add.output).predict(x, verbose=0)
    kernel, bias = conv.get_weights()
    conv.set_weights([kernel, bias - pre.max(axis=(0, 1, 2)) - 0.05])  # kill the unit: its Add is just negative
    reader = relu._outbound_nodes[0].operation
    reader.set_weights([reader.get_weights()[0], np.array([0.01, -0.01, 0.02, -0.02], np.float32)])  # trained biases
    before = net.predict(x, verbose=0)
    assert export.revive_dead_relus(net, x) == [relu.name]
    np.testing.assert_array_equal(net.predict(x, verbose=0), before)
    path = tmp_path / "revived.tflite"
    path.write_bytes(export.convert(export.fixed_shape(net, 64), x))
    out = export.run_tflite(path, x[:1])
    assert out.shape == (1, 64, 64, 1) and np.abs(out - before[:1]).max() < 0.1
    assert export.revive_dead_relus(net, x) == [], "a live network is left as it is"
