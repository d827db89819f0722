"""The consensus of N starts: the start whose coarse layout agrees best with the others'."""

from __future__ import annotations

import torch

from cnnvis.pipeline.starts import consensus_start, layout_agreement


def _gradient(direction: str, side: int = 64) -> torch.Tensor:
    ramp = torch.linspace(0, 1, side)
    lum = ramp[:, None].expand(side, side) if direction == "down" else ramp[None, :].expand(side, side)
    return lum.expand(3, side, side).clone()


def test_agreement_is_a_correlation_of_coarse_luminance():
    down, right = _gradient("down"), _gradient("right")
    agree = layout_agreement(torch.stack([down, 1 - down, right, down * 0.5 + 0.2]))
    torch.testing.assert_close(agree.diagonal(), torch.ones(4))
    assert agree[0, 1] < -0.99  # the inverted layout
    assert abs(float(agree[0, 2])) < 0.05  # an unrelated one
    assert agree[0, 3] > 0.99  # the same layout, another contrast and brightness


def test_the_medoid_is_kept_not_the_outlier():
    g = torch.Generator().manual_seed(0)
    down = _gradient("down")
    noisy = [down + 0.2 * torch.rand(down.shape, generator=g) for _ in range(3)]
    starts = torch.stack([1 - down, *noisy])  # start 0 stands alone
    assert consensus_start(starts) in (1, 2, 3)
    assert consensus_start(starts[:1]) == 0


def test_fine_texture_does_not_decide_the_layout():
    g = torch.Generator().manual_seed(1)
    down = _gradient("down")
    texture = (torch.rand(1, 64, 64, generator=g) > 0.5).float().expand(3, 64, 64)
    starts = torch.stack([down + 0.3 * texture, down, 1 - down + 0.3 * texture])
    # the two textured starts share their fine pattern, but the layouts of 0 and 1 agree
    assert consensus_start(starts) in (0, 1)
