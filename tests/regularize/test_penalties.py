"""TV and p-norm losses against hand-written formulas, strip-wise gradients and blur against whole-image ones."""

from __future__ import annotations

import kornia
import pytest
import torch

from cnnvis import InputError
from cnnvis.regularize.penalties import TV, TV_OPERATORS, PNorm, gaussian_blur_, regularizer_gradient


def _need_float64(device: torch.device) -> None:
    if device.type == "mps":
        pytest.skip("MPS has no float64")


def _tv_reference(x: torch.Tensor, operator: str, beta: float, eps: float, scale: float = 1.0) -> torch.Tensor:
    """cnn-vis's finite differences written out by slicing (float64)."""
    x = x.double() / scale
    if operator == "naive":
        dx = x[:, :, :-1, :-1] - x[:, :, :-1, 1:]
        dy = x[:, :, :-1, :-1] - x[:, :, 1:, :-1]
    else:
        # rows r0..r2 / columns c0..c2 of every complete 3x3 window
        r = [x[:, :, i : x.shape[2] - 2 + i, :] for i in range(3)]
        if operator == "sobel":
            # right column minus left column, rows weighted 1, 2, 1; bottom row minus top row likewise
            hx = [ri[..., 2:] - ri[..., :-2] for ri in r]
            dx = hx[0] + 2 * hx[1] + hx[2]
            vy = r[2] - r[0]
            dy = vy[..., :-2] + 2 * vy[..., 1:-1] + vy[..., 2:]
        elif operator == "sobel_squish":
            # centre column minus left column, rows weighted 1, 2, 1; centre row minus top row likewise
            hx = [ri[..., 1:-1] - ri[..., :-2] for ri in r]
            dx = hx[0] + 2 * hx[1] + hx[2]
            vy = r[1] - r[0]
            dy = vy[..., :-2] + 2 * vy[..., 1:-1] + vy[..., 2:]
        else:
            raise AssertionError(operator)
    return (dx**2 + dy**2 + eps) ** (beta / 2)


@pytest.mark.parametrize("operator", TV_OPERATORS)
@pytest.mark.parametrize("beta,eps,scale,weight", [(2.0, 1e-8, 1.0, 1.0), (1.5, 1e-3, 1.0, 0.3), (3.0, 0.0, 2.0, 2.0)])
def test_tv_matches_hand_written_formula(operator, beta, eps, scale, weight, device):
    _need_float64(device)
    torch.manual_seed(0)
    x = torch.rand(2, 3, 9, 11, dtype=torch.float64).to(device)
    got = TV(weight, beta=beta, operator=operator, scale=scale, eps=eps).loss(x)
    want = weight * _tv_reference(x, operator, beta, eps, scale).sum()
    assert torch.allclose(got, want, rtol=1e-10, atol=1e-12)


def test_tv_operators_differ(device):
    """The three operators are really different (a test of the test's reference, too)."""
    _need_float64(device)
    torch.manual_seed(0)
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64).to(device)
    values = {op: float(TV(1.0, operator=op).loss(x)) for op in TV_OPERATORS}
    assert len({round(v, 9) for v in values.values()}) == 3


def test_tv_of_constant_image_is_eps_only(device):
    _need_float64(device)
    x = torch.full((1, 3, 6, 7), 0.3, dtype=torch.float64, device=device)
    loss = TV(1.0, beta=2.0, operator="naive", eps=1e-4).loss(x)
    assert float(loss) == pytest.approx(3 * 5 * 6 * 1e-4)


@pytest.mark.parametrize("operator", TV_OPERATORS)
def test_tv_gradcheck(operator, device):
    _need_float64(device)
    torch.manual_seed(1)
    x = torch.rand(1, 2, 6, 7, dtype=torch.float64).to(device).requires_grad_(True)
    tv = TV(0.7, beta=1.5, operator=operator, eps=1e-3)
    assert torch.autograd.gradcheck(lambda t: tv.loss(t), (x,))


