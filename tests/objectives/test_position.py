"""Neuron positions given on the full tile's map keep their place on the smaller maps of early octaves."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_one_line_error, invoke

from cnnvis.errors import InputError
from cnnvis.objectives.activation import Neuron
from cnnvis.objectives.direction import DirectionNeuron
from cnnvis.objectives.position import MapPosition


def test_a_position_keeps_its_relative_place_on_smaller_maps():
    centre = MapPosition(3, 3, grid=(7, 7))
    assert centre.at(7, 7) == (3, 3) and centre.at(3, 3) == (1, 1) and centre.at(5, 5) == (2, 2)
    corner = MapPosition(6, 0, grid=(7, 7))
    assert corner.at(3, 3) == (0, 2) and corner.at(14, 14) == (1, 13)  # larger maps too: cell centres align
    assert MapPosition(2, 5).at(7, 7) == (5, 2)  # no grid: indices as given
    assert MapPosition(grid=(7, 7)).at(4, 6) == (2, 3)  # no position: the centre of each map


def test_the_check_is_against_the_map_the_position_is_given_on():
    MapPosition(6, 6, grid=(7, 7)).check("L", 3, 3)  # off the 3x3 map, on the 7x7 one: fine
    with pytest.raises(InputError, match="whose map is 7x7 at the model's input size"):
        MapPosition(7, 0, grid=(7, 7)).check("L", 3, 3)
    with pytest.raises(InputError, match="per tile"):
        MapPosition(3, 3).check("L", 3, 3)


def test_neurons_score_the_scaled_position():
    a = torch.zeros(1, 2, 3, 3)
    a[0, 1, 1, 2] = 5.0
    from cnnvis.objectives.base import Capture

    cap = Capture(image=torch.zeros(1, 3, 24, 24), feats={"L": a}, windows=[(0, 0, 24, 24)], canvas=(24, 24))
    assert float(Neuron("L", 1, x=6, y=3, grid=(7, 7)).score(cap)) == 5.0  # (6, 3) of 7x7 is (2, 1) of 3x3
    assert float(Neuron("L", 1, x=2, y=1).score(cap)) == 5.0  # without a grid: the map's own indices
    d = DirectionNeuron("L", torch.tensor([0.0, 1.0]).numpy(), x=6, y=3, grid=(7, 7))
    assert float(d.score(cap)) == 5.0


def test_the_readme_neuron_example_runs(tmp_path):
    """README: ``cnnvis dream --noise --layer blocks.5.0 --channel 17 --x 3 --y 3`` (the map is 7x7 at
    224 px, 3x3 at the first octave); one step per octave to keep it short."""
    out = tmp_path / "neuron.png"
    args = ["dream", "--noise", "--layer", "blocks.5.0", "--channel", 17, "--x", 3, "--y", 3, "--steps", 1, "-q"]
    res = invoke([*args, "--out", out])
    assert res.exit_code == 0, (res.output, res.exception)
    assert out.exists()
    bad = invoke(["dream", "--noise", "--layer", "blocks.5.0", "--channel", 17, "--x", 7, "--y", 3, "--out", out])
    assert_one_line_error(bad, "x=7", "7x7 at the model's input size", "0 <= x < 7")
