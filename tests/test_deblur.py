"""`deblurd deblur`: files, folders and patterns in; nothing overwritten or lost; every layout kept; a summary out."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import read_sample
from PIL import Image
from test_image_io import CAMERA_MAKE, jpeg_with_metadata, srgb_profile

from deblurd.commands.deblur import (
    RECORD_NAME,
    Deblurrer,
    OutputNames,
    describe,
    find_inputs,
    publish,
    read_records,
    restore,
)
from deblurd.image_io import InputError
from deblurd.restore.router import Router

REPO = Path(__file__).resolve().parent.parent


def deblur(*args: object, stderr=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deblurd", "deblur", *map(str, args)], stdout=subprocess.PIPE,
                          stderr=stderr, text=True, cwd=REPO, timeout=120)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def results_in(folder: Path) -> list[str]:
    return [name for name in files_in(folder) if name.endswith((".jpg", ".png"))]


@pytest.fixture(scope="module")
def routers(photo_pack) -> dict[str, Router]:
    return {label: Router(photo_pack, forced=label) for label in ("sharp", "heavy")}


# layouts -------------------------------------------------------------------------------------------------------

def test_16_bit_and_grey_are_restored_like_8_bit_rgb(routers):
    rgb = read_sample("05-heavy.jpg")
    _, out8 = restore(routers["heavy"], rgb)
    assert out8.dtype == np.uint8 and np.abs(out8.astype(int) - rgb).mean() > 1, "the frame was restored"
    _, out16 = restore(routers["heavy"], rgb.astype(np.uint16) * 257)
    assert out16.dtype == np.uint16 and out16.shape == rgb.shape
    assert np.abs(out16 / 257.0 - out8).mean() < 1.0, "the 16-bit path restores what the 8-bit path does"
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[:, :, 0]
    _, out_grey = restore(routers["heavy"], grey)
    assert out_grey.shape == grey.shape and out_grey.dtype == np.uint8
    assert np.abs(out_grey.astype(float) - cv2.cvtColor(out8, cv2.COLOR_RGB2YCrCb)[:, :, 0]).mean() < 1.0


def test_alpha_is_kept_exactly_and_colour_restored_as_without_it(routers):
    rgb = read_sample("05-heavy.jpg")
    alpha = np.tile(np.linspace(0, 255, rgb.shape[1]).astype(np.uint8), (rgb.shape[0], 1))
    _, out = restore(routers["heavy"], np.dstack([rgb, alpha]))
    assert out.shape == (*rgb.shape[:2], 4) and np.array_equal(out[:, :, 3], alpha)
    assert np.array_equal(out[:, :, :3], restore(routers["heavy"], rgb)[1])


def test_a_frame_with_no_blurred_region_is_not_restored(routers):
    severity, out = restore(routers["sharp"], read_sample("05-heavy.jpg"))
    assert out is None and severity.label == "sharp"


# names and files -----------------------------------------------------------------------------------------------

def test_pass_through_is_a_byte_for_byte_copy_and_reruns_never_overwrite(tmp_path, samples_dir, routers):
    out = tmp_path / "out"
    out.mkdir()
    source = samples_dir / "05-heavy.jpg"
    first = Deblurrer(routers["sharp"], out, 92, save_map=False).process(source)
    assert first["status"] == "passthrough" and first["output"] == "05-heavy-passthrough.jpg"
    assert (out / "05-heavy-passthrough.jpg").read_bytes() == source.read_bytes()
    assert "copied unchanged (pass-through)" in describe(first) and describe(first).endswith("-passthrough.jpg")
    again = Deblurrer(routers["heavy"], out, 92, save_map=True)
    assert again.process(source)["output"] == "05-heavy-2-restored.jpg"
    assert again.process(source)["output"] == "05-heavy-3-restored.jpg"
    assert (out / "05-heavy-passthrough.jpg").read_bytes() == source.read_bytes()
    assert results_in(out) == ["05-heavy-2-map.png", "05-heavy-2-restored.jpg", "05-heavy-3-map.png",
                               "05-heavy-3-restored.jpg", "05-heavy-passthrough.jpg"]
    records = read_records(out)
    assert [r["output"] for r in records] == ["05-heavy-passthrough.jpg", "05-heavy-2-restored.jpg",
                                              "05-heavy-3-restored.jpg"]
    assert records[1]["map"] == "05-heavy-2-map.png" and records[0]["input"] == str(source.resolve())


def test_output_names_skip_files_already_there_and_names_claimed_in_this_run(tmp_path):
    (tmp_path / "a-restored.png").write_bytes(b"an older result")
    (tmp_path / "a-2-map.png").write_bytes(b"an older map")
    names = OutputNames(tmp_path)
    assert [names.claim("a"), names.claim("a"), names.claim("a-3"), names.claim("b")] == ["a-3", "a-4", "a-3-2", "b"]


def test_publish_never_replaces_a_file_that_appeared(tmp_path):
    target = tmp_path / "a-restored.jpg"
    target.write_bytes(b"someone else's")
    with pytest.raises(InputError, match="appeared while it was being written"):
        publish(b"ours", target)
    assert target.read_bytes() == b"someone else's" and files_in(tmp_path) == ["a-restored.jpg"]
    publish(b"ours", tmp_path / "b-restored.jpg")
    assert (tmp_path / "b-restored.jpg").read_bytes() == b"ours" and len(files_in(tmp_path)) == 2


def test_inputs_from_files_folders_and_patterns(tmp_path):
    for rel in ("shots/a.jpg", "shots/b.PNG", "shots/notes.txt", "shots/.hidden.jpg", "shots/day2/c.jpeg",
                "shots/out/a-restored.jpg", "empty/readme.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    shots, out = tmp_path / "shots", tmp_path / "shots" / "out"
    inputs = find_inputs([str(shots)], recursive=False, output=out)
    assert inputs.files == [shots / "a.jpg", shots / "b.PNG"] and inputs.problems == {}
    assert inputs.left_out == [(shots / "notes.txt", "not an image")], "hidden files are neither taken nor counted"
    inputs = find_inputs([str(shots)], recursive=True, output=out)
    assert inputs.files == [shots / "a.jpg", shots / "b.PNG", shots / "day2" / "c.jpeg"], "not the output folder's"
    found = find_inputs([str(shots / "*.jpg"), str(shots / "a.jpg"), str(shots / "**" / "*.jpeg")], True, out).files
    assert found == [shots / "a.jpg", shots / "day2" / "c.jpeg"], "each file once"
    inputs = find_inputs([str(tmp_path / "empty"), str(tmp_path / "*.gif"), str(tmp_path / "gone.jpg")], False, out)
    found, problems = inputs.files, inputs.problems
    assert found == [tmp_path / "gone.jpg"], "a missing file is reported when it is read"
    assert "no JPEG or PNG file in this folder (add --recursive" in problems[str(tmp_path / "empty")]
    assert "no JPEG or PNG file matches this pattern" in problems[str(tmp_path / "*.gif")]


# the command ---------------------------------------------------------------------------------------------------

def test_bad_images_are_refused_while_the_rest_are_processed(tmp_path, samples_dir, photo_pack_dir):
    data = (samples_dir / "03-heavy.jpg").read_bytes()
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "garbage.jpg").write_bytes(os.urandom(2000))
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    png = cv2.imencode(".png", cv2.imread(str(samples_dir / "03-heavy.jpg")))[1].tobytes()
    (tmp_path / "cut.png").write_bytes(png[: len(png) // 2])
    bad = [tmp_path / name for name in ("empty.jpg", "garbage.jpg", "cut.jpg", "cut.png", "missing.png")]
    out = tmp_path / "restored"
    done = deblur(*bad, samples_dir / "05-heavy.jpg", "-o", out)
    assert done.returncode == 1
    for message in ("empty.jpg: the file is empty (0 bytes)", "garbage.jpg: cannot be read as an image",
                    "cut.jpg: the image is truncated or damaged", "cut.png: the image is truncated or damaged",
                    "missing.png: no such file", "5 of 6 input(s) could not be processed"):
        assert message in done.stderr
    assert "Traceback" not in done.stderr and "Corrupt JPEG" not in done.stderr.replace("cut.jpg", "")
    assert results_in(out) == ["05-heavy-restored.jpg"] and str(samples_dir / "05-heavy.jpg") in done.stdout


def test_folders_patterns_and_the_json_summary(tmp_path, samples_dir, photo_pack_dir):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "a.jpg").write_bytes((samples_dir / "02-semi.jpg").read_bytes())
    (tmp_path / "in" / "sub" / "a.jpg").write_bytes((samples_dir / "05-heavy.jpg").read_bytes())
    (tmp_path / "in" / "sub" / "cut.jpg").write_bytes((samples_dir / "05-heavy.jpg").read_bytes()[:5000])
    out = tmp_path / "out"
    done = deblur(tmp_path / "in", tmp_path / "nothing*.png", "--recursive", "--json", "-o", out)
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    statuses = {r["input"]: r["status"] for r in summary["results"]}
    assert statuses[str(tmp_path / "nothing*.png")] == "failed"
    assert statuses[str(tmp_path / "in/sub/cut.jpg")] == "failed"
    done_ok = [r for r in summary["results"] if r["status"] != "failed"]
    assert [(r["input"], r["output"].rsplit("-", 1)[0]) for r in done_ok] == [
        (str(tmp_path / "in/a.jpg"), "a"), (str(tmp_path / "in/sub/a.jpg"), "a-2")], "same names, distinct results"
    assert summary["failed"] == 2 and summary["restored"] + summary["passthrough"] == 2
    assert sorted(results_in(out)) == sorted(r["output"] for r in done_ok)
    assert all(r["layout"] == "8-bit RGB" and set(r["scores"]) == {"sharp", "semi", "heavy"} for r in done_ok)
    assert summary["gallery"] == str(out / "index.html")


def test_reruns_add_to_the_folder_and_its_gallery(tmp_path, samples_dir, photo_pack_dir):
    out = tmp_path / "out"
    first = deblur(samples_dir / "05-heavy.jpg", "-o", out)
    assert first.returncode == 0, first.stderr
    kept = {name: (out / name).read_bytes() for name in results_in(out)}
    second = deblur(samples_dir / "05-heavy.jpg", "-o", out)
    assert second.returncode == 0, second.stderr
    assert results_in(out) == ["05-heavy-2-restored.jpg", "05-heavy-restored.jpg"]
    assert all((out / name).read_bytes() == data for name, data in kept.items()), "the first result is untouched"
    assert [r["output"] for r in read_records(out)] == ["05-heavy-restored.jpg", "05-heavy-2-restored.jpg"]
    assert (out / "index.html").is_file() and f"gallery {out / 'index.html'}" in second.stderr
    scripts = "".join(p.read_text() for p in (out / "gallery" / "data").glob("*.js"))
    assert "05-heavy-restored.jpg" in scripts and "05-heavy-2-restored.jpg" in scripts


def test_exif_and_icc_survive_the_command(tmp_path, photo_pack_dir):
    source = jpeg_with_metadata(tmp_path / "meta.jpg", read_sample("05-heavy.jpg"))
    done = deblur(source, "-o", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    (result,) = [p for p in (tmp_path / "out").glob("meta-*.jpg")]
    with Image.open(result) as image:
        assert image.getexif()[CAMERA_MAKE] == "deblurd test camera"
        assert image.info["icc_profile"] == srgb_profile()


def test_16_bit_png_through_the_command(tmp_path, samples_dir, photo_pack_dir):
    rgb16 = cv2.imread(str(samples_dir / "05-heavy.jpg")).astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "deep.png"), rgb16)
    done = deblur(tmp_path / "deep.png", "-o", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "16-bit RGB kept" in done.stdout
    out = cv2.imread(str(tmp_path / "out" / "deep-restored.png"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == rgb16.shape and np.any(out % 257), "more than 8 bits of detail"


def deblur_on_a_terminal(*args: object) -> tuple[subprocess.CompletedProcess, bytes]:
    """`deblur` with its stderr on a pseudo-terminal (of a size, as a terminal has): its result and what it drew."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        done = deblur(*args, stderr=follower)
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
    return done, seen


