"""cnnvis.recipes.atlas_page: the atlas index.html escapes what it inserts, embeds the atlas as JSON,
and in headless Chromium loads every thumbnail and jumps to a unit (``?check=LAYER:UNIT``)."""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from urllib.parse import quote

import imageio.v3 as iio
import numpy as np
import pytest

from cnnvis.recipes.atlas_page import atlas_html

UNITS = {"blocks.4": (112, [0, 5, 17]), "blocks.5": (40, [3, 9])}


def _atlas(units=UNITS) -> dict:
    layers = {}
    for layer, (channels, rendered) in units.items():
        layers[layer] = {
            "channels": channels,
            "sheet": f"{layer}_sheet.jpg",
            "units": {
                str(u): {
                    "file": f"{layer}/unit_{u:04d}.png",
                    "activation": 1.5 + u,
                    "seconds": 2.0 + u,
                    "seed": 1000 + u,
                    "command": f"cnnvis atlas --layer {layer} --units {u} --batch-size 1 --out atlas_unit{u}",
                }
                for u in rendered
            },
        }
    return {
        "format": "cnnvis-atlas/1",
        "model": "efficientnet-lite0",
        "kind": "channel",
        "created": "2026-11-30T06:00:00+00:00",
        "layers": layers,
    }


def _write(tmp_path, atlas: dict, missing=()) -> str:
    rng = np.random.default_rng(0)
    for info in atlas["layers"].values():
        for unit in info["units"].values():
            if unit["file"] in missing:
                continue
            path = tmp_path / unit["file"]
            path.parent.mkdir(parents=True, exist_ok=True)
            iio.imwrite(path, rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    index = tmp_path / "index.html"
    index.write_text(atlas_html(atlas), encoding="utf-8")
    return index


def _chromium() -> str:
    import shutil

    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        pytest.skip(
            "Chromium is not installed (Debian: apt install chromium); the atlas page check needs a headless browser"
        )
    return exe


def _page_status(index, check: str) -> str:
    """Load ``index?check=CHECK`` in headless Chromium and return the page's own report."""
    url = index.resolve().as_uri() + "?check=" + quote(check, safe=":")
    dom = subprocess.run(
        [_chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--virtual-time-budget=15000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    m = re.search(r'<p id="status">([^<]*)</p>', dom)
    assert m, dom[-2000:]
    return m.group(1)


class _Page(HTMLParser):
    """Collects the embedded JSON, the figures' ids and all text nodes."""

    def __init__(self):
        super().__init__()
        self.data, self.ids, self.text, self._in_data = None, [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._in_data = tag == "script" and attrs.get("type") == "application/json"
        if tag == "figure":
            self.ids.append(attrs["id"])

    def handle_data(self, data):
        if self._in_data:
            self.data = json.loads(data)
            self._in_data = False
        else:
            self.text.append(data)


def _parse(page: str) -> _Page:
    p = _Page()
    p.feed(page)
    return p


# -- the HTML itself ------------------------------------------------------------------------


def test_page_embeds_the_atlas_and_lists_every_unit():
    atlas = _atlas()
    page = atlas_html(atlas)
    p = _parse(page)
    assert p.data == atlas
    assert p.ids == ["u-blocks.4-0", "u-blocks.4-5", "u-blocks.4-17", "u-blocks.5-3", "u-blocks.5-9"]
    assert page.count('<img loading="lazy"') == 5
    assert (
        "blocks.4: 3/112 units" in page
        and "blocks.5: 2/40 units" in page
        and "efficientnet-lite0 channel atlas" in page
    )
    assert '<select id="jump-layer">' in page  # two layers: a visible selector


def test_one_layer_hides_the_selector():
    page = atlas_html(_atlas({"blocks.4": (112, [5])}))
    assert '<select id="jump-layer" hidden>' in page


def test_hostile_names_are_escaped():
    atlas = _atlas({'a"<b>': (4, [1])})
    unit = atlas["layers"]['a"<b>']["units"]["1"]
    unit["command"] = "cnnvis atlas '</script><script>alert(1)</script>'"
    atlas["model"] = "<i>m</i>"
    page = atlas_html(atlas)
    assert "<b>" not in page and "<i>" not in page and "</script><script>alert" not in page
    assert page.count("</script>") == 2  # the JSON element and the page script, nothing else
    p = _parse(page)
    assert p.data == atlas  # \u003c round-trips
    assert p.ids == ['u-a"<b>-1']
    assert 'a"<b>: 1/4 units' in "".join(p.text)


# -- in a browser ---------------------------------------------------------------------------


def test_page_loads_every_image_and_jumps(tmp_path):
    index = _write(tmp_path, _atlas())
    assert _page_status(index, "blocks.4:5") == "images 5/5 loaded; jump blocks.4:5 ok"
    assert _page_status(index, "blocks.5:9") == "images 5/5 loaded; jump blocks.5:9 ok"  # through the layer selector


def test_jump_to_an_unrendered_unit_fails(tmp_path):
    index = _write(tmp_path, _atlas())
    assert (
        _page_status(index, "blocks.4:7")
        == "images 5/5 loaded; jump blocks.4:7 failed: blocks.4 unit 7 is not rendered"
    )
    assert _page_status(index, "blocks.9:5") == "images 5/5 loaded; jump blocks.9:5 failed: unknown layer"


def test_missing_image_counts_as_not_loaded(tmp_path):
    atlas = _atlas()
    index = _write(tmp_path, atlas, missing={"blocks.5/unit_0009.png"})
    assert _page_status(index, "blocks.4:5") == "images 4/5 loaded; jump blocks.4:5 ok"


def test_hostile_layer_name_jumps_in_the_browser(tmp_path):
    atlas = _atlas({'a"<b> #?': (4, [1, 2])})
    for u in atlas["layers"]['a"<b> #?']["units"].values():
        u["file"] = u["file"].replace('a"<b> #?', "hostile")  # a safe directory name; the id still uses the layer
    index = _write(tmp_path, atlas)
    status = _page_status(index, 'a"<b> #?:2')
    assert status == 'images 2/2 loaded; jump a"&lt;b&gt; #?:2 ok', status
