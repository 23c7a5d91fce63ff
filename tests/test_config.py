"""Config loading: defaults that run anywhere, and one clear message per bad key."""

from pathlib import Path

import pytest

from deblurd.config import Config, ConfigError, load_config


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "deblurd.toml"
    path.write_text(text)
    return path


def test_defaults_run_without_a_camera_or_gpio():
    cfg = Config()
    assert cfg.camera.source == "auto" and not cfg.gpio.enabled
    assert (cfg.models.dir / cfg.models.pack / "manifest.json").exists(), "default pack ships with the repo"
    assert cfg.state_file == cfg.output.dir / "status.json"


def test_missing_default_file_means_defaults_but_a_missing_explicit_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr("deblurd.config.DEFAULT_CONFIG_PATH", tmp_path / "absent.toml")
    assert load_config() == Config()
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")


def test_valid_file_overrides_defaults(tmp_path):
    cfg = load_config(_write(tmp_path, '[output]\ndir = "/srv/out"\njpeg_quality = 80\n[gpio]\nenabled = true\nbutton_pin = 5\n'))
    assert cfg.output.dir == Path("/srv/out") and cfg.output.jpeg_quality == 80 and cfg.gpio.button_pin == 5


def test_every_error_is_listed_with_key_value_and_range(tmp_path):
    path = _write(tmp_path, "[output]\njpeg_quality = 200\ncolour = 1\n[camera]\nfps = 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert "3 invalid setting(s)" in text
    assert "output.jpeg_quality = 200" in text and "allowed: 50 to 100" in text
    assert "output.colour: unknown key" in text
    assert "camera.fps = 0" in text
    assert err.value.exit_code == 78


def test_malformed_toml_names_the_file(tmp_path):
    path = _write(tmp_path, "[output\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_cross_field_rules(tmp_path):
    with pytest.raises(ConfigError, match="resume_c < slow_c"):
        load_config(_write(tmp_path, "[thermal]\nresume_c = 78\n"))
    with pytest.raises(ConfigError, match="must differ"):
        load_config(_write(tmp_path, "[gpio]\nbutton_pin = 17\nled_pin = 17\n"))


def test_overrides_are_validated_like_the_file():
    cfg = Config().with_overrides({"output.dir": Path("/tmp/x"), "pipeline.max_frames": 5})
    assert cfg.output.dir == Path("/tmp/x") and cfg.pipeline.max_frames == 5
    with pytest.raises(ConfigError, match="pipeline.max_frames = 0"):
        Config().with_overrides({"pipeline.max_frames": 0})
