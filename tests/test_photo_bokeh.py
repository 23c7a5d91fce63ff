"""tools.eval.photo_bokeh: the share of each clean photo the shipped blur map would restore."""

from conftest import needs_packages


@needs_packages
def test_each_validation_photo_gets_the_share_the_map_restores_most_blurred_first(capsys):
    from tools.data import sources as data
    from tools.eval import photo_bokeh

    rows = photo_bokeh.blurred_shares("photo", "validation")
    assert sorted(r[0] for r in rows) == sorted(p.name for p in data.photo_files("validation"))
    shares = [r[1] for r in rows]
    assert shares == sorted(shares, reverse=True) and all(0.0 <= s <= 1.0 for s in shares)
    assert all(abs(sum(r[2].values()) - 1) < 0.01 for r in rows)
    photo_bokeh.main(["--split", "validation"])
    assert capsys.readouterr().out.count("\n") == len(rows) + 2
