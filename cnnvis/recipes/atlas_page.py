"""The static ``index.html`` of a ``cnnvis atlas`` directory: one page, no server, no network.

:func:`atlas_html` turns the atlas dict (what ``atlas.json`` holds) into a page with, per layer,
a grid of lazily loaded thumbnails; a box that jumps to a unit; and an overlay with the full
image, the activation, the time and the exact command that re-renders that unit alone. It
returns the page's text; the caller writes it (the CLI, atomically, as ``index.html``).

Stable hooks (used by the browser test, handy for links):

* each thumbnail is ``<figure class="unit" id="u-LAYER-UNIT" data-layer=... data-unit=...>``;
  the jump target gets the class ``hit``;
* the jump box is ``<form id="jump">`` with ``#jump-layer`` (a select, hidden for one layer),
  ``#jump-unit`` and a message line ``#jump-msg``; the overlay is ``#overlay`` (``hidden`` when
  closed) with ``data-layer``/``data-unit`` naming the unit it shows;
* ``index.html?check=LAYER:UNIT`` loads every thumbnail with ``new Image()``, runs the jump box
  (sets its fields and submits the form as Enter would) and writes into ``<p id="status">``
  exactly ``images N/M loaded; jump LAYER:UNIT ok`` or ``... jump LAYER:UNIT failed: REASON``.
"""

from __future__ import annotations

import json
from html import escape
from urllib.parse import quote

_CSS = """
body{margin:0;padding:1.2em 2em;background:#1b1d22;color:#ddd;font:14px/1.4 system-ui,sans-serif}
h1{font-size:1.3em;margin:0 0 .2em} h2{font-size:1.1em;margin:1.6em 0 .6em;border-bottom:1px solid #333}
a{color:#8cf} .sub{color:#999;margin:0 0 1em}
#jump{position:sticky;top:0;background:#1b1d22;padding:.5em 0;z-index:1;display:flex;gap:.5em;align-items:center}
#jump input{width:6em} #jump-msg{color:#f99;margin:0}
input,select,button{background:#2a2d34;color:#ddd;border:1px solid #444;border-radius:4px;
  padding:.2em .5em;font:inherit}
button{cursor:pointer}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(120px,1fr));gap:8px}
figure.unit{margin:0;padding:4px;text-align:center;border-radius:6px;cursor:pointer;border:2px solid transparent}
figure.unit:hover{background:#262930} figure.unit.hit{border-color:#fc3;background:#2f2a1a}
figure.unit img{width:112px;height:112px;object-fit:contain;background:#111;display:block;margin:auto}
figcaption{color:#aaa;font-size:.85em}
#overlay{position:fixed;inset:0;background:rgba(0,0,0,.8);display:flex;align-items:center;justify-content:center;z-index:2}
#overlay[hidden]{display:none}
#overlay .panel{background:#24272e;padding:1em;border-radius:8px;max-width:90vw;max-height:95vh;overflow:auto}
#ov-img{max-width:min(80vw,640px);max-height:70vh;image-rendering:auto;display:block;margin:0 auto .6em}
#ov-title{margin:0 0 .3em} #ov-facts{color:#bbb;margin:0 0 .5em}
pre{background:#111;padding:.6em;border-radius:4px;white-space:pre-wrap;word-break:break-all;margin:0 0 .4em}
"""

