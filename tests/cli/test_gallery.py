"""scripts/make_gallery.py: a quick regeneration writes images, the table and a page that a
headless Chromium loads with every image; the committed gallery page loads too."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import subprocess_env

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        pytest.skip(
            "Chromium is not installed (Debian: apt install chromium); the gallery page check needs a headless browser"
        )
    return exe


def _page_status(index: str) -> str:
    """Load ``index`` in headless Chromium and return the page's own report of its images."""
    dom = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--virtual-time-budget=15000",
            "--dump-dom",
            "file://" + os.path.abspath(index),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    m = re.search(r'<p id="status">([^<]*)</p>', dom)
    assert m, dom[-2000:]
    return m.group(1)


@pytest.fixture(scope="module")
def quick_gallery(tmp_path_factory):
    out = tmp_path_factory.mktemp("gallery")
    only = ["default_dream.jpg", "neuron_blocks.4_5.jpg", "zoom.gif", "diversity.jpg"]
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "scripts", "make_gallery.py"),
            "--quick",
            "--out",
            str(out),
            "--only",
            *only,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=subprocess_env(),
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return out, only


def test_quick_gallery_writes_images_table_and_page(quick_gallery):
    out, only = quick_gallery
    table = (out / "README.md").read_text()
    for name in only:
        shown = (
            name.replace(".jpg", "_sheet.jpg") if name == "diversity.jpg" else name
        )  # a batch shows its contact sheet
        assert (out / shown).exists()
        row = next(line for line in table.splitlines() if f"]({shown})" in line)
        assert re.search(r"\| `cnnvis [^`]*--out gallery/" + re.escape(name) + r"` \| \d+x\d+", row), row
        assert re.search(r"\| \d+ s \| \d\.\d\d GB \|$", row), row
    assert "| neuron |" in table and "| diversity |" in table  # the preset column
    assert all((out / f"diversity_b{i}.jpg").exists() for i in range(4))
    assert (out / "index.html").exists()


def test_quick_gallery_page_loads_every_image(quick_gallery):
    out, only = quick_gallery
    assert _page_status(str(out / "index.html")) == f"all {len(only)} images loaded"


def test_committed_gallery_page_loads_every_image():
    index = os.path.join(ROOT, "gallery", "index.html")
    if not os.path.exists(index):
        pytest.skip("gallery/index.html is not generated yet (python scripts/make_gallery.py)")
    status = _page_status(index)
    assert status.startswith("all ") and status.endswith(" images loaded"), status


def test_quick_gallery_runs_its_entries_as_ray_tasks(tmp_path):
    pytest.importorskip("ray")
    import json

    only = ["neuron_blocks.4_5.jpg"]
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "scripts", "make_gallery.py"),
            "--quick",
            "--ray",
            "--out",
            str(tmp_path),
            "--only",
            *only,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=subprocess_env(),
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "1/1 entries done" in proc.stdout
    assert (tmp_path / only[0]).stat().st_size > 0 and (
        tmp_path / "neuron_blocks.4_5.jpg.manifest.json"
    ).exists()  # written by the driver
    rows = json.loads((tmp_path / "gallery.json").read_text())
    assert [r["file"] for r in rows] == only and rows[0]["seconds"] > 0


def test_quick_gallery_makes_its_pan_clip_and_dreams_it(tmp_path):
    """The video entries dream a clip the script makes itself (a pan over the bundled photo)."""
    import imageio.v3 as iio

    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "scripts", "make_gallery.py"),
            "--quick",
            "--out",
            str(tmp_path),
            "--only",
            "video_flow.gif",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=subprocess_env(),
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    clip, gif = iio.imread(tmp_path / "pan_clip.mp4", index=None), iio.imread(tmp_path / "video_flow.gif", index=None)
    assert clip.shape == (10, 126, 224, 3) and gif.shape[:3] == (10, 126, 224)
    assert "`cnnvis dream gallery/pan_clip.mp4 --flow dis" in (tmp_path / "README.md").read_text()