def test_a_progress_bar_on_a_terminal_only(tmp_path, samples_dir, photo_pack_dir):
    images = [samples_dir / "02-semi.jpg", samples_dir / "05-heavy.jpg"]
    done, seen = deblur_on_a_terminal(*images, "-o", tmp_path / "tty")
    assert done.returncode == 0
    assert b"| 2/2 05-heavy.jpg [" in seen and (b"image/s" in seen or b"s/image" in seen), seen[-500:]
    piped = deblur(*images, "-o", tmp_path / "pipe")
    assert piped.returncode == 0 and "/2 [" not in piped.stderr


def test_output_folder_not_writable_or_a_daemons(tmp_path, samples_dir, photo_pack_dir):
    (tmp_path / "file").write_text("x")
    done = deblur(samples_dir / "01-sharp.jpg", "-o", tmp_path / "file" / "o")
    assert done.returncode == 73 and f"{tmp_path / 'file'} is a file, not a folder" in done.stderr
    done = deblur(samples_dir / "01-sharp.jpg", "-o", tmp_path / "file")
    assert done.returncode == 73 and "is a file, not a folder: choose a folder with -o" in done.stderr
    assert "File exists" not in done.stderr
    (tmp_path / "daemon").mkdir()
    (tmp_path / "daemon" / "index.jsonl").write_text("")
    done = deblur(samples_dir / "01-sharp.jpg", "-o", tmp_path / "daemon")
    assert done.returncode == 73 and "holds a daemon's results (index.jsonl)" in done.stderr
    assert sorted(p.name for p in (tmp_path / "daemon").iterdir()) == ["index.jsonl"]


