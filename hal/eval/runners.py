"""Run many episodes: a local process pool (the default) or Ray tasks on a cluster.

Each episode is a pure function of its :class:`~hal.eval.episode.EpisodeSpec` (lockstep fast
mode), so the two runners give the same results per seed. Progress goes to a callback as
episodes finish (in any order); results come back in the specs' order.

Ray (``pip install 'krabby[ray]'``) runs with its usage statistics and its dashboard off. A Ray
cluster runs whatever code its clients send: keep it on a trusted, isolated network.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
from typing import Any, Callable, Sequence

from hal.eval.episode import EpisodeSpec, run_episode

__all__ = ["run_local", "run_ray", "default_workers"]

Progress = Callable[[int, int, dict[str, Any]], None]


def default_workers() -> int:
    """One worker per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _worker_init(parent_pid: int) -> None:
    """Quiet logs, and end with the parent: a killed krabby-eval leaves no workers behind."""
    import logging
    import threading
    import time

    # Every episode ends with the safety layer's shutdown warning: noise in a worker.
    logging.basicConfig(level=logging.ERROR)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="krabby-eval-parent-watch", daemon=True).start()


def run_local(specs: Sequence[EpisodeSpec], workers: int,
              progress: Progress | None = None) -> list[dict[str, Any]]:
    """Run ``specs`` in ``workers`` processes (1: in this process); results in spec order."""
    results: list[dict[str, Any] | None] = [None] * len(specs)
    if workers <= 1:
        for i, spec in enumerate(specs):
            results[i] = run_episode(spec)
            if progress is not None:
                progress(i + 1, len(specs), results[i])
        return results  # type: ignore[return-value]
    context = multiprocessing.get_context("spawn")  # no inherited threads, sockets or engines
    with futures.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                     initializer=_worker_init,
                                     initargs=(os.getpid(),)) as pool:
        pending = {pool.submit(run_episode, spec): i for i, spec in enumerate(specs)}
        done = 0
        for future in futures.as_completed(pending):
            i = pending[future]
            results[i] = future.result()
            done += 1
            if progress is not None:
                progress(done, len(specs), results[i])
    return results  # type: ignore[return-value]


def run_ray(specs: Sequence[EpisodeSpec], address: str | None, num_cpus: int | None = None,
            progress: Progress | None = None) -> list[dict[str, Any]]:
    """Run ``specs`` as Ray tasks on the cluster at ``address`` (None: a local Ray instance
    with ``num_cpus`` CPUs, bound to loopback)."""
    from hal.optional import require

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = require("ray", "krabby-eval --ray")
    started = False
    if not ray.is_initialized():
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "configure_logging": False}
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=num_cpus or default_workers(), _node_ip_address="127.0.0.1",
                     **options)
        started = True
    try:
        task = ray.remote(num_cpus=1)(run_episode)
        refs = [task.remote(spec) for spec in specs]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[dict[str, Any] | None] = [None] * len(specs)
        remaining, done = list(refs), 0
        while remaining:
            ready, remaining = ray.wait(remaining, num_returns=1)
            i = index[ready[0]]
            results[i] = ray.get(ready[0])
            done += 1
            if progress is not None:
                progress(done, len(specs), results[i])
        return results  # type: ignore[return-value]
    finally:
        if started:
            ray.shutdown()
