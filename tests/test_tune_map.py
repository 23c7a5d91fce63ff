"""tools.train.tune_map: one row per combination of the map's routing constants, on the training photos."""

from conftest import needs_packages


@needs_packages
def test_each_combination_gets_a_row_and_the_constants_are_put_back(capsys, monkeypatch):
    from deblurd.restore import blur_map
    from tools.train import tune_map

    for name in ("MIN_REGION_PX", "SHARP_MARGIN", "MIN_ROUTE_WEIGHT"):
        monkeypatch.setattr(blur_map, name, getattr(blur_map, name))  # restored after the test
    tune_map.main(["--limit", "1", "--min-region", "32,64"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 32") or line.startswith("| 64")]
    assert len(rows) == 2 and all(len(r.split("|")) == 8 for r in rows)
