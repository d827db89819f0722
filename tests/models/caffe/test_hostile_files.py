"""Hostile Caffe files (deep nesting, terabyte layers, absurd dims, binary junk): one InputError line each, fast.

Both CLI routes into the layer builders are checked: ``cnnvis layers NET.prototxt --weights random``
(random init, real allocation) and ``cnnvis convert-caffe NET.prototxt W.caffemodel`` (built on the
meta device, then filled from the caffemodel).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import assert_one_line_error, invoke

from cnnvis.errors import InputError
from cnnvis.models.caffe import (
    CaffeLayer,
    convert_caffe,
    parse_prototxt,
    proto,
    read_caffemodel,
    read_prototxt,
    reader,
)
from cnnvis.models.caffe.builders import MAX_DIM, BuildContext, ParamBudget
from cnnvis.models.caffe.reader import blob_array, nesting_depth

SMALL = "dim: 1 dim: 3 dim: 8 dim: 8"


def _net(tmp_path, layers: str, shape: str = SMALL, name: str = "net.prototxt") -> str:
    data = f'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {shape} }} }} }}'
    text = f'name: "t"\n{data}\n{layers}\n'
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _conv(params: str) -> str:
    return f'layer {{ name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param {{ {params} }} }}'


def _caffemodel(tmp_path) -> str:
    """A caffemodel with a blob-less conv1: enough for convert-caffe to reach the builders."""
    net = proto.NetParameter(name="w")
    net.layer.add(name="conv1", type="Convolution")
    path = tmp_path / "w.caffemodel"
    path.write_bytes(net.SerializeToString())
    return str(path)


def _both_cli_routes(tmp_path, prototxt: str, *needles: str) -> None:
    t0 = time.monotonic()
    assert_one_line_error(invoke(["layers", prototxt, "--weights", "random"]), *needles)
    res = invoke(["convert-caffe", prototxt, _caffemodel(tmp_path), "--out", tmp_path / "o.pt"])
    assert_one_line_error(res, *needles)
    assert time.monotonic() - t0 < 10  # refused up front, not after allocating or recursing
    assert not (tmp_path / "o.pt").exists()


def _library_error(prototxt: str, *needles: str) -> str:
    t0 = time.monotonic()
    with pytest.raises(InputError) as e:
        convert_caffe(prototxt, None)  # random weights: the route that really allocates
    assert time.monotonic() - t0 < 5
    message = str(e.value)
    assert "\n" not in message
    for n in needles:
        assert n in message, (n, message)
    return message


# ------------------------------------------------------------------------------- nesting
def test_nesting_depth_counts_brackets_outside_strings_and_comments():
    assert nesting_depth("layer { name: \"}{{{<\" # {{{{ <<<\n p < q { r: '{\\'{' } > }") == 3
    assert nesting_depth("a { } b { c { } } d { }") == 2
    assert nesting_depth("}}} a { }") == 1  # stray closers are protobuf's error to report, not negative depth


def test_braces_in_strings_and_comments_do_not_count(tmp_path):
    name = "{" * 300
    conv = _conv("num_output: 2 kernel_size: 3").replace('"conv1"', f'"{name}"', 1)
    path = _net(tmp_path, f"# {'{' * 300}\n{conv}")
    net = read_prototxt(path)
    assert net.layer[1].name == name


@pytest.mark.parametrize("open_, close", [("{", "}"), ("<", ">")])
def test_deeply_nested_prototxt_is_one_line(tmp_path, open_, close):
    body = f"input_param {open_} " + f"shape {open_} " * 5000 + close * 5001
    path = tmp_path / "deep.prototxt"
    path.write_text(f'name: "deep"\nlayer {{ name: "data" type: "Input" top: "data" {body} }}\n')
    _library_error(str(path), "nests messages more than 100 deep", "deep.prototxt")
    _both_cli_routes(tmp_path, str(path), "nests messages more than 100 deep")


def test_recursion_error_from_protobuf_is_one_line_too(monkeypatch):
    # With the scan's limit lifted, protobuf's own recursion overflows: still one InputError.
    monkeypatch.setattr(reader, "MAX_NESTING", 10**9)
    with pytest.raises(InputError, match="nests messages more than") as e:
        parse_prototxt('layer { name: "a" ' + "x { " * 5000 + "}" * 5001)
    assert "\n" not in str(e.value)


def test_parse_error_does_not_quote_a_whole_line():
    line = 'layer { name: "a" input_param ' + "{ " * 60 + "}" * 60 + " }" + " " * 5000
    with pytest.raises(InputError, match="cannot parse") as e:
        parse_prototxt(line)
    assert len(str(e.value)) < 500


# ------------------------------------------------------------------------------- memory pre-flight
def test_terabyte_convolution_is_refused_before_allocation(tmp_path):
    # 1e6 filters of 1000 x 100 x 100: 1e13 parameters, 40 TB, more than any machine has
    path = _net(tmp_path, _conv("num_output: 1000000 kernel_size: 100"), "dim: 1 dim: 1000 dim: 224 dim: 224")
    _library_error(
        path,
        "layer 'conv1' (Convolution)",
        "10,000,001,000,000 parameters need 40000.0 GB",
        "of memory is available",
        "fix num_output / kernel_size",
    )
    _both_cli_routes(tmp_path, path, "layer 'conv1'", "40000.0 GB", "of memory is available")


def test_terabyte_inner_product_is_refused(tmp_path):
    fc = (
        'layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 1000000 } }'
    )
    path = _net(tmp_path, fc, "dim: 1 dim: 1000 dim: 1000 dim: 1000")  # 1e9 inputs x 1e6 outputs
    _library_error(path, "layer 'fc' (InnerProduct)", "parameters need", "of memory is available")


def _ctx(budget: ParamBudget) -> BuildContext:
    layer = CaffeLayer(name="conv9", type="Convolution", bottoms=[], tops=["conv9"], param=proto.LayerParameter())
    return BuildContext(layer, [], None, "layer 'conv9' (Convolution) in net.prototxt", budget)


def test_budget_adds_up_the_layers_before():
    budget = ParamBudget(available=1000)
    _ctx(budget).reserve((50, 2))  # 400 bytes
    _ctx(budget).reserve((100,), None)  # 800
    total = r"its 100 parameters need 400 bytes, 1,200 bytes with the layers before it, but 1,000 bytes of memory"
    with pytest.raises(InputError, match=rf"layer 'conv9'.*{total}"):
        _ctx(budget).reserve((100,))  # 1200 > 1000
    unknown = ParamBudget(available=None)  # no memory figure: only the shapes are checked
    _ctx(unknown).reserve((2**30, 2**30))
    assert unknown.used == 2**62


@pytest.mark.parametrize("shape, bad", [((MAX_DIM + 1, 3), MAX_DIM + 1), ((4, 0, 3, 3), 0), ((-2,), -2)])
def test_reserve_refuses_absurd_dims(shape, bad):
    with pytest.raises(InputError, match=rf"layer 'conv9'.*parameter of shape .* has dimension {bad};"):
        _ctx(ParamBudget(None)).reserve(shape)


@pytest.mark.parametrize(
    "layers, shape, needles",
    [
        (_conv("num_output: 4000000000 kernel_size: 3"), SMALL, ["layer 'conv1'", "has dimension 4000000000"]),
        (_conv("num_output: 2 kernel_size: 3"), "dim: 1 dim: 3 dim: -5 dim: 8", ["input 'data'", "(1, 3, -5, 8)"]),
        (
            _conv("num_output: 2 kernel_size: 3"),
            "dim: 1 dim: 3 dim: 4000000000000 dim: 8",
            ["input 'data'", "4000000000000"],
        ),
        (
            'layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 10 } }',
            "dim: 1 dim: 3 dim: 2000000 dim: 2000000",
            ["layer 'fc'", "has dimension 12000000000000"],
        ),
    ],
)
def test_absurd_dims_are_one_line(tmp_path, layers, shape, needles):
    path = _net(tmp_path, layers, shape)
    _library_error(path, *needles)
    _both_cli_routes(tmp_path, path, *needles)


def test_a_real_sized_net_still_builds(tmp_path):
    net = convert_caffe(_net(tmp_path, _conv("num_output: 4 kernel_size: 3")), None)
    assert tuple(net.conv1.weight.shape) == (4, 3, 3, 3) and net.blob_shapes["conv1"] == (1, 4, 6, 6)


# ------------------------------------------------------------------------------- binary junk
def test_prototxt_that_is_not_utf8_text(tmp_path, make_image):
    utf16 = tmp_path / "u16.prototxt"
    text = f'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {SMALL} }} }} }}'
    utf16.write_bytes(text.encode("utf-16"))
    png = tmp_path / "img.prototxt"
    png.write_bytes(open(make_image("x.png", h=16, w=16), "rb").read())
    for path in (utf16, png):
        _library_error(str(path), "is not a text prototxt")
        _both_cli_routes(tmp_path, str(path), "is not a text prototxt")


def test_garbage_and_truncated_caffemodels(tmp_path):
    prototxt = _net(tmp_path, _conv("num_output: 16 kernel_size: 5"))
    garbage = tmp_path / "garbage.caffemodel"
    garbage.write_bytes(bytes(range(256)) * 20)
    good = proto.NetParameter()
    blob = good.layer.add(name="conv1", type="Convolution").blobs.add()
    blob.shape.dim.extend([16, 3, 5, 5])
    blob.data.extend(np.linspace(-1, 1, 16 * 75).tolist())
    data = good.SerializeToString()
    truncated = tmp_path / "truncated.caffemodel"
    truncated.write_bytes(data[: len(data) // 2])
    for path in (garbage, truncated):
        with pytest.raises(InputError, match="cannot decode caffemodel"):
            read_caffemodel(path)
        res = invoke(["convert-caffe", prototxt, path, "--out", tmp_path / "o.pt"])
        assert_one_line_error(res, f"cannot decode caffemodel '{path}'", "truncated or not a Caffe binary model")


@pytest.mark.parametrize("dims, values", [((-1, -3), 3), ((2**32, 2**32, 1), 0), ((2**62, 4), 0)])
def test_blob_with_absurd_shape_is_corrupt(dims, values):
    # numpy's int64 product of these wraps (or reshape would fail on two -1s): a traceback before
    blob = proto.BlobProto()
    blob.shape.dim.extend(dims)
    blob.data.extend([1.0] * values)
    with pytest.raises(InputError, match=rf"{values} values but shape .*corrupt"):
        blob_array(blob)
