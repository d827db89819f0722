"""What ``cnnvis invert`` and ``cnnvis prefer`` do once their flags are parsed.

Kept apart from :mod:`cnnvis.cli` (a thin flag table) and from :mod:`cnnvis.recon` (the
library, which never prints or writes): here files are read and written and quality printed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import click
import numpy as np

from cnnvis.defaults import DGN_INVERT_REFINE, DGN_PREFER_REFINE, PREFER_DEFAULTS, PREFER_INTERPOLATE_DEFAULTS
from cnnvis.errors import InputError
from cnnvis.io.video import is_video
from cnnvis.priors.dgn import prior_from_flags, split_prior_flags


def options_given(render_kw: dict) -> dict:
    """Only the render flags the user gave (the rest keep the command's tuned defaults)."""
    return {k: v for k, v in render_kw.items() if v is not None}


def parse_pairs(items: Sequence[str], flag: str, cast) -> dict:
    """``LAYER=VALUE`` flags -> {layer: cast(value)}."""
    out = {}
    for item in items:
        layer, sep, value = item.partition("=")
        if not sep or not layer:
            raise InputError(f"bad {flag} '{item}'; write {flag} LAYER=VALUE")
        try:
            out[layer] = cast(value)
        except InputError:
            raise
        except ValueError:
            raise InputError(
                f"bad value in {flag} '{item}'; write {flag} LAYER=VALUE with a number (or comma-separated channels)"
            ) from None
    return out


def _channels(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v.strip()]


def _mask_file(path: str) -> np.ndarray:
    """A feature mask from a .npy file (never a pickle)."""
    from cnnvis.io.features import load_features

    if not path.lower().endswith(".npy"):
        raise InputError(f"mask file '{path}' must be a .npy array")
    if not os.path.isfile(path):
        raise InputError(f"mask file '{path}' does not exist; check the path")
    return load_features(path, ["mask"])["mask"]


def parse_size(size: str | None, model, image_hw: tuple[int, int] | None) -> tuple[int, int]:
    """``model`` (default): the model input, square; ``image``: the image's own size; ``HxW``."""
    if size in (None, "model"):
        return (model.input_size, model.input_size)
    if size == "image":
        if image_hw is None:
            raise InputError("--size image needs an input image; give --size HxW with --features")
        return image_hw
    h, sep, w = size.lower().partition("x")
    try:
        hw = (int(h), int(w))
    except ValueError:
        hw = None
    if not sep or hw is None or min(hw) < 1:
        raise InputError(f"bad --size '{size}'; use model, image or HxW (e.g. 448x448)")
    if min(hw) < model.min_size:
        raise InputError(
            f"--size {size} is below the minimum input {model.min_size} of {model.name}; use at least {model.min_size}x{model.min_size}"
        )
    return hw


def _resize_hwc(img: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """HxWx3 float in [0, 1] resized to ``hw`` by the pipeline's own rule (:func:`cnnvis.octaves.resize`)."""
    from cnnvis.canvas.sizes import resize
    from cnnvis.io.images import hwc_to_bchw
    from cnnvis.recipes.recon import to_hwc

    if img.shape[:2] == hw:
        return img
    return to_hwc(resize(hwc_to_bchw(img), hw))


def _report_quality(model, out_img: np.ndarray, original: np.ndarray, layers: Sequence[str], out: str) -> dict:
    from cnnvis.io.files import write_atomic
    from cnnvis.io.images import hwc_to_bchw
    from cnnvis.recipes.metrics import quality

    q = quality(model, hwc_to_bchw(out_img), hwc_to_bchw(original), layers)
    q["layers"] = list(layers)
    path = os.path.splitext(out)[0] + ".metrics.json"

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(q, f, indent=1)

    write_atomic(path, write)
    # printed even with --quiet (which silences the progress bar): the figures are the result
    fe = "  ".join(f"{k} {v:.3f}" for k, v in q["feature_error"].items())
    click.echo(f"pixel correlation {q['pixel_correlation']:.3f}  SSIM {q['ssim']:.3f}  feature error {fe}  ({path})")
    return q


def run_invert(
    image: str | None,
    features: str | None,
    layers: Sequence[str],
    out: str,
    *,
    loss: str,
    size: str | None,
    activation: str,
    init: str,
    original: str | None,
    layer_weights: Sequence[str],
    channels: Sequence[str],
    video_init: str,
    flow: str | None = None,
    blend: float | None = None,
    temporal: float | None = None,
    masks: Sequence[str] = (),
    dgn_refine: float = DGN_INVERT_REFINE,
    model: str,
    weights: str | None,
    device: str,
    save_every: int,
    video: str | None,
    video_every: int,
    quiet: bool,
    render_kw: dict,
    checkpoint_every: int = 0,
    jpeg_quality: int = 95,
) -> int:
    from cnnvis.cli.dream import check_alpha_output
    from cnnvis.io.images import check_video_path, check_writable, read_image
    from cnnvis.models.capture import layer_names, resolve_layer
    from cnnvis.models.registry import load_model
    from cnnvis.pipeline.loop import pick_device

    if (image is None) == (features is None):
        raise InputError("give an IMAGE (or video) to invert, or --features FILE, not both or neither")
    check_alpha_output(out, render_kw)
    if video:
        check_video_path(video)
    video_run = None
    if image is not None and is_video(image):
        from cnnvis.cli.frames import VideoRun
        from cnnvis.video.coherence import from_flags

        if video_init == "noise" and (flow is not None or temporal):
            raise InputError(
                "--video-init noise starts every frame afresh, so there is nothing to carry along a --flow; drop one"
            )
        coherence = from_flags(flow, blend, temporal, "invert")
        video_run = VideoRun(image, out, checkpoint_every)  # the input and output are checked before the model loads
    elif flow is not None or blend is not None or temporal is not None:
        raise InputError(
            f"--flow, --blend and --temporal-weight apply to a video input, and '{image or features}' is not one; drop them (or give a .mp4/.gif)"
        )
    elif is_video(out):
        raise InputError(f"--out '{out}' is a video; invert a video input, or write an image (.png)")
    else:
        check_writable(out)
    prior_kw = split_prior_flags(render_kw)
    dev = pick_device(device)
    m = load_model(model, weights, dev)
    opts = options_given(render_kw)
    lw = parse_pairs(layer_weights, "--layer-weight", float)
    ch = parse_pairs(channels, "--channels", _channels)
    mk = parse_pairs(masks, "--mask", _mask_file)

    def hook(name: str) -> str:
        return resolve_layer(m.module, name, activation)

    def keyed(d: dict) -> dict:
        return {hook(k): v for k, v in d.items()}

    init_arg = init if init in ("noise", "mean") else read_image(init)
    common = dict(
        loss=loss,
        layer_weight=keyed(lw) or None,
        channel=keyed(ch) or None,
        feature_mask=keyed(mk) or None,
        device=dev,
        prior=prior_from_flags(m, prior_kw, dev),
        dgn_refine=dgn_refine,
    )

    if features is not None:
        from cnnvis.io.features import load_features
        from cnnvis.recipes.recon import features_render

        feats = load_features(features, layers, layer_names(m.module))
        targets = {hook(k): v for k, v in feats.items()}
        hw = parse_size(size, m, None)
        r = features_render(targets, m, initial_image=init_arg, size=hw, **common, **opts)
        ref = None if original is None else _resize_hwc(read_image(original), hw)
        return _finish(
            r, out, m, ref, list(targets), save_every, video, video_every, quiet, checkpoint_every, jpeg_quality
        )

    if not layers:
        raise InputError(f"name the layer(s) to invert with --layer (list them: cnnvis layers {model})")
    hooked = [hook(name) for name in layers]
    if is_video(image):
        return _invert_video(video_run, m, hooked, size, init_arg, video_init, coherence, common, opts, quiet)
    from cnnvis.recipes.recon import image_render

    src = read_image(image)
    hw = parse_size(size, m, src.shape[:2])
    ref = _resize_hwc(src, hw)
    r = image_render(ref, hooked, m, initial_image=init_arg, **common, **opts)
    return _finish(r, out, m, ref, hooked, save_every, video, video_every, quiet, checkpoint_every, jpeg_quality)


def _finish(
    r, out, m, original, layers, save_every, video, video_every, quiet, checkpoint_every=0, jpeg_quality=95
) -> int:
    from cnnvis.cli.dream import run_render
    from cnnvis.recipes.recon import to_hwc

    code, final = run_render(
        r,
        out,
        r.cfg.output,
        quiet=quiet,
        save_every=save_every,
        video=video,
        video_every=video_every,
        checkpoint_every=checkpoint_every,
        jpeg_quality=jpeg_quality,
    )
    if code == 0 and original is not None:
        _report_quality(m, to_hwc(final), original, layers, out)
    return code


def _invert_video(run, m, layers, size, init_arg, video_init, coherence, common, opts, quiet) -> int:
    """Invert every frame (icnn's movie reconstructions), one at a time (:mod:`cnnvis.cli.frames`).
    With ``--video-init previous`` frame t starts from frame t-1's reconstruction carried along the
    optical flow between the two input frames (:mod:`cnnvis.video.coherence`), which keeps the
    sequence steady and converges faster; pixels the flow cannot carry (newly uncovered ones)
    start as a fresh frame would, from the ``--init`` image or the model's mean colour."""
    from cnnvis.cli.frames import FrameJob
    from cnnvis.io.images import hwc_to_bchw
    from cnnvis.recipes.metrics import pixel_correlation
    from cnnvis.recipes.recon import image_render

    corr: list[float] = []
    refs: dict[int, np.ndarray] = {}

    def make_render(i, frame, prev_frame, prev_out):
        hw = parse_size(size, m, frame.shape[:2])
        ref = refs[i] = _resize_hwc(frame, hw)
        refs.pop(i - 1, None)
        start, penalties = init_arg, []
        if prev_out is not None and video_init == "previous":
            fresh = (
                np.asarray(init_arg, np.float32)
                if not isinstance(init_arg, str)
                else np.broadcast_to(np.asarray(m.mean, np.float32), ref.shape)
            )
            fresh = _resize_hwc(fresh, hw)
            start, mask, warped = coherence.start_and_carry(_resize_hwc(prev_frame, hw), ref, prev_out, fallback=fresh)
            penalties = coherence.penalties(warped, mask)
        r = image_render(ref, layers, m, initial_image=start, **common, **opts)
        r.penalties = penalties  # the temporal loss (--temporal-weight), on top of the inversion's own regularizers
        return r

    def describe(i, frame, result):
        corr.append(pixel_correlation(hwc_to_bchw(result), hwc_to_bchw(refs[i])))
        return f"pixel correlation {corr[-1]:.3f}"

    def summary():
        return f"mean pixel correlation over the {len(corr)} frames rendered: {np.mean(corr):.3f}" if corr else None

    return run.run(
        FrameJob(make_render, model=m, device=common.get("device"), describe=describe, summary=summary), quiet
    )


def _units(channel) -> list[int]:
    """``--channel`` as a list (a recorded manifest may hold one int)."""
    from cnnvis.cli.units import parse_units

    try:
        return parse_units(channel)
    except ValueError as e:
        raise InputError(f"bad --channel: {e}") from None


def _unit_feature_mask(m, layer: str, hook: str, channel: int, x, y, hw, whole_channel: bool) -> np.ndarray:
    """The feature mask of one unit: channel ``channel`` at (y, x) (default the centre), or the
    whole channel."""
    from cnnvis.recipes.recon import layer_shape, unit_mask

    if not whole_channel:
        return unit_mask(m, hook, channel, x, y, hw)
    shape = layer_shape(m, hook, hw)
    if not 0 <= channel < shape[0]:
        raise InputError(
            f"channel {channel} is out of range for layer '{layer}' with {shape[0]} channels; use 0..{shape[0] - 1}"
        )
    mask = np.zeros(shape[:1], np.float32)
    mask[channel] = 1
    return mask


def run_prefer(
    layer: str | None,
    channel,
    x: int | None,
    y: int | None,
    whole_channel: bool,
    rf_mask: bool,
    size: str | None,
    activation: str,
    out: str,
    model: str,
    weights: str | None,
    device: str,
    save_every: int,
    video: str | None,
    video_every: int,
    quiet: bool,
    render_kw: dict,
    checkpoint_every: int = 0,
    jpeg_quality: int = 95,
    objectives: Sequence[str] = (),
    reference: str | None = None,
    batch: int | None = None,
    diversity: float = 0.0,
    interpolate: str | None = None,
    alignment: float = 0.0,
    dgn_refine: float = DGN_PREFER_REFINE,
) -> int:
    from cnnvis.cli.dream import check_alpha_output, run_render
    from cnnvis.io.images import check_video_path, check_writable
    from cnnvis.models.capture import resolve_layer
    from cnnvis.models.registry import load_model
    from cnnvis.pipeline.device import pick_device
    from cnnvis.recipes.recon import objective_render, prefer_render

    check_writable(out)
    check_alpha_output(out, render_kw)
    if video:
        check_video_path(video)
    if (x is None) != (y is None):
        raise InputError("give both --x and --y for one unit, or neither for the centre unit")
    if whole_channel and x is not None:
        raise InputError("--whole-channel maximizes every position of the channel; drop --x/--y")
    if (layer is None) != (channel is None):
        raise InputError("--layer and --channel name a unit together; give both (or use -O / --interpolate instead)")
    if layer is None and not objectives and not interpolate:
        raise InputError(
            "name what to maximize: --layer L --channel C, -O KIND:LAYER[:ARGS], or --interpolate LAYER:A:B"
        )
    units = _units(channel) if channel is not None else []
    n = batch or max(1, len(units))
    if len(units) > 1 and n != len(units):
        raise InputError(
            f"--channel lists {len(units)} units, one image each; drop --batch {batch} or make it {len(units)}"
        )
    if interpolate and n < 2:
        raise InputError(f"--interpolate renders a sequence of images: give --batch 2 or more, got {n}")
    if (diversity or alignment) and n < 2:
        raise InputError(f"--diversity and --alignment compare the images of a batch: give --batch 2 or more, got {n}")
    prior_kw = split_prior_flags(render_kw)
    dev = pick_device(device)
    m = load_model(model, weights, dev)
    prior = prior_from_flags(m, prior_kw, dev)
    hw = parse_size(size, m, None)
    options = {**options_given(render_kw), "dgn_refine": dgn_refine}
    if interpolate and options.get("param", PREFER_DEFAULTS["param"]) == "fft":
        options = {**PREFER_INTERPOLATE_DEFAULTS, **options}
    terms, term_layer = _prefer_terms(
        m, layer, units, x, y, whole_channel, activation, hw, objectives, reference, interpolate, n
    )
    if terms is None:  # a unit (or a list of units): cnnpref's path
        hook = resolve_layer(m.module, layer, activation)
        masks = [_unit_feature_mask(m, layer, hook, c, x, y, hw, whole_channel) for c in units]
        r = prefer_render(
            m,
            hook,
            masks if len(units) > 1 else masks[0],
            image_mask="rf" if rf_mask else None,
            size=hw,
            device=dev,
            prior=prior,
            **options,
        )
    else:
        if rf_mask:
            raise InputError(
                "--rf-mask applies to one unit given with --layer/--channel; drop it with -O, --interpolate, --diversity or --alignment"
            )
        from cnnvis.objectives.base import Sum
        from cnnvis.objectives.batch import Alignment, Diversity

        if diversity:
            terms.append((float(diversity), Diversity(term_layer)))
        if alignment:
            terms.append((float(alignment), Alignment(term_layer)))  # its score is minus the misalignment
        r = objective_render(m, Sum(terms), size=hw, device=dev, prior=prior, batch=n, **options)
    labels = _labels(units, interpolate, n)
    code, final = run_render(
        r,
        out,
        r.cfg.output,
        quiet=quiet,
        save_every=save_every,
        video=video,
        video_every=video_every,
        checkpoint_every=checkpoint_every,
        jpeg_quality=jpeg_quality,
        labels=labels,
    )
    if code == 0 and interpolate:
        from cnnvis.io.images import save_video, to_uint8

        gif = os.path.splitext(out)[0] + ".gif"
        frames = [to_uint8(final, r.cfg.output, i) for i in range(final.shape[0])]
        save_video(gif, frames + frames[-2:0:-1], fps=8)  # there and back
        if not quiet:
            click.echo(f"wrote {gif} ({len(frames)} frames, there and back)")
    return code


def _labels(units: list[int], interpolate: str | None, n: int) -> list[str] | None:
    from cnnvis.cli.units import unit_label

    if n < 2:
        return None
    if interpolate:
        return [f"t{i}" for i in range(n)]
    if len(units) == n:
        return [unit_label(c) for c in units]
    return [f"b{i}" for i in range(n)]


def _prefer_terms(m, layer, units, x, y, whole_channel, activation, hw, objectives, reference, interpolate, n):
    """The objective terms of a prefer run that is more than cnnpref's unit(s) (None when it is
    just that), and the layer that diversity and alignment compare at."""
    from cnnvis.io.images import hwc_to_bchw, read_image
    from cnnvis.models.capture import resolve_layer
    from cnnvis.objectives.activation import Channel
    from cnnvis.objectives.inversion import MaskedUnits
    from cnnvis.objectives.spec import parse_objective

    if not objectives and not interpolate and n == max(1, len(units)):
        return None, None
    terms, term_layer = [], None
    if layer is not None:
        hook = resolve_layer(m.module, layer, activation)
        term_layer = hook
        for i, c in enumerate(units):
            obj = MaskedUnits(hook, _unit_feature_mask(m, layer, hook, c, x, y, hw, whole_channel))
            terms.append((1.0, obj.on(i) if len(units) > 1 else obj))
    ref = None
    if reference is not None:
        ref = hwc_to_bchw(read_image(reference))
    for spec in objectives:
        w, spec_layer, obj = parse_objective(spec, reference=ref)
        terms.append((w, obj))
        term_layer = term_layer or spec_layer
    if interpolate:
        name, a, b = _interpolation(interpolate)
        hook = resolve_layer(m.module, name, activation)
        term_layer = term_layer or hook
        for i in range(n):
            t = i / (n - 1)
            terms += [(1 - t, Channel(hook, a).on(i)), (t, Channel(hook, b).on(i))]
    return terms, term_layer


def _interpolation(text: str) -> tuple[str, int, int]:
    """``LAYER:A:B`` -> (layer, A, B)."""
    name, _, ab = text.rpartition(":")
    name, _, a = name.rpartition(":")
    try:
        if not name:
            raise ValueError
        return name, int(a), int(ab)
    except ValueError:
        raise InputError(
            f"bad --interpolate '{text}'; write LAYER:A:B with two channel numbers, e.g. blocks.4:5:42"
        ) from None
