"""tools.train.gpu: the GPU trainer's networks match TensorFlow's, and a short job writes a run that export takes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from conftest import REPO, needs_packages  # noqa: E402

from deblurd.restore.manifest import WIENER_SIGMA  # noqa: E402
from tools.train import export, models
from tools.train import gpu as train_gpu  # noqa: E402


def test_the_backend_neutral_pixel_shuffles_match_tensorflows():
    """Weights trained under JAX load into the TensorFlow model that export converts: same channel order."""
    x = np.random.default_rng(0).random((2, 8, 12, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(models.space_to_depth_ops(x, 2)), tf.nn.space_to_depth(x, 2).numpy())
    y = np.random.default_rng(1).random((2, 4, 6, 12)).astype("float32")
    np.testing.assert_array_equal(np.asarray(models.depth_to_space_ops(y, 2)), tf.nn.depth_to_space(y, 2).numpy())
    shape = models.PixelUnshuffle(2).compute_output_shape((None, None, 64, 3))
    assert shape == (None, None, 32, 12)
    assert models.PixelShuffle(2).compute_output_shape((None, 16, None, 12)) == (None, 32, None, 3)


def test_a_job_spec_names_role_architecture_and_seconds():
    job = train_gpu.Job.parse("classifier:mapper:90")
    assert (job.role, job.arch, job.seconds, job.mapper) == ("classifier", "mapper", 90.0, True)
    with pytest.raises(ValueError):
        train_gpu.Job.parse("semi:ours-semi")


@needs_packages
def test_a_short_job_writes_a_run_that_export_loads(tmp_path):
    """Producers draw realistic and disk pairs in other processes; the run folder is tools.train.cpu's format."""
    args = train_gpu.parse_args(["train", "--out", str(tmp_path), "--job", "semi:ours-semi:2", "--batch", "2",
                                 "--patch", "64", "--epoch-steps", "2", "--val-size", "4", "--workers", "1"])
    with train_gpu.mp.get_context("spawn").Pool(1) as pool:
        tar = train_gpu.train_job(args.job[0], args, pool)
    run = tmp_path / "photo-semi-supervised-ours-semi-mixed"
    assert tar.is_file() and (run / "losses.csv").read_text().startswith("step,loss,val\n")
    meta = json.loads((run / "run.json").read_text())
    assert meta["arch"] == "ours-semi" and meta["synthesis"] == "mixed" and meta["steps_done"] >= 2
    assert meta["samples_drawn"] >= 2048 and np.isfinite(meta["final_val"])
    assert "Keras" in meta["machine"] and meta["legs"][-1].startswith("python -m tools.train.gpu train")
    net, loaded = export.load_trained(run)
    assert isinstance(net, keras.Model) and loaded["role"] == "semi"


@needs_packages
def test_a_radius_mappers_producers_draw_radius_px_and_weights_as_floats():
    """With --synth device the mapper still draws on CPU producers: realistic crops, per-cell radius px (not
    classes) and weights, carried as float16."""
    assert train_gpu.Job.parse("classifier:mapper-radius:9").radius
    x, target = train_gpu._draw(("classifier", "realistic", 3, 64, "validation", True))
    assert x.dtype == np.uint8 and x.shape == (train_gpu.CHUNK, 64, 64, 1)
    assert target.dtype == np.float16 and target.shape == (train_gpu.CHUNK, 8, 8, 2)
    radius = train_gpu._float(target)[..., 0]
    assert radius.min() >= 0 and radius.max() > 2.0 and len(np.unique(radius)) > 3
    _, classes = train_gpu._draw(("classifier", "realistic", 3, 64, "validation", False))
    assert set(np.unique(classes[..., 0])) <= {0, 1, 2}


