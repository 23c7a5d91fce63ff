"""tools/bench/benchmark.py on one shipped model, one run each: the rows, the table's columns, ratios and target
verdicts.

No timing is asserted: the build machine is shared, so only the shape of the report is checked.
"""

from __future__ import annotations

from pathlib import Path

from tools.bench import benchmark


def test_pack_rows_table_ratios_and_targets(photo_pack_dir: Path) -> None:
    rows = benchmark.bench_pack(photo_pack_dir, threads=[1], repeats=1, roles=("semi",))
    assert [(r.model, r.precision) for r in rows] == [("photo/semi", "int8"), ("photo/semi", "float")]
    for r in rows:
        assert r.tile == (256, 256) and r.params > 0 and r.macs_per_pixel > 0 and r.size_mb > 0
        for ms in (r.tile_ms, r.frame_ms, r.daemon_ms):
            assert list(ms) == [1] and ms[1] > 0

    paper = benchmark.Row("paper autoencoder", "float", 1_347_329, 1_346_400.0, 5.4, (120, 160),
                          {1: 1000.0}, {1: 16000.0}, {}, "640x480 scaled per pixel from 160x120")
    header, rule, *body = benchmark.table([*rows, paper], [1]).splitlines()
    columns = [c.strip() for c in header.strip("| ").split(" | ")]
    assert columns == ["model", "precision", "params", "MAC/px", "size MB", "tile", "tile ms, 1 thr",
                       "640x480 ms, 1 thr", "daemon 640x480 ms, 1 thr", "note"]
    assert rule == "|" + "---|" * len(columns)
    assert [line.split(" | ")[:2] for line in body] == [["| photo/semi", "int8"], ["| photo/semi", "float"],
                                                          ["| paper autoencoder", "float"]]
    assert all(line.count(" | ") == len(columns) - 1 for line in body)
    assert "| — |" in body[2]  # the paper model has no daemon path

    ratios = benchmark.speed_ratios([*rows, paper])
    assert [(r["ours"], r["paper"]) for r in ratios] == [("photo/semi int8", "paper autoencoder"),
                                                         ("photo/semi float", "paper autoencoder")]
    assert list(ratios[0]["faster"]) == [1] and ratios[0]["fewer_macs"] > 100

    verdicts = {t["target"]: t["pass"] for t in benchmark.check_targets([*rows, paper], ratios)}
    assert verdicts["photo/semi MAC per pixel"] is True
    assert verdicts["photo/semi int8, 640x480, 2 threads (ms)"] is None  # 2 threads were not measured


def test_a_non_blind_pack_is_timed_on_the_daemon_path_with_its_radius_map(radius_pack_dir: Path) -> None:
    rows = benchmark.bench_pack(radius_pack_dir, threads=[1], repeats=1, roles=("semi", "heavy"))
    assert [r.model for r in rows] == ["photo/semi", "photo/heavy"] * 2
    assert all(list(r.daemon_ms) == [1] and r.daemon_ms[1] > 0 and not r.note for r in rows)
