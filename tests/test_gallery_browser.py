"""The gallery in a real browser: a daemon run's output folder, copied elsewhere as a user would, opened over
file:// in headless Chromium (Debian's chromium or chromium-headless-shell; .ci/run installs one) with no network.
Checks what the page shows after its script ran, and saves a screenshot as the test's artifact."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cv2
import pytest
from conftest import REPO

from deblurd.output.gallery import ASSETS, GALLERY_DIR, INDEX_RESULTS, GalleryEntry, write_gallery
from deblurd.output.store import read_index
from tools.figures.gallery import WINDOW, find_chromium, record_results, run_chromium, screenshot

PER_PAGE = int(re.search(r"PER_PAGE = (\d+);", (ASSETS / "gallery.js").read_text())[1])

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="no Chromium binary on PATH (chromium, "
                                "chromium-headless-shell): `apt-get install chromium-headless-shell`, as .ci/run does")


class Cards(HTMLParser):
    """The result cards of a rendered page: each card's attributes and those of the elements inside it."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.cards: list[dict] = []
        self.body: dict = {}
        self._depth = 0
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.body = attrs
        if tag == "article":
            self.cards.append({"attrs": attrs, "inside": [], "text": ""})
            self._depth = 1
        elif self._depth:
            self.cards[-1]["inside"].append((tag, attrs))
            self._depth += tag not in ("img", "input")

    def handle_endtag(self, tag):
        if self._depth:
            self._depth -= 1

    def handle_data(self, data):
        if self._depth:
            self.cards[-1]["text"] += data

    def ids(self) -> list[int]:
        return [int(c["attrs"]["data-id"]) for c in self.cards]


def _inside(card: dict, tag: str, cls: str) -> list[dict]:
    return [a for t, a in card["inside"] if t == tag and cls in a.get("class", "").split()]