def test_save_map_writes_the_map_beside_the_result(tmp_path, samples_dir, photo_pack_dir):
    done = deblur(samples_dir / "05-heavy.jpg", "--save-map", "-o", tmp_path / "o")
    assert done.returncode == 0, done.stderr
    assert results_in(tmp_path / "o") == ["05-heavy-map.png", "05-heavy-restored.jpg"]
    assert "heavy blur, restored (8-bit RGB kept) (blur map: sharp" in done.stdout
    overlay = cv2.imread(str(tmp_path / "o" / "05-heavy-map.png"))
    assert overlay.shape == cv2.imread(str(samples_dir / "05-heavy.jpg")).shape
    assert RECORD_NAME in files_in(tmp_path / "o")


def copies_of_samples(samples_dir: Path, folder: Path) -> None:
    """Three copies of the blurred samples: more results than a 200 kB disk takes."""
    folder.mkdir()
    for copy in range(3):
        for sample in sorted(samples_dir.glob("0[2-5]-*.jpg")):
            (folder / f"{copy}-{sample.name}").write_bytes(sample.read_bytes())


def test_a_full_disk_stops_with_one_line_and_keeps_what_was_written(tmp_path, samples_dir, photo_pack_dir, tmpfs):
    out = tmpfs("200k")
    copies_of_samples(samples_dir, tmp_path / "in")
    done = deblur(tmp_path / "in", "-o", out)
    assert done.returncode == 73 and "Traceback" not in done.stderr
    assert "No space left on device" in done.stderr and "free space there, or choose another folder with -o" \
        in done.stderr and "run again with --skip-existing for the rest" in done.stderr
    kept = results_in(out)
    assert kept and all(cv2.imread(str(out / name)) is not None for name in kept), "every result there is whole"
    assert [r["output"] for r in read_records(out)] == [p for p in kept], "recorded once its file is in place"
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]