@pytest.mark.parametrize("target", ["zero", "init"])
def test_pnorm_gradcheck_and_value(target, device):
    _need_float64(device)
    torch.manual_seed(2)
    x = torch.rand(1, 3, 5, 6, dtype=torch.float64).to(device).requires_grad_(True)
    ref = torch.rand(1, 3, 5, 6, dtype=torch.float64).to(device)
    pn = PNorm(0.5, alpha=6.0, scale=0.5, target=target, center=(0.4, 0.5, 0.6))
    assert torch.autograd.gradcheck(lambda t: pn.loss(t, ref), (x,))
    c = torch.tensor([0.4, 0.5, 0.6], dtype=torch.float64, device=device).view(1, 3, 1, 1)
    anchor = ref if target == "init" else c
    want = 0.5 * (((x.detach() - anchor) / 0.5).abs() ** 6).sum()
    assert torch.allclose(pn.loss(x.detach(), ref), want)


def _whole_gradient(canvas, reg, ref=None):
    x = canvas.detach().clone().requires_grad_(True)
    loss = reg.loss(x, ref)
    (g,) = torch.autograd.grad(loss, x)
    return g, float(loss.detach())


@pytest.mark.parametrize(
    "reg",
    [
        TV(0.8, beta=2.0, operator="naive"),
        TV(0.8, beta=1.5, operator="sobel", eps=1e-4),
        TV(0.8, beta=2.5, operator="sobel_squish"),
        PNorm(0.3, alpha=6.0, scale=0.5, target="zero"),
        PNorm(0.3, alpha=4.0, scale=0.7, target="init"),
    ],
    ids=["tv-naive", "tv-sobel", "tv-sobel_squish", "pnorm-zero", "pnorm-init"],
)
@pytest.mark.parametrize("strip_rows", [1, 2, 5, 7, 64])
def test_strip_gradient_equals_whole_image_gradient(reg, strip_rows, device):
    _need_float64(device)
    torch.manual_seed(3)
    canvas = torch.rand(1, 3, 23, 17, dtype=torch.float64).to(device)
    ref = torch.rand(1, 3, 23, 17, dtype=torch.float64).to(device)
    want_g, want_loss = _whole_gradient(canvas, reg, ref)
    out = torch.zeros_like(canvas)
    total = regularizer_gradient(canvas, [reg], out, ref=ref, strip_rows=strip_rows)
    assert torch.allclose(out, want_g, rtol=1e-9, atol=1e-12)
    assert total == pytest.approx(want_loss, rel=1e-9)


def test_regularizer_gradient_sums_several_and_skips_zero_weight(device):
    _need_float64(device)
    torch.manual_seed(4)
    canvas = torch.rand(1, 3, 20, 14, dtype=torch.float64).to(device)
    regs = [TV(0.5, operator="sobel"), PNorm(0.2), TV(0.0, operator="naive")]
    out = torch.full_like(canvas, 1.0)  # added to, not overwritten
    total = regularizer_gradient(canvas, regs, out, strip_rows=6)
    g1, l1 = _whole_gradient(canvas, regs[0])
    g2, l2 = _whole_gradient(canvas, regs[1])
    assert torch.allclose(out, 1.0 + g1 + g2, atol=1e-10)
    assert total == pytest.approx(l1 + l2, rel=1e-9)


@pytest.mark.parametrize("sigma,strip_rows", [(1.0, 7), (0.5, 3), (2.0, 7), (1.3, 40), (1.0, 1)])
def test_gaussian_blur_strips_equal_kornia_whole_image(sigma, strip_rows, device):
    torch.manual_seed(5)
    canvas = torch.rand(1, 3, 40, 30).to(device)
    k = 2 * int(round(3 * sigma)) + 1
    want = kornia.filters.gaussian_blur2d(canvas, (k, k), (sigma, sigma), border_type="reflect")
    got = canvas.clone()
    gaussian_blur_(got, sigma, strip_rows=strip_rows)
    assert not torch.allclose(got, canvas, atol=1e-3)
    assert torch.allclose(got, want, atol=1e-6)


def test_gaussian_blur_sigma_zero_is_identity(device):
    canvas = torch.rand(1, 3, 10, 12).to(device)
    got = canvas.clone()
    gaussian_blur_(got, 0.0)
    assert torch.equal(got, canvas)


def test_unknown_tv_operator_raises():
    with pytest.raises(InputError, match="'prewitt'") as e:
        TV(1.0, operator="prewitt")
    assert "naive" in str(e.value)


def test_unknown_pnorm_target_raises():
    with pytest.raises(InputError, match="'mean'"):
        PNorm(1.0, target="mean")
