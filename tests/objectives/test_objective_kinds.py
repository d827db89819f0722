"""The registry of -O kinds: one declaration makes a kind parseable and listed in the usage."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import subprocess_env

from cnnvis.errors import InputError
from cnnvis.objectives import kinds
from cnnvis.objectives.activation import Channel, Dream
from cnnvis.objectives.kinds import KINDS, integer, kind, number
from cnnvis.objectives.spec import kinds_usage, objective_usage, parse_objective


@pytest.fixture
def throwaway():
    """A kind ``twice:LAYER:C[:SCALE]`` registered for one test and removed after it."""

    @kind("twice", integer("C", "channel"), optional=(number("SCALE", "scale", 2.0),), about="test only")
    def _twice(ctx, layer, c, scale):
        return scale * Channel(layer, c)

    try:
        yield KINDS["twice"]
    finally:
        kinds.unregister("twice")


def test_a_registered_kind_parses_and_is_listed(throwaway):
    w, layer, obj = parse_objective("twice:L:3@0.5")
    assert (w, layer) == (0.5, "L")
    assert [(s, t.channel) for s, t in obj.terms] == [(2.0, 3)]
    assert parse_objective("twice:L:3:4")[2].terms[0][0] == 4.0
    assert throwaway.form == "twice:LAYER:C[:SCALE]"
    assert "twice:LAYER:C[:SCALE] (test only)" in objective_usage()
    assert "twice:LAYER:C[:SCALE]" in kinds_usage()
    with pytest.raises(InputError, match=r"'twice:L:x' has a non-integer channel 'x'; write twice:LAYER:C\[:SCALE\]"):
        parse_objective("twice:L:x")
    with pytest.raises(InputError, match="'twice:L' takes one or two numbers after the layer"):
        parse_objective("twice:L")


def test_an_unregistered_kind_is_gone():
    assert "twice" not in KINDS
    with pytest.raises(InputError, match="unknown objective kind 'twice'"):
        parse_objective("twice:L:3")


def test_a_kind_name_is_declared_once():
    with pytest.raises(ValueError, match="already registered"):
        kind("dream")(lambda ctx, layer: Dream(layer))
    assert KINDS["dream"].build.__name__ == "_dream"


def test_the_usage_lists_every_registered_kind():
    help_text, errors = objective_usage(), kinds_usage()
    assert KINDS, "the built-in kinds are registered on importing cnnvis.objectives.spec"
    for k in KINDS.values():
        assert k.form in help_text and k.form in errors
        assert k.about and f"{k.form} ({k.about})" in help_text
    assert "V: a FILE.npy" in help_text and "@WEIGHT" in errors
    assert "\n" not in help_text and "\n" not in errors  # one paragraph / one line
    only = objective_usage(["channel", "l1"])
    assert "channel:LAYER:C" in only and "l1[:CONSTANT]" in only and "dream:LAYER" not in only


@pytest.mark.parametrize(
    "name, form",
    [
        ("dream", "dream:LAYER"),
        ("channel", "channel:LAYER:C"),
        ("neuron", "neuron:LAYER:C[:X:Y]"),
        ("guide", "guide:LAYER"),
        ("direction", "direction:LAYER:V"),
        ("direction-neuron", "direction-neuron:LAYER:V[:X:Y]"),
        ("direction-cossim", "direction-cossim:LAYER:V[:POWER]"),
        ("caricature", "caricature:LAYER[:POWER]"),
        ("l1", "l1[:CONSTANT]"),
        ("l2", "l2[:CONSTANT]"),
        ("blur", "blur[:SIGMA]"),
    ],
)
def test_the_built_in_kinds_are_spelled_as_before(name, form):
    assert KINDS[name].form == form


@pytest.mark.parametrize(
    "spec, words",
    [
        ("chanel:L:3", "did you mean 'channel'"),
        ("garbage", "use dream:LAYER, channel:LAYER:C"),
        ("dream:", "names no layer; write dream:LAYER"),
        ("dream:L:3", "takes no arguments after the layer; write dream:LAYER"),
        ("neuron:L:3:x:1", "non-integer column 'x'; write neuron:LAYER:C[:X:Y] with X an integer"),
        ("direction:L", "takes one argument after the layer; write direction:LAYER:V"),
        ("direction-cossim:L:1=1:x", "non-numeric power 'x'"),
        ("channel:L:3@heavy", "bad objective weight 'heavy'"),
    ],
)
def test_mistakes_name_the_term_and_the_fix(spec, words):
    with pytest.raises(InputError) as e:
        parse_objective(spec)
    assert f"'{spec}'" in str(e.value) and words in str(e.value) and "\n" not in str(e.value)


def test_a_dangling_colon_adds_no_argument():
    assert parse_objective("l1:")[2].constant == 0.0
    assert parse_objective("neuron:L:3:")[2].x is None


def test_the_usage_does_not_import_torch():
    code = (
        "import sys; from cnnvis.objectives.spec import objective_usage; objective_usage(); "
        "assert 'torch' not in sys.modules and 'numpy' not in sys.modules"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=60
    )
    assert proc.returncode == 0, proc.stderr
