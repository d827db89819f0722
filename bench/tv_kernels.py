"""TV loss + gradient: kornia.filters.filter2d per kernel vs the one grouped conv cnnvis uses.

Usage:
    python bench/tv_kernels.py [--side 512] [--repeats 11]

Prints the median seconds of each for a (1, 3, side, side) canvas and their ratio, and checks
that both give the same loss.
"""

from __future__ import annotations

import argparse
import statistics
import time

import kornia
import torch

from cnnvis.regularize.penalties import TV, tv_kernels


def kornia_tv(x: torch.Tensor, operator: str, beta: float = 2.0, eps: float = 1e-8) -> torch.Tensor:
    kx, ky = tv_kernels(operator)
    dx = kornia.filters.filter2d(x, kx[None], padding="valid")
    dy = kornia.filters.filter2d(x, ky[None], padding="valid")
    if beta == 2:  # the same reduction cnnvis uses at beta = 2, so only the filtering differs
        return dx.square().sum() + dy.square().sum() + eps * dx.numel()
    return (dx.square() + dy.square() + eps).pow(beta / 2).sum()


def timed(fn, x: torch.Tensor, repeats: int) -> tuple[float, float]:
    times, loss = [], 0.0
    for _ in range(repeats):
        xs = x.detach().requires_grad_(True)
        t = time.perf_counter()
        loss_t = fn(xs)
        torch.autograd.grad(loss_t, xs)
        times.append(time.perf_counter() - t)
        loss = float(loss_t.detach())
    return statistics.median(times), loss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.rand(1, 3, args.side, args.side)
    for op in ("naive", "sobel", "sobel_squish"):
        tk, lk = timed(lambda t: kornia_tv(t, op), x, args.repeats)
        tg, lg = timed(lambda t: TV(1.0, operator=op).loss(t), x, args.repeats)
        same = abs(lk - lg) <= 1e-4 * abs(lk)
        print(
            f"{op:13} kornia filter2d {1e3 * tk:7.1f} ms   grouped conv {1e3 * tg:6.1f} ms   ratio {tk / tg:4.1f}x   "
            f"same loss: {same}"
        )


if __name__ == "__main__":
    main()