@pytest.fixture(scope="module")
def copied(tmp_path_factory, photo_pack) -> tuple[Path, list[dict]]:
    """A daemon run's output (real models on the replay samples, one button still), copied with the README's
    recipe (deploy/copy-results.sh) when rsync is installed, else copied file by file."""
    tmp = tmp_path_factory.mktemp("gallery")
    out, copy = tmp / "out", tmp / "elsewhere" / "deblurd-output"
    record_results(out, frames=8, size=(320, 240), stills=1, pack=photo_pack)
    if shutil.which("rsync"):
        done = subprocess.run(["sh", str(REPO / "deploy" / "copy-results.sh"), f"{out}/", str(copy)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    else:
        shutil.copytree(out, copy)
    shutil.rmtree(out)  # the page must not reach back into the original folder
    return copy, read_index(copy)


def test_the_copied_gallery_shows_the_newest_result_first_with_its_images(copied, tmp_path):
    copy, index = copied
    page = Cards(run_chromium(copy / "index.html", "--dump-dom"))
    newest = max(index, key=lambda e: (e["time"], e["id"]))
    assert page.ids() == [e["id"] for e in sorted(index, key=lambda e: (e["time"], e["id"]), reverse=True)]
    assert page.ids()[0] == newest["id"] and page.body["data-shown"] == str(len(index))
    first = page.cards[0]
    expected = [kind for kind in ("input", "restored") if kind in newest["files"]]
    assert [a["class"] for a in _inside(first, "img", "input") + _inside(first, "img", "restored")] == expected
    for img in _inside(first, "img", "input") + _inside(first, "img", "restored"):
        assert img.get("data-state") == "loaded", f"{img['src']} did not load"
        assert img["src"] == newest["files"][img["class"]], "not a relative link into the copy"
    assert newest["severity"] in first["text"] and newest["kind"] in first["text"]
    assert not any(_inside(card, "div", "missing") for card in page.cards[:3])
    png = screenshot(copy / "index.html", tmp_path / "gallery.png", fragment="#map=1")
    print(f"\ngallery screenshot: {png}")
    image = cv2.imread(str(png))
    assert image is not None and image.shape[:2] == WINDOW[::-1] and image.std() > 20


def test_filters_the_blur_map_and_the_day_page_work_in_the_browser(copied):
    copy, index = copied
    stills = Cards(run_chromium(copy / "index.html", "--dump-dom", fragment="#kind=still"))
    assert stills.ids() == [e["id"] for e in index if e["kind"] == "still"] and len(stills.ids()) == 1
    worst = max(("semi", "heavy"), key=lambda s: sum(e["severity"] == s for e in index))
    by_severity = Cards(run_chromium(copy / "index.html", "--dump-dom", fragment=f"#sev={worst}"))
    assert sorted(by_severity.ids()) == sorted(e["id"] for e in index if e["severity"] == worst)
    mapped = Cards(run_chromium(copy / "index.html", "--dump-dom", fragment="#map=1&view=side"))
    assert "show-map" in mapped.body["class"] and "side" in mapped.body["class"]
    sidecar = json.loads((copy / next(e for e in index if e["id"] == mapped.ids()[0])["files"]["sidecar"]).read_text())
    rows = sidecar["blur_map"]["rows"]
    cells = [a["class"] for t, a in mapped.cards[0]["inside"] if t == "i"]
    assert cells == [f"cell-{letter}" for row in rows for letter in row]
    day = sorted(p for p in (copy / GALLERY_DIR).glob("*.html"))[-1]
    on_day = Cards(run_chromium(day, "--dump-dom"))
    assert on_day.ids() == mapped.ids() and all(
        img.get("data-state") == "loaded" for img in _inside(on_day.cards[0], "img", "input"))


def test_a_result_pruned_from_the_copy_shows_a_note_instead_of_a_broken_image(copied, tmp_path):
    copy, index = copied
    pruned = Path(shutil.copytree(copy, tmp_path / "pruned"))
    newest = max(index, key=lambda e: (e["time"], e["id"]))
    (pruned / newest["files"]["input"]).unlink()
    page = Cards(run_chromium(pruned / "index.html", "--dump-dom"))
    notes = _inside(page.cards[0], "div", "missing")
    assert len(notes) == 1 and notes[0]["data-state"] == "missing" and "removed by retention" in page.cards[0]["text"]
    assert not _inside(page.cards[1], "div", "missing")


def test_a_day_of_thousands_of_results_is_paged(copied, tmp_path):
    copy, index = copied
    image = index[-1]["files"].get("restored") or index[-1]["files"]["input"]
    folder = tmp_path / "many"
    shutil.copytree(copy / Path(image).parent, folder / Path(image).parent)
    start = 1_700_000_000.0
    write_gallery(folder, [GalleryEntry(n, start + n, "continuous", ("semi", "heavy")[n % 2], image, image)
                           for n in range(1, 3001)])
    first = Cards(run_chromium(folder / "index.html", "--dump-dom"))
    day = next((folder / GALLERY_DIR).glob("*.html"))
    on_day = Cards(run_chromium(day, "--dump-dom"))
    assert int(first.body["data-shown"]) >= INDEX_RESULTS and first.ids() == list(range(3000, 3000 - PER_PAGE, -1))
    assert on_day.body["data-shown"] == "3000" and len(on_day.cards) == PER_PAGE
    last = Cards(run_chromium(day, "--dump-dom", fragment="#page=999&sev=heavy"))
    assert last.ids() == list(range(2 * (1500 % PER_PAGE) - 1, 0, -2)), "the last page: the oldest heavy (odd) ids"


def test_kind_still_on_a_folder_without_stills_keeps_the_drop_down_and_says_why(tmp_path):
    folder = tmp_path / "no-stills"
    write_gallery(folder, [GalleryEntry(n, 1_700_000_000.0 + n, "continuous", "semi", "a.jpg", "b.jpg")
                           for n in (1, 2)])
    stills = Cards(run_chromium(folder / "index.html", "--dump-dom", fragment="#kind=still"))
    assert stills.body["data-kind"] == "still" and stills.body["data-shown"] == "0"
    assert '<option value="still">stills (button)</option>' in (folder / "index.html").read_text()
    dom = run_chromium(folder / "index.html", "--dump-dom", fragment="#kind=still")
    assert "No result of this kind (stills (button)) here yet." in dom
    unknown = Cards(run_chromium(folder / "index.html", "--dump-dom", fragment="#kind=nonsense"))
    assert unknown.body["data-kind"] == "" and unknown.ids() == [2, 1], "a kind the page does not offer: all"
