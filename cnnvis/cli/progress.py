"""The one progress bar of cnnvis: :func:`bar` for the CLI's loops (steps, frames, units), and
:class:`ProgressBar`, a ready callback for notebooks and scripts over a render's steps.

It lives with the CLI so that the library never imports tqdm; pass :class:`ProgressBar` as the
callback of any render::

    from cnnvis.cli.progress import ProgressBar
    out = cnnvis.render(model, objective, cfg, callback=ProgressBar("channel 5"))
"""

from __future__ import annotations

from tqdm.auto import tqdm


def bar(total: int, *, unit: str = "step", initial: int = 0, quiet: bool = False, leave: bool = True, **tqdm_kw):
    """A tqdm bar (a widget in Jupyter, text elsewhere) over ``total`` ``unit``s; ``quiet``: none
    is drawn, but it still counts (``.n``). ``tqdm_kw``: more of tqdm's options (``file``, ...)."""
    return tqdm(total=total, initial=initial, disable=quiet, unit=unit, dynamic_ncols=True, leave=leave, **tqdm_kw)


class ProgressBar:
    """A callback for :meth:`cnnvis.pipeline.loop.Render.run`: one bar per run showing the size,
    the score and the learning rate; it closes itself at the last step. ``then`` is called with
    every progress report too."""

    def __init__(self, desc: str = "", then=None, quiet: bool = False, **tqdm_kw):
        self.desc, self.then, self.quiet, self.kw, self.bar = desc, then, quiet, tqdm_kw, None

    def __call__(self, p) -> None:
        if self.bar is None:
            self.bar = bar(p.total, initial=p.step - 1, quiet=self.quiet, **self.kw)
        prefix = f"{self.desc.rstrip()} " if self.desc else ""
        self.bar.set_description(f"{prefix}size {p.size_index + 1}/{p.num_sizes} {p.size[0]}x{p.size[1]}")
        self.bar.set_postfix(score=f"{p.score:.3g}", lr=f"{p.lr:.3g}", refresh=False)
        self.bar.update(1)
        if self.then is not None:
            self.then(p)
        if p.step >= p.total:
            self.close()

    @property
    def steps_done(self) -> int:
        """The steps counted so far (0 before the first)."""
        return 0 if self.bar is None else self.bar.n

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