def test_radius_loss_is_huber_plus_confidence_cross_entropy_weighted_per_cell():
    """The one radius loss both trainers minimise (tools/train/losses.py), by hand on two cells."""
    from deblurd.restore.manifest import RADIUS_SCALE
    from tools.train import losses

    target = np.array([[[[2.0, 1.0], [5.0, 0.5]]]], np.float32)
    out = np.array([[[[2.2 / RADIUS_SCALE, 0.9], [8.0 / RADIUS_SCALE, 0.2]]]], np.float32)
    huber = np.array([0.5 * 0.2**2, 3.0 - 0.5])
    bce = -np.array([np.log(0.9), np.log(1 - 0.2)])
    expected = float(((huber + bce) * [1.0, 0.5]).sum() / 1.5)
    assert float(losses.radius_loss(target, out)) == pytest.approx(expected, rel=1e-4)
    assert losses.radius_mae(out, target) == pytest.approx(0.2, abs=1e-5)


@needs_packages
def test_a_device_synthesis_job_runs_on_cpu_jax_and_writes_a_run(tmp_path):
    """`train --synth device` under Keras on JAX (here the CPU build): a Wiener refiner's 3 steps on batches made by
    JAX with its inputs (luminance, radius, Wiener), a run folder that export loads, the synthesis and warm-up
    recorded."""
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    subprocess.run([sys.executable, "-m", "tools.train.gpu", "train", "--out", str(tmp_path), "--job",
                    "semi:nonblind-wiener:1", "--synth", "device", "--batch", "4", "--patch", "48", "--epoch-steps",
                    "3", "--warmup-steps", "6", "--val-size", "4"], cwd=REPO, env=env, check=True, timeout=600)
    run = tmp_path / "photo-semi-supervised-nonblind-wiener-device"
    meta = json.loads((run / "run.json").read_text())
    assert (tmp_path / f"{run.name}.tar").is_file() and meta["steps_done"] == 3 and meta["samples_drawn"] >= 12
    assert "synthesis on the device" in meta["machine"] and "JAX" in meta["machine"]
    assert meta["device_synthesis"]["inputs"] == ["luma", "radius", "wiener"]
    assert meta["device_synthesis"]["max_radius"] == 3.4
    assert meta["device_synthesis"]["optics_share"] == 0.5, "half through a real lens and camera, as the mixed set"
    assert "--optics-share 0.5" in meta["legs"][-1]
    assert "--synth device" in meta["legs"][-1] and "--warmup-steps 6" in meta["legs"][-1]
    assert "--clipnorm 1 " in meta["legs"][-1], "gradients clipped by default: unclipped, the refiner collapsed"
    assert np.isfinite(meta["final_val"])
    net, loaded = export.load_trained(run)
    assert isinstance(net, keras.Model) and loaded["role"] == "semi"
    assert meta["wiener_sigma"] == WIENER_SIGMA, "the Wiener channel's noise level it was trained on"
    del meta["wiener_sigma"]  # a run from before run.json recorded it: trained at 2/255
    (run / "run.json").write_text(json.dumps(meta))
    with pytest.raises(SystemExit, match="Wiener channel for noise sigma 2/255.*train the run again"):
        export.export_role("photo", "semi", run, tmp_path / "out")


def test_a_run_tar_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    """on_device.sh copies every `*.tar` it sees while later jobs train: a tar cut off while written must not be one."""
    run = tmp_path / "runs" / "photo-semi-supervised-x-device"
    run.mkdir(parents=True)
    (run / "run.json").write_text("{}")
    (run / "final.weights.h5").write_bytes(os.urandom(4096))
    out = tmp_path / "out"
    out.mkdir()
    tar = train_gpu.write_tar(run, out / f"{run.name}.tar")
    with train_gpu.tarfile.open(tar) as whole:
        assert sorted(whole.getnames()) == [run.name, f"{run.name}/final.weights.h5", f"{run.name}/run.json"]

    def cut_off(self, *args, **kwargs):
        self.fileobj.write(b"\0" * 1024)
        raise OSError("no space left on device")

    monkeypatch.setattr(train_gpu.tarfile.TarFile, "add", cut_off)
    with pytest.raises(OSError, match="no space"):
        train_gpu.write_tar(run, out / "second.tar")
    assert sorted(p.name for p in out.iterdir()) == [tar.name], "no partial tar, no temporary file left"
