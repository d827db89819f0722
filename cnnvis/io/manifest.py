"""Manifests: what made an output, stored with it, so that ``cnnvis replay`` can make it again.

A manifest is a JSON object: the command and its resolved parameters (every flag, defaults
included), the resolved render configuration and seed, the model name and the SHA-256 of its
weights, the SHA-256 of every input file, the working directory, the versions of cnnvis, torch
and the libraries that shape the numbers, the device and the number of CPU threads (float
summation order, hence the last bits, depends on it). It is written twice: into the PNG's text
chunk (key ``cnnvis``) and into a sidecar ``NAME.EXT.manifest.json`` beside any output (JPEG and
video included): one per file, so ``recon.png`` and ``recon.mp4`` keep their own. Outputs of
cnnvis before the extension was part of the name carry ``NAME.manifest.json``, still read.
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
# The parameters that name what a command writes (every other file-naming parameter is an input).
OUTPUT_PARAMS = ("out", "video")
# The sidecar's record of the file it describes: two runs writing one output at once must not leave
# the image of one beside the manifest of the other unnoticed.
FILE_SHA_KEY = "file_sha256"
MAX_SIDECAR_BYTES = 16 << 20  # a manifest is a few kB; a larger "sidecar" is not one


def sidecar_path(out: str) -> str:
    """``dir/name.png`` -> ``dir/name.png.manifest.json``; a folder of frames ``frames/`` ->
    ``frames.manifest.json``."""
    return (out.rstrip("/" + os.sep) or out) + ".manifest.json"


def legacy_sidecar_path(out: str) -> str:
    """The sidecar name of outputs made before the extension was part of it: ``dir/name.manifest.json``."""
    return os.path.splitext(out.rstrip("/" + os.sep) or out)[0] + ".manifest.json"


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


def input_paths(params: dict, out_names=OUTPUT_PARAMS) -> dict[str, str]:
    """``{key: path}`` for every parameter value that names an existing file (``LAYER=FILE`` pairs
    included; ``key`` is ``name`` or ``name[i]`` for a repeated option), outputs left out."""
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
                found[name if len(values) == 1 else f"{name}[{i}]"] = path
    return found


def _input_files(params: dict, out_names) -> dict[str, dict]:
    """Every input file of ``params`` with its absolute path and SHA-256."""
    return {
        key: {"path": os.path.abspath(path), "sha256": file_sha256(path)}
        for key, path in input_paths(params, out_names).items()
    }


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


def _model_record(model, layouts: dict[str, str] | None) -> dict:
    """The model of a run: its name, weights, input size, and the layouts of the layers the run
    reads (``blocks.6`` -> ``tokens+1``; see :mod:`cnnvis.models.layouts`)."""
    return {
        "name": model.name,
        "weights_sha256": model.weights_sha256,
        "input_size": model.input_size,
        "fixed_size": bool(getattr(model, "fixed_size", False)),
        "layouts": dict(layouts or {}),
    }


def build_manifest(
    command: str,
    params: dict,
    *,
    model=None,
    cfg=None,
    device=None,
    status: str = "complete",
    outputs: tuple[str, ...] = OUTPUT_PARAMS,
    preset: str | None = None,
    layouts: dict[str, str] | None = None,
    compute: dict | None = None,
) -> dict:
    """The manifest of a run of ``command`` with click's resolved ``params`` (a preset's values
    included: ``preset`` only records which file supplied them); ``layouts``: layer -> layout of
    the layers the run read; ``compute``: how the network ran, resolved on this machine
    (:meth:`cnnvis.models.compute.Execution.record`: precision, channels_last, compile)."""
    import torch

    dev = str(device) if device is not None else "cpu"
    info = {"type": dev, "threads": torch.get_num_threads(), "machine": platform.machine()}
    if dev.startswith("cuda") and torch.cuda.is_available():
        info["name"] = torch.cuda.get_device_name(torch.device(dev))
        info["cuda"] = torch.version.cuda
    if compute:
        info["compute"] = dict(compute)
    return {
        "format": FORMAT,
        "command": command,
        "preset": preset,
        "params": _jsonable(params),
        "config": None if cfg is None else _jsonable(cfg.as_dict()),
        "seed": None if cfg is None else cfg.seed,
        "model": None if model is None else _model_record(model, layouts),
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


def sidecar_writer(manifest: dict, file_sha: str | None = None):
    """A ``write(tmp)`` for :func:`cnnvis.io.files.write_atomic` that writes ``manifest`` as a
    sidecar, with the SHA-256 of the file it belongs to."""
    record = dict(manifest, **({FILE_SHA_KEY: file_sha} if file_sha else {}))

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(record, f, indent=1, sort_keys=True)

    return write


def write_sidecar(out: str, manifest: dict) -> None:
    """Write ``NAME.manifest.json`` beside the finished output ``out`` (a video, a GIF), atomically,
    recording ``out``'s SHA-256 (images write theirs as a pair: :func:`cnnvis.io.images.save_image`)."""
    from cnnvis.io.files import write_atomic

    write_atomic(sidecar_path(out), sidecar_writer(manifest, file_sha256(out) if os.path.isfile(out) else None))


def found_sidecar(path: str) -> str:
    """The sidecar of ``path`` that exists: its own, else the legacy name (whose recorded SHA-256
    then says whether it describes ``path``)."""
    side = sidecar_path(path)
    legacy = legacy_sidecar_path(path)
    return legacy if not os.path.isfile(side) and os.path.isfile(legacy) else side


def _sidecar_text(path: str) -> str | None:
    side = found_sidecar(path)
    if not os.path.isfile(side):
        return None
    if os.path.getsize(side) > MAX_SIDECAR_BYTES:
        raise InputError(f"'{side}' is {os.path.getsize(side)} bytes, too large for a cnnvis manifest; it is not one")
    with open(side, "rb") as f:
        data = f.read(MAX_SIDECAR_BYTES + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"'{side}' is not UTF-8 text, so not a cnnvis manifest; remove it or restore the original"
        ) from None


def read_manifest(path: str) -> dict:
    """The manifest of an output: its PNG text chunk, else its sidecar; InputError if neither."""
    if not os.path.isfile(path):
        raise InputError(f"image not found: '{path}'; pass an image written by cnnvis")
    text, from_sidecar = None, False
    if path.lower().endswith(".png"):
        try:
            from PIL import Image

            with Image.open(path) as im:
                text = im.text.get(PNG_KEY)
        except Exception:
            text = None
    if text is None:
        text = _sidecar_text(path)
        from_sidecar = text is not None
    if text is None:
        raise InputError(
            f"'{path}' carries no cnnvis manifest (no PNG text chunk '{PNG_KEY}', "
            f"no {os.path.basename(sidecar_path(path))}); replay takes images written by cnnvis"
        )
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(
            f"the manifest of '{path}' is not valid JSON ({e.msg} at char {e.pos}); it was edited or truncated"
        ) from None
    except RecursionError:
        raise InputError(
            f"the manifest of '{path}' is nested too deeply to be a cnnvis manifest; it was made by another program"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(
            f"the manifest of '{path}' has format {manifest.get('format') if isinstance(manifest, dict) else None!r}, "
            f"expected {FORMAT!r}"
        )
    recorded = manifest.pop(FILE_SHA_KEY, None)
    if from_sidecar and isinstance(recorded, str) and recorded != file_sha256(path):
        raise InputError(
            f"'{found_sidecar(path)}' does not describe '{path}' (the file's SHA-256 differs from the one it records: "
            "another run wrote one of them since); run the command again to make a matching pair"
        )
    return manifest
