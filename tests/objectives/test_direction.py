"""Directions in activation space and caricatures: values, gradients, checks, the -O spelling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnvis.canvas.start import Start
from cnnvis.canvas.tiling import Window
from cnnvis.config import RenderConfig
from cnnvis.errors import InputError
from cnnvis.objectives.base import Capture
from cnnvis.objectives.direction import Caricature, Direction, DirectionNeuron
from cnnvis.objectives.spec import parse_objective
from cnnvis.pipeline.loop import Render


def _cap(a, targets=None, ref=None):
    b = a.shape[0]
    return Capture(
        torch.zeros(b, 3, 8, 8),
        {"L": a},
        [Window(0, 8, 0, 8)] * b,
        (8, 8),
        None if targets is None else {id(ref): {"L": targets}},
    )


def test_direction_is_the_mean_dot_product_over_positions():
    a = torch.randn(2, 3, 4, 5)
    v = torch.tensor([1.0, -2.0, 0.5])
    got = Direction("L", v)(_cap(a))
    want = (a * v.view(1, 3, 1, 1)).sum(1).flatten(1).mean(1)
    assert torch.allclose(got, want)


def test_cossim_favours_the_direction_over_magnitude():
    v = [1.0, 0.0]
    along = torch.tensor([[1.0, 0.0]]).view(1, 2, 1, 1)
    off = torch.tensor([[1.0, 10.0]]).view(1, 2, 1, 1)  # same dot product, far off the direction
    plain, angled = Direction("L", v), Direction("L", v, cossim_pow=2)
    assert torch.allclose(plain(_cap(along)), plain(_cap(off)))
    assert float(angled(_cap(along))) > 10 * float(angled(_cap(off)))


def test_direction_neuron_reads_one_position():
    a = torch.zeros(1, 2, 5, 5)
    a[0, :, 2, 2] = torch.tensor([3.0, 4.0])
    a[0, :, 0, 0] = torch.tensor([100.0, 100.0])
    assert float(DirectionNeuron("L", [1.0, 1.0])(_cap(a))) == pytest.approx(7.0)
    assert float(DirectionNeuron("L", [1.0, 1.0], x=0, y=0)(_cap(a))) == pytest.approx(200.0)


def test_wrong_length_and_zero_vectors_are_input_errors():
    with pytest.raises(InputError, match=r"has 3 values but layer 'L' has 4 channels"):
        Direction("L", [1.0, 2.0, 3.0]).check({"L": torch.zeros(1, 4, 2, 2)})
    with pytest.raises(InputError, match="non-zero"):
        Direction("L", [0.0, 0.0])
    with pytest.raises(InputError, match="outside layer"):
        DirectionNeuron("L", [1.0, 1.0], x=9, y=0).check({"L": torch.zeros(1, 2, 3, 3)})


def test_caricature_is_dot_times_cosine_with_the_reference_features():
    ref = torch.zeros(1, 3, 8, 8)
    t = torch.randn(1, 4, 3, 3)
    car = Caricature("L", ref, cossim_pow=1)
    same = car(_cap(t.clone(), t, ref))
    assert float(same) == pytest.approx(float((t * t).sum()), rel=1e-4)  # cosine 1 everywhere
    assert car.references == (ref,)
    with pytest.raises(InputError, match="--reference"):
        Caricature("L", None)


def test_parse_direction_specs(tmp_path):
    path = tmp_path / "v.npy"
    np.save(path, np.array([1.0, 0.0, 2.0], np.float32))
    w, layer, obj = parse_objective(f"direction:L:{path}@0.5")
    assert (w, layer) == (0.5, "L") and isinstance(obj, Direction) and obj.cossim_pow == 0
    _, _, obj = parse_objective(f"direction-neuron:L:{path}:1:2")
    assert isinstance(obj, DirectionNeuron) and (obj.x, obj.y) == (1, 2)
    _, _, obj = parse_objective(f"direction-cossim:L:{path}:3")
    assert obj.cossim_pow == 3
    with pytest.raises(InputError, match="does not exist"):
        parse_objective(f"direction:L:{tmp_path / 'nope.npy'}")
    with pytest.raises(InputError, match="needs a reference image"):
        parse_objective("caricature:L")
    _, _, car = parse_objective("caricature:L:2", reference=torch.zeros(1, 3, 8, 8))
    assert isinstance(car, Caricature) and car.cossim_pow == 2


def test_rendering_a_direction_raises_the_projection(tiny_model):
    v = torch.zeros(16)
    v[3], v[7] = 1.0, -1.0
    obj = Direction("conv3", v)
    cfg = RenderConfig(steps=8, tile=32, optimizer="adam", lr=0.05)
    r = Render(tiny_model, obj, cfg, Start(size=(32, 32)))
    log = []
    r.run(lambda p: log.append(p.score))
    assert log[-1] > log[0]


def test_caricature_renders_against_a_reference(tiny_model):
    ref = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    log = []
    Render(
        tiny_model,
        Caricature("conv3", ref),
        RenderConfig(steps=6, tile=32, optimizer="adam", lr=0.05),
        Start(size=(32, 32)),
    ).run(lambda p: log.append(p.score))
    assert log[-1] > log[0]


def test_channel_weights_are_a_sparse_direction_equal_to_its_dense_vector():
    a = torch.randn(2, 6, 3, 3)
    _, _, sparse = parse_objective("direction:L:1=1,4=-0.5")
    dense = torch.zeros(6)
    dense[1], dense[4] = 1.0, -0.5
    assert torch.allclose(sparse(_cap(a)), Direction("L", dense)(_cap(a)))
    _, _, angled = parse_objective("direction-cossim:L:1=1,4=-0.5:2")
    assert torch.allclose(angled(_cap(a)), Direction("L", dense, cossim_pow=2)(_cap(a)))
    with pytest.raises(InputError, match="channel 9.*6 channels"):
        parse_objective("direction:L:9=1")[2].check({"L": a})
    with pytest.raises(InputError, match="5=1,42=-0.5"):
        parse_objective("direction:L:1=x")