_JS = """
(() => {
const atlas = JSON.parse(document.getElementById("atlas-data").textContent);
const $ = id => document.getElementById(id);
const form = $("jump"), layerBox = $("jump-layer"), unitBox = $("jump-unit"), msg = $("jump-msg");
const overlay = $("overlay"), copyBtn = $("ov-copy"), cmd = $("ov-cmd");
const figId = (layer, unit) => "u-" + layer + "-" + unit;
const fmt = (x, f) => typeof x === "number" ? f(x) : "\\u2014";

function open(fig) {
  const layer = fig.dataset.layer, unit = fig.dataset.unit;
  const u = ((atlas.layers[layer] || {}).units || {})[fig.dataset.key] || {};
  $("ov-img").src = fig.querySelector("img").src;
  $("ov-title").textContent = layer + " \\u00b7 unit " + unit;
  $("ov-facts").textContent = "activation " + fmt(u.activation, x => x.toPrecision(4)) +
    " \\u00b7 " + fmt(u.seconds, x => x.toFixed(1) + " s") + (u.seed !== undefined ? " \\u00b7 seed " + u.seed : "");
  cmd.textContent = u.command || "\\u2014";
  copyBtn.textContent = "copy";
  overlay.dataset.layer = layer; overlay.dataset.unit = unit;
  overlay.hidden = false;
}
function close() { overlay.hidden = true; }

function jump(e) {
  e.preventDefault();
  const layer = layerBox.value, raw = unitBox.value.trim();
  msg.textContent = "";
  if (!(layer in atlas.layers)) { msg.textContent = "unknown layer"; return; }
  if (!/^\\d+$/.test(raw)) { msg.textContent = "enter a unit number"; return; }
  const unit = String(parseInt(raw, 10)), fig = $(figId(layer, unit));
  if (!fig) { msg.textContent = layer + " unit " + unit + " is not rendered"; return; }
  document.querySelectorAll("figure.unit.hit").forEach(f => f.classList.remove("hit"));
  fig.classList.add("hit");
  fig.scrollIntoView({block: "center"});
  open(fig);
}
form.addEventListener("submit", jump);

document.querySelector("main").addEventListener("click", e => {
  const fig = e.target.closest("figure.unit"); if (fig) open(fig);
});
document.querySelector("main").addEventListener("keydown", e => {
  const fig = e.target.closest("figure.unit"); if (fig && e.key === "Enter") open(fig);
});
overlay.addEventListener("click", e => { if (e.target === overlay) close(); });
document.addEventListener("keydown", e => { if (e.key === "Escape") close(); });
copyBtn.addEventListener("click", async () => {
  try { await navigator.clipboard.writeText(cmd.textContent); copyBtn.textContent = "copied"; }
  catch (err) {
    const r = document.createRange(); r.selectNodeContents(cmd);
    const s = getSelection(); s.removeAllRanges(); s.addRange(r);
    copyBtn.textContent = document.execCommand("copy") ? "copied" : "press Ctrl-C";
  }
});

const status = $("status"), thumbs = [...document.querySelectorAll("figure.unit img")];
const check = new URLSearchParams(location.search).get("check");
if (check === null) { status.textContent = thumbs.length + " units"; return; }
const load = src => new Promise(res => {
  const im = new Image(); im.onload = () => res(true); im.onerror = () => res(false); im.src = src;
});
Promise.all(thumbs.map(i => load(i.src))).then(oks => {
  const images = "images " + oks.filter(Boolean).length + "/" + oks.length + " loaded";
  const cut = check.lastIndexOf(":");
  let verdict;
  if (cut < 0) verdict = "failed: expected LAYER:UNIT";
  else {
    const layer = check.slice(0, cut), unit = check.slice(cut + 1);
    layerBox.value = layer; unitBox.value = unit;
    form.requestSubmit();  // the same submit event as Enter or the button
    const fig = /^\\d+$/.test(unit) ? $(figId(layer, String(parseInt(unit, 10)))) : null;
    if (!fig) verdict = "failed: " + (msg.textContent || "no such unit");
    else if (!fig.classList.contains("hit")) verdict = "failed: not highlighted";
    else if (overlay.hidden || overlay.dataset.layer !== layer || overlay.dataset.unit !== fig.dataset.unit)
      verdict = "failed: overlay does not show it";
    else verdict = "ok";
  }
  status.textContent = images + "; jump " + check + " " + verdict;
});
})();
"""


def _unit_order(key: str):
    return (0, int(key), "") if key.isdigit() else (1, 0, key)


def _unit_label(key: str) -> str:
    return str(int(key)) if key.isdigit() else key


def _embed_json(data) -> str:
    """JSON safe inside a <script> element: no ``</script>``, no ``<!--``."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def atlas_html(atlas: dict) -> str:
    """The whole ``index.html`` of an atlas directory, as text (paths in ``atlas`` are relative
    to it)."""
    model, kind = str(atlas.get("model", "?")), str(atlas.get("kind", "channel"))
    layers = atlas.get("layers", {})
    counts, sections = [], []
    for layer, info in layers.items():
        units = info.get("units", {})
        total = info.get("channels")
        counts.append(f"{escape(layer)}: {len(units)}/{total if total is not None else '?'} units")
        sheet = info.get("sheet")
        link = f' <a href="{escape(quote(sheet))}">contact sheet</a>' if sheet else ""
        figs = []
        for key in sorted(units, key=_unit_order):
            label = _unit_label(key)
            src = escape(quote(str(units[key].get("file", ""))))
            figs.append(
                f'<figure class="unit" id="{escape(f"u-{layer}-{label}")}" data-layer="{escape(layer)}" '
                f'data-unit="{escape(label)}" data-key="{escape(key)}" tabindex="0">'
                f'<img loading="lazy" src="{src}" width="112" height="112" alt="{escape(f"{layer} unit {label}")}">'
                f"<figcaption>{escape(label)}</figcaption></figure>"
            )
        sections.append(
            f'<section id="{escape(f"l-{layer}")}"><h2>{escape(layer)} '
            f"<small>({len(units)}/{total if total is not None else '?'} units)</small>{link}</h2>\n"
            f'<div class="grid">\n' + "\n".join(figs) + "\n</div></section>"
        )
    options = "".join(f'<option value="{escape(layer)}">{escape(layer)}</option>' for layer in layers)
    title = f"{model} {kind} atlas"
    created = f" · created {escape(str(atlas['created']))}" if atlas.get("created") else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{escape(title)}</h1>
<p class="sub">{" · ".join(counts)}{created}</p>
<form id="jump"><label>jump to <select id="jump-layer"{"" if len(layers) > 1 else " hidden"}>{options}</select></label>
<input id="jump-unit" type="text" inputmode="numeric" placeholder="unit" autocomplete="off">
<button type="submit">go</button><p id="jump-msg"></p></form>
<main>
{chr(10).join(sections)}
</main>
<div id="overlay" hidden><div class="panel"><img id="ov-img" alt=""><h3 id="ov-title"></h3><p id="ov-facts"></p>
<pre><code id="ov-cmd"></code></pre><button id="ov-copy" type="button">copy</button></div></div>
<p id="status"></p>
<script type="application/json" id="atlas-data">{_embed_json(atlas)}</script>
<script>{_JS}</script>
</body></html>
"""
