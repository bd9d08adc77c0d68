"""A pool of Ray actors that runs tasks on free replicas and survives replicas that die.

Each replica runs one task at a time, so a free replica is one with nothing in
flight. A task whose replica dies (its process crashed or was killed, or its
node went away) is put back at the head of the queue and runs again on the
next free replica; the dead replica is replaced by a fresh one. Each task's
result is taken from exactly one successful run, so nothing is lost or
counted twice. After `max_retries` deaths under the same task the pool gives
up with a one-line `AutodidactError` rather than return a partial result.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from autodidact.errors import AutodidactError

log = logging.getLogger(__name__)

# How long to wait for a replica to load its model when no other replica can work meanwhile:
# past it the cluster most likely cannot place the actor (no node with the CPUs/GPUs asked for).
START_TIMEOUT_S = 900.0

Task = Callable[[Any], "ray.ObjectRef"]  # actor handle -> the ref of one remote call on it


@dataclass
class Replica:
    handle: Any  # ray.actor.ActorHandle
    started: Any  # ObjectRef of `ready()`: set when the model is loaded
    ready: bool = False
    task: int | None = None  # the task in flight on it


@dataclass
class PoolStats:
    """What happened to the pool's workers, over its lifetime."""

    tasks: int = 0  # task runs that returned a result (one per task)
    retries: int = 0  # task runs lost with their replica and run again
    replaced: list[str] = field(default_factory=list)  # why each replaced replica was lost


def _last_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


class ReplicaPool:
    """`size` actors from `start()`; `run` spreads tasks over them, `broadcast` calls every one.

    Args:
        start: creates one actor (it starts loading its model at once).
        size: replicas kept alive.
        max_retries: runs of one task lost to dead replicas before giving up.
    """

    def __init__(self, start: Callable[[], Any], size: int, max_retries: int):
        self._start = start
        self.max_retries = max_retries
        self.stats = PoolStats()
        self._failed_starts = 0  # replicas in a row that died while loading the model
        self.replicas = [self._new() for _ in range(size)]

    def _new(self) -> Replica:
        handle = self._start()
        return Replica(handle, handle.ready.remote())

    def _replace(self, replica: Replica, why: str) -> None:
        log.warning("a Ray worker was lost (%s); starting a replacement", why)
        self.stats.replaced.append(why)
        ray.kill(replica.handle, no_restart=True)  # an "unavailable" actor could come back: make sure it does not
        self.replicas[self.replicas.index(replica)] = self._new()

    def _started(self, replica: Replica) -> None:
        """Mark a replica ready once `ready()` returned; a replica that cannot load the model is fatal."""
        try:
            ray.get(replica.started)
        except RayActorError as exc:
            if exc.actor_init_failed:  # the same load would fail on every replica: retrying cannot help
                raise AutodidactError(f"distributed: a Ray worker could not load the model: {_last_line(exc)}") from None
            self._failed_starts += 1
            if self._failed_starts > self.max_retries + len(self.replicas):  # e.g. killed for memory every time
                raise AutodidactError(
                    f"distributed: {self._failed_starts} Ray workers in a row died while loading the model "
                    f"({_last_line(exc)}); check the workers' memory and logs."
                ) from None
            self._replace(replica, _last_line(exc))
            return
        replica.ready = True
        self._failed_starts = 0

    def run(self, tasks: Sequence[Task], on_done: Callable[[], None] | None = None) -> list[Any]:
        """Every task's result, in task order; each task runs on one free replica at a time.

        Raises:
            AutodidactError: a task lost `max_retries + 1` replicas, or no replica can start.
        """
        in_flight: dict[Any, Replica] = {}  # result ref -> the replica running it
        try:
            return self._run(tasks, on_done, in_flight)
        finally:
            # On an error, work still in flight finishes unseen; its replicas take new calls after it.
            for replica in in_flight.values():
                replica.task = None

    def _run(self, tasks: Sequence[Task], on_done: Callable[[], None] | None, in_flight: dict[Any, Replica]) -> list[Any]:
        results: list[Any] = [None] * len(tasks)
        done = [False] * len(tasks)
        lost = [0] * len(tasks)
        queue = deque(range(len(tasks)))
        while queue or in_flight:
            for replica in self.replicas:
                if queue and replica.ready and replica.task is None:
                    replica.task = queue.popleft()
                    in_flight[tasks[replica.task](replica.handle)] = replica
            starting = {r.started: r for r in self.replicas if not r.ready}
            timeout = None if in_flight else START_TIMEOUT_S
            ready, _ = ray.wait(list(in_flight) + list(starting), num_returns=1, timeout=timeout)
            if not ready:
                raise AutodidactError(
                    f"distributed: no Ray worker started within {START_TIMEOUT_S:.0f} s; check that the cluster has "
                    "the CPUs/GPUs that distributed.cpus_per_worker / gpus_per_worker ask for."
                )
            ref = ready[0]
            if ref in starting:
                self._started(starting[ref])
                continue
            replica = in_flight.pop(ref)
            task, replica.task = replica.task, None
            try:
                result = ray.get(ref)
            except RayActorError as exc:
                self._replace(replica, _last_line(exc))
                lost[task] += 1
                if lost[task] > self.max_retries:
                    raise AutodidactError(
                        f"distributed: shard {task} was lost with {lost[task]} Ray workers in a row; raise "
                        f"distributed.max_shard_retries (now {self.max_retries}) or check the workers' logs."
                    ) from None
                self.stats.retries += 1
                queue.appendleft(task)  # first in line for the next free replica
                continue
            assert not done[task], "a task's result arrived twice"
            results[task], done[task] = result, True
            self.stats.tasks += 1
            if on_done:
                on_done()
        return results

    def broadcast(self, call: Task) -> None:
        """Run `call` on every replica and wait; a replica that dies meanwhile is replaced.

        The replacement is built by `start`, which must already reflect what `call`
        changes (e.g. the checkpoint to serve), so it needs no call of its own.
        """
        refs = {call(r.handle): r for r in self.replicas}
        for ref, replica in refs.items():
            try:
                ray.get(ref, timeout=START_TIMEOUT_S)
            except GetTimeoutError:
                raise AutodidactError(
                    f"distributed: a Ray worker did not answer within {START_TIMEOUT_S:.0f} s; check the workers' logs."
                ) from None
            except RayActorError as exc:
                if exc.actor_init_failed:
                    raise AutodidactError(f"distributed: a Ray worker could not load the model: {_last_line(exc)}") from None
                self._replace(replica, _last_line(exc))
            except RayTaskError as exc:  # e.g. a checkpoint folder this worker's machine cannot see
                raise AutodidactError(f"distributed: a Ray worker failed: {_last_line(exc)}") from None
            else:
                replica.ready = True  # its __init__ ran before the call

    def wait_ready(self) -> None:
        """Wait until every replica has loaded its model (a load error is raised here, not at the first request)."""
        self.broadcast(lambda handle: handle.ready.remote())

    def shutdown(self) -> None:
        """Kill every replica (their models' memory is freed with their processes)."""
        for replica in self.replicas:
            ray.kill(replica.handle, no_restart=True)
        self.replicas = []