def test_a_gallery_that_does_not_fit_leaves_the_results_complete(samples_dir, photo_pack_dir, tmpfs):
    source = samples_dir / "03-heavy.jpg"
    pages = -(-int(source.stat().st_size * 1.3) // 4096) + 2  # the result (a JPEG of it), its record line, slack
    out = tmpfs(f"{pages * 4}k")  # but no room for the gallery's 7 files
    done = deblur(source, "-o", out)
    assert done.returncode == 73 and "Traceback" not in done.stderr
    assert f"the results in {out} are complete, but its gallery could not be written (No space left" in done.stderr
    assert [r["output"] for r in read_records(out)] == results_in(out) == ["03-heavy-restored.jpg"]
    assert cv2.imread(str(out / "03-heavy-restored.jpg")) is not None


def test_images_may_also_follow_an_option(tmp_path, samples_dir, photo_pack_dir):
    done = deblur(samples_dir / "02-semi.jpg", "-o", tmp_path / "out", samples_dir / "05-heavy.jpg", "--json")
    assert done.returncode == 0, done.stderr
    assert {Path(i["input"]).name for i in json.loads(done.stdout)["results"]} == {"02-semi.jpg", "05-heavy.jpg"}
    bad = deblur(samples_dir / "02-semi.jpg", "-o", tmp_path / "out2", "--no-such-option")
    assert bad.returncode == 2 and "unrecognized arguments: --no-such-option" in bad.stderr


# resume, counts by reason, progress ----------------------------------------------------------------------------

def test_skip_existing_resumes_after_a_full_disk_without_duplicates(tmp_path, samples_dir, photo_pack_dir, tmpfs):
    out = tmpfs("200k")
    copies_of_samples(samples_dir, tmp_path / "in")
    first = deblur(tmp_path / "in", "-o", out)
    assert first.returncode == 73 and "run again with --skip-existing" in first.stderr
    before = {name: (out / name).read_bytes() for name in results_in(out)}
    assert 0 < len(before) < 12
    subprocess.run(["mount", "-o", "remount,size=20m", str(out)], check=True)
    second = deblur(tmp_path / "in", "--skip-existing", "--json", "-o", out)
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert summary["skipped"] == len(before) and summary["reasons"] == {"already done": len(before)}
    assert summary["restored"] + summary["passthrough"] == 12 - len(before)
    names = results_in(out)
    assert len(names) == 12 and not [n for n in names if "-2-" in n], "each input once, no -2 duplicate"
    assert all((out / name).read_bytes() == data for name, data in before.items())
    assert sorted(r["output"] for r in read_records(out)) == names


def test_skip_existing_redoes_a_changed_input_and_a_deleted_result(tmp_path, samples_dir, photo_pack_dir):
    (tmp_path / "in").mkdir()
    for name in ("02-semi.jpg", "05-heavy.jpg", "03-heavy.jpg"):
        (tmp_path / "in" / name).write_bytes((samples_dir / name).read_bytes())
    out = tmp_path / "out"
    assert deblur(tmp_path / "in", "-o", out).returncode == 0
    os.utime(tmp_path / "in" / "02-semi.jpg", ns=(1, 1))  # touched: another file as far as resuming knows
    (out / read_records(out)[2]["output"]).unlink()  # 05-heavy's result, deleted by the user
    again = deblur(tmp_path / "in", "--skip-existing", "-o", out)
    assert again.returncode == 0, again.stderr
    assert "1 skipped" in again.stderr and "no new result, by reason: 1 already done" in again.stderr
    redone = sorted(r["input"].rsplit("/", 1)[1] for r in read_records(out)[3:])
    assert redone == ["02-semi.jpg", "05-heavy.jpg"]
    plain = deblur(tmp_path / "in" / "03-heavy.jpg", "-o", out)
    assert plain.returncode == 0 and "03-heavy-2-" in plain.stdout, "without the flag nothing is skipped"


def test_files_left_out_are_counted_by_reason(tmp_path, samples_dir, photo_pack_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes((samples_dir / "05-heavy.jpg").read_bytes())
    Image.fromarray(read_sample("05-heavy.jpg")).save(folder / "b.webp")
    (folder / "notes.txt").write_text("not a picture")
    (folder / "cut.jpg").write_bytes((samples_dir / "05-heavy.jpg").read_bytes()[:3000])
    (folder / "fake.png").write_text("a text file with an image's name")
    Image.fromarray(read_sample("05-heavy.jpg")).save(tmp_path / "named.tif")
    done = deblur(folder, tmp_path / "named.tif", "--json", "-o", tmp_path / "out")
    assert done.returncode == 1, "inputs that could not be read fail the run; files a folder held are only counted"
    summary = json.loads(done.stdout)
    assert summary["reasons"] == {"unsupported format": 2, "not an image": 2, "unreadable": 1}
    assert summary["failed"] == 3 and summary["skipped"] == 2 and summary["restored"] == 1
    text = deblur(folder, tmp_path / "named.tif", "-o", tmp_path / "out2")
    assert "no new result, by reason: 2 unsupported format, 2 not an image, 1 unreadable" in text.stderr


def test_failure_reason_reads_the_header(tmp_path):
    from deblurd.commands.deblur_inputs import failure_reason

    Image.new("1", (20000, 20000)).save(tmp_path / "bomb.png")  # 400 MP in a few kB: refused from the header
    Image.new("RGB", (8, 8)).save(tmp_path / "small.gif")
    (tmp_path / "damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    error = InputError("x")
    assert failure_reason(tmp_path / "bomb.png", error) == "over the pixel limit"
    assert failure_reason(tmp_path / "small.gif", error) == "unsupported format"
    assert failure_reason(tmp_path / "damaged.png", error) == "unreadable"
    assert failure_reason(tmp_path / "gone.jpg", error) == "unreadable"
    error.reason = "over the pixel limit"  # type: ignore[attr-defined]
    assert failure_reason(tmp_path / "small.gif", error) == "over the pixel limit", "the error's own reason first"


def test_no_output_folder_is_left_when_every_input_fails(tmp_path, samples_dir, photo_pack_dir):
    (tmp_path / "bad.jpg").write_bytes(b"")
    out = tmp_path / "a" / "b" / "out"
    done = deblur(tmp_path / "bad.jpg", tmp_path / "nothing-*.jpg", "-o", out)
    assert done.returncode == 1 and "no output folder written" in done.stderr
    assert not (tmp_path / "a").exists(), "every folder the run created is removed again"
    (tmp_path / "kept").mkdir()
    assert deblur(tmp_path / "bad.jpg", "-o", tmp_path / "kept").returncode == 1
    assert (tmp_path / "kept").is_dir(), "a folder that was there stays"


def test_the_cascade_reports_progress_within_one_large_image(photo_pack):
    big = cv2.resize(read_sample("05-heavy.jpg"), (2560, 1920), interpolation=cv2.INTER_CUBIC)
    shares: list[float] = []
    router = Router(photo_pack)
    severity, out = router.stills.route(big, progress=shares.append)
    assert out is not big, "blurred, so every scale up to the full width is restored"
    assert len(shares) > 20 and shares == sorted(shares) and shares[0] < 0.05 and shares[-1] == pytest.approx(1.0)
    assert np.array_equal(router.stills.route(big)[1], out), "the callback changes nothing"


def test_the_bar_moves_within_one_large_image(tmp_path, samples_dir, photo_pack_dir):
    big = cv2.resize(cv2.imread(str(samples_dir / "05-heavy.jpg")), (2560, 1920), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(tmp_path / "big.jpg"), big)
    done, seen = deblur_on_a_terminal(tmp_path / "big.jpg", "-o", tmp_path / "out")
    assert done.returncode == 0
    shown = {int(m) for m in re.findall(rb"(\d+)%\|[^|]*\| 1/1 big\.jpg", seen)}
    assert len([p for p in shown if 0 < p < 100]) >= 5, f"the bar moved through {sorted(shown)}"
