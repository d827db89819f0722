"""Manifests: what made an output, stored with it, so that ``cnnvis replay`` can make it again.

A manifest is a JSON object: the command and its resolved parameters (every flag, defaults
included), the resolved render configuration and seed, the model name and the SHA-256 of its
weights, the SHA-256 of every input file, the working directory, the versions of cnnvis, torch
and the libraries that shape the numbers, the device and the number of CPU threads (float
summation order, hence the last bits, depends on it). It is written twice: into the PNG's text
chunk (key ``cnnvis``) and into a sidecar ``NAME.manifest.json`` beside any output (JPEG and
video included).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform

from cnnvis.errors import InputError

FORMAT = "cnnvis-manifest/1"
PNG_KEY = "cnnvis"


def sidecar_path(out: str) -> str:
    """``dir/name.png`` -> ``dir/name.manifest.json``."""
    return os.path.splitext(out)[0] + ".manifest.json"


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _jsonable(v):
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def _input_files(params: dict, out_names: set[str]) -> dict[str, dict]:
    """Every parameter value that names an existing file (``LAYER=FILE`` pairs included)."""
    found = {}
    for name, value in params.items():
        if name in out_names:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for i, v in enumerate(values):
            if not isinstance(v, str):
                continue
            path = v.partition("=")[2] if "=" in v and not os.path.isfile(v) else v
            if path and os.path.isfile(path):
                key = name if len(values) == 1 else f"{name}[{i}]"
                found[key] = {"path": os.path.abspath(path), "sha256": file_sha256(path)}
    return found


def library_versions() -> dict:
    """The versions of Python, cnnvis and the libraries that shape the numbers (None: not installed)."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("cnnvis", "torch", "torchvision", "timm", "kornia", "numpy", "opencv-python-headless", "imageio"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def build_manifest(command: str, params: dict, *, model=None, cfg=None, device=None, status: str = "complete",
                   outputs: tuple[str, ...] = ("out", "video"), preset: str | None = None) -> dict:
    """The manifest of a run of ``command`` with click's resolved ``params`` (a preset's values
    included: ``preset`` only records which file supplied them)."""
    import torch

    dev = str(device) if device is not None else "cpu"
    info = {"type": dev, "threads": torch.get_num_threads(), "machine": platform.machine()}
    if dev.startswith("cuda") and torch.cuda.is_available():
        info["name"] = torch.cuda.get_device_name(torch.device(dev))
        info["cuda"] = torch.version.cuda
    return {
        "format": FORMAT,
        "command": command,
        "preset": preset,
        "params": _jsonable(params),
        "config": None if cfg is None else _jsonable(cfg.as_dict()),
        "seed": None if cfg is None else cfg.seed,
        "model": None if model is None else {"name": model.name, "weights_sha256": model.weights_sha256},
        "inputs": _input_files(params, set(outputs)),
        "cwd": os.getcwd(),
        "versions": library_versions(),
        "device": info,
        "status": status,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def png_text(manifest: dict) -> dict:
    """Keyword arguments that make imageio's PNG writer (Pillow) store ``manifest`` in a text chunk."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_itxt(PNG_KEY, json.dumps(manifest, sort_keys=True))
    return {"pnginfo": info}


def write_sidecar(out: str, manifest: dict) -> None:
    from cnnvis.io.files import write_atomic

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)

    write_atomic(sidecar_path(out), write)


def read_manifest(path: str) -> dict:
    """The manifest of an output: its PNG text chunk, else its sidecar; InputError if neither."""
    if not os.path.isfile(path):
        raise InputError(f"image not found: '{path}'; pass an image written by cnnvis")
    text = None
    if path.lower().endswith(".png"):
        try:
            from PIL import Image

            with Image.open(path) as im:
                text = im.text.get(PNG_KEY)
        except Exception:
            text = None
    if text is None and os.path.isfile(sidecar_path(path)):
        with open(sidecar_path(path)) as f:
            text = f.read()
    if text is None:
        raise InputError(f"'{path}' carries no cnnvis manifest (no PNG text chunk '{PNG_KEY}', no {os.path.basename(sidecar_path(path))}); replay takes images written by cnnvis")
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"the manifest of '{path}' is not valid JSON ({e.msg} at char {e.pos}); it was edited or truncated") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"the manifest of '{path}' has format {manifest.get('format') if isinstance(manifest, dict) else None!r}, expected {FORMAT!r}")
    return manifest
