"""Config loading: defaults that run anywhere, and one clear message per bad key."""

import tomllib
from pathlib import Path

import pytest

from deblurd.config import DEFAULT_BUTTON_PIN, Config, ConfigError, config_reference, config_source, load_config

AREAS = {name: info.annotation for name, info in Config.model_fields.items()}
PATH_KEYS = ["camera.replay_path", "camera.sim_scene", "lens.profile", "models.dir", "output.dir",
             "thermal.sysfs_root", "service.state_file"]


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
    cfg = load_config(_write(tmp_path, '[output]\ndir = "/srv/out"\njpeg_quality = 80\n'
                                       '[gpio]\nenabled = true\nbutton_pin = 5\n'))
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


def test_gpio_enabled_without_a_button_pin_uses_the_documented_default(tmp_path):
    cfg = load_config(_write(tmp_path, "[gpio]\nenabled = true\n"))
    assert cfg.gpio.enabled and cfg.gpio.button_pin == DEFAULT_BUTTON_PIN == 17
    reference = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    assert "\nbutton_pin = 17\n" in reference, "the reference says 17"


def test_every_key_has_its_default_and_a_description_here_and_unknown_keys_are_refused():
    for name, area in AREAS.items():
        assert area.model_config["extra"] == "forbid" and area.__doc__, name
        for key, info in area.model_fields.items():
            assert not info.is_required(), f"{name}.{key} has no default"
            assert info.description, f"{name}.{key} has no description"
    assert Config.model_config["extra"] == "forbid"


def test_the_reference_is_valid_toml_holding_every_default_and_description():
    reference = config_reference()
    parsed = tomllib.loads(reference)
    defaults = Config()
    for name, area in AREAS.items():
        for key, info in area.model_fields.items():
            value = getattr(getattr(defaults, name), key)
            assert f"# {info.description} [" in reference, f"{name}.{key}"
            if key in parsed[name]:
                assert Config.model_validate({name: {key: parsed[name][key]}}) == defaults, f"{name}.{key}"
            else:  # commented out: unset, or a default that depends on the machine (models.dir)
                assert value is None or (name, key) == ("models", "dir"), f"{name}.{key} missing"
                assert f"# {key} = ...    (" in reference
    assert 'one of "auto", "picamera2", "replay", "sim"]' in reference and "[a whole number, 50 to 100]" in reference
    assert "[a whole number, 1 or more]" in reference, "pipeline.max_frames has no upper bound"


@pytest.mark.parametrize("key", PATH_KEYS)
@pytest.mark.parametrize("value,expected", [("/srv/a\\u0000b", "control characters (found '\\x00')"),
                                            ("/srv/a\\nb", "control characters (found '\\n')"),
                                            ("out\\u001b[31m", "control characters (found '\\x1b')"),
                                            ("", "an empty path: leave the key out")])
def test_a_path_with_a_control_character_or_empty_is_a_config_error_naming_the_key(tmp_path, key, value, expected):
    area, name = key.split(".")
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, f'[{area}]\n{name} = "{value}"\n'))
    assert f"{key} = " in str(err.value) and expected in str(err.value) and err.value.exit_code == 78


def test_a_path_from_the_command_line_is_checked_too():
    with pytest.raises(ConfigError, match="output.dir = .*control characters"):
        Config().with_overrides({"output.dir": Path("/tmp/a\x00b")})


@pytest.mark.parametrize("pack", ["../..", "..", ".", "sub/pack", "/abs", "a\\\\b", "a\\u0000b"])
def test_the_pack_is_a_plain_folder_name_inside_models_dir(tmp_path, pack):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, f'[models]\npack = "{pack}"\n'))
    assert "models.pack = " in str(err.value) and "plain folder name inside models.dir" in str(err.value)


def test_a_pack_name_with_dots_inside_is_a_plain_name(tmp_path):
    cfg = load_config(_write(tmp_path, '[models]\ndir = "/srv/models"\npack = "photo..v2"\n'))
    assert cfg.models.pack_dir == Path("/srv/models/photo..v2")


@pytest.mark.parametrize("text,key,expected", [
    ('[gpio]\nenabled = "yes"\n', "gpio.enabled = 'yes'", "valid boolean (write true or false, without quotes)"),
    ('[output]\nsave_input = "off"\n', "output.save_input = 'off'", "valid boolean"),
    ('[camera]\nwidth = "800"\n', "camera.width = '800'", "valid integer (write a whole number, without quotes)"),
    ('[camera]\nwidth = 800.0\n', "camera.width = 800.0", "valid integer"),
    ('[camera]\nfps = "10"\n', "camera.fps = '10'", "valid number (write a number, without quotes)"),
    ('[gpio]\nenabled = 1\n', "gpio.enabled = 1", "valid boolean"),
    ('[models]\npack = 7\n', "models.pack = 7", "valid string (write text in double quotes)"),
])
def test_types_are_strict_and_errors_name_the_key_and_the_type(tmp_path, text, key, expected):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text))
    assert f"{key}: Input should be a {expected}" in str(err.value)


def test_whole_numbers_for_decimals_and_strings_for_paths_are_what_toml_has(tmp_path):
    cfg = load_config(_write(tmp_path, '[camera]\nfps = 5\nreplay_path = "/srv/frames"\n[output]\ndir = "out"\n'))
    assert cfg.camera.fps == 5.0 and cfg.camera.replay_path == Path("/srv/frames") and cfg.output.dir == Path("out")


def test_config_source_names_the_file_or_the_defaults(tmp_path, monkeypatch):
    monkeypatch.setattr("deblurd.config.DEFAULT_CONFIG_PATH", tmp_path / "deblurd.toml")
    assert config_source() == f"built-in defaults (no {tmp_path / 'deblurd.toml'})"
    assert config_source(tmp_path / "mine.toml") == str(tmp_path / "mine.toml")
    _write(tmp_path, "")
    assert config_source() == str(tmp_path / "deblurd.toml")
