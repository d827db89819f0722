"""A ready progress callback for notebooks and scripts: a ``tqdm.auto`` bar over a render's steps.

It lives with the CLI's bars so that the library never imports tqdm; pass it as the callback of
any render::

    from cnnvis.cli.progress import ProgressBar
    out = cnnvis.render(model, objective, cfg, callback=ProgressBar("channel 5"))
"""

from __future__ import annotations

from tqdm.auto import tqdm


class ProgressBar:
    """A callback for :meth:`cnnvis.pipeline.loop.Render.run`: one bar per run (a widget in
    Jupyter, text elsewhere) showing the size, the score and the learning rate; it closes
    itself at the last step. ``then`` is called with every progress report too."""

    def __init__(self, desc: str = "", then=None, **tqdm_kw):
        self.desc, self.then, self.kw, self.bar = desc, then, tqdm_kw, None

    def __call__(self, p) -> None:
        if self.bar is None:
            self.bar = tqdm(total=p.total, initial=p.step - 1, desc=self.desc, unit="step", **self.kw)
        self.bar.set_postfix(size=f"{p.size[0]}x{p.size[1]}", score=f"{p.score:.3g}", lr=f"{p.lr:.3g}", refresh=False)
        self.bar.update(1)
        if self.then is not None:
            self.then(p)
        if p.step >= p.total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
