"""An atlas's batches as tasks of Ray actors (``cnnvis atlas --ray``; an optional extra:
``pip install -e ".[ray]"``, imported only here, when a session starts).

- ``--ray`` alone starts a local Ray runtime on this machine; ``--ray ADDRESS`` joins a cluster
  (``ray://HOST:10001`` or ``auto``).
- Each worker is an actor that loads the model once (:class:`cnnvis.recipes.atlas.UnitWorker`)
  and renders one batch of units per task. Workers get ``threads`` torch threads each, so that
  workers x threads fits the cores, and on a GPU ``num_gpus`` 1 each.
- A worker that dies (a crash, a killed process, a lost node) is restarted by Ray and its task
  retried by Ray's own settings (``max_restarts`` / ``max_task_retries``): no scheduling of ours.
- Results (uint8 images, activations, seconds) travel back to the driver, which writes them: the
  workers need no shared filesystem. Each batch's result arrives once, so each unit is written once.

:class:`RaySession` renders and hands each result to a callback; it writes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cnnvis.errors import InputError
from cnnvis.recipes.atlas import UnitWorker
from cnnvis.recipes.atlas_plan import LOCAL

TASK_RETRIES = 3  # a batch is tried this many more times if its worker dies
_FIX = "give ray://HOST:10001, auto on a cluster node, or --ray alone for a local runtime"


def _ray():
    try:
        import ray
    except ImportError:
        raise InputError(
            '--ray needs Ray, an optional extra: pip install -e ".[ray]" (or pip install "cnnvis[ray]")'
        ) from None
    return ray


def _connect(ray, address: str, workers: int, threads: int) -> bool:
    """Start a local runtime or join ``address``; return whether we started it (and so stop it)."""
    quiet = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if address == LOCAL:
        ray.init(num_cpus=workers * threads, **quiet)
        return True
    _probe(address)
    try:
        ray.init(address=address, **quiet)
    except Exception as e:  # ConnectionError, ray's own types, a malformed address
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise InputError(f"cannot reach a Ray cluster at '{address}' ({first}); {_FIX}") from None
    return False


def _probe(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a ``ray://HOST:PORT`` nobody listens on (Ray Client itself waits 30 s)."""
    import socket
    from urllib.parse import urlsplit

    if not address.startswith("ray://"):
        return
    parts = urlsplit(address)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 10001), timeout=timeout):
            pass
    except (OSError, ValueError) as e:
        raise InputError(f"cannot reach a Ray cluster at '{address}' ({e.__class__.__name__}: {e}); {_FIX}") from None


class _Worker(UnitWorker):
    """The actor: loads the model once in its own process."""

    def __init__(self, model: str, weights: str | None, device: str, threads: int):
        loaded = UnitWorker.load(model, weights, device, threads)
        super().__init__(loaded.model, loaded.device)


class RaySession:
    """The Ray runtime of one atlas: a local one started here (and stopped on exit), or a cluster
    joined at ``address``. Made before any progress is drawn, so a bad address is one line."""

    def __init__(self, address: str, workers: int | None, threads: int | None = None):
        self.ray = _ray()
        cores = os.cpu_count() or 1
        self.address = address
        self.workers = workers or (1 if address == LOCAL else 2)
        # workers x threads fits the cores of this machine; on a cluster, one CPU slot each unless told
        self.threads = threads or (max(1, cores // self.workers) if address == LOCAL else 1)
        self.started = _connect(self.ray, address, self.workers, self.threads)
        self._pools: dict = {}  # (model, weights, device) -> actors, made once per session

    def pool(self, model: str, weights: str | None, device: str) -> list:
        """The session's workers for one model: each loads it once, on the first call, and
        serves every later render of the session (a warm-up batch warms the real run)."""
        key = (model, weights, device)
        if key not in self._pools:
            gpu = device.startswith("cuda")
            actor = self.ray.remote(
                num_cpus=self.threads, num_gpus=(1 if gpu else 0), max_restarts=-1, max_task_retries=TASK_RETRIES
            )(_Worker)
            self._pools[key] = [
                actor.remote(model, weights, "cuda" if gpu else "cpu", self.threads) for _ in range(self.workers)
            ]
        return self._pools[key]

    def __enter__(self) -> RaySession:
        return self

    def __exit__(self, *exc) -> None:
        if self.started:
            self.ray.shutdown()

    def render(self, plan, work: list, on_result: Callable, stop: Callable[[], bool]) -> None:
        """Render ``work`` (a list of (layer plan, units), :func:`cnnvis.recipes.atlas_plan.batches`)
        of ``plan`` (an :class:`cnnvis.recipes.atlas_plan.AtlasPlan`) on the workers; call
        ``on_result(layer plan, result)`` on the driver as each batch arrives. ``stop()`` true:
        submit no more, let the batches in flight finish."""
        pool = self.pool(plan.model_name, plan.weights, plan.device)
        queue = list(work)
        pending: dict = {}

        def submit(a) -> None:
            lp, chunk = queue.pop(0)
            ref = a.render.remote(lp.hook, chunk, plan.kind, plan.size, plan.seed, plan.options, plan.prior)
            pending[ref] = (lp, a)

        for a in pool:
            if queue:
                submit(a)
        while pending:
            (ref,), _ = self.ray.wait(list(pending), num_returns=1)
            lp, a = pending.pop(ref)
            result = self._get(ref)
            if queue and not stop():
                submit(a)  # the worker starts its next batch while the driver writes this one
            on_result(lp, result)

    def _get(self, ref) -> dict:
        """A finished task's result; an :class:`InputError` on the worker is raised here as the
        driver would raise it (one line, no Ray wrapping)."""
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as e:
            cause = e.as_instanceof_cause()
            if isinstance(cause, InputError):
                raise InputError(str(cause)) from None
            raise
