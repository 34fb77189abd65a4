"""Background priority for the work that feeds a model: decoding, augmenting and writing chips.

On a machine whose cores all run the model (2 cores here, 2 threads in every operator),
a loader or writer at normal priority preempts a model thread, and a multi-threaded operator
then stalls until its last thread is back: decoding and writing 1024 px chips cost ~0.08 s of
CPU per chip but slowed the model by ~0.25 s per chip. At a low priority they run in the gaps
the model's threads leave. The same holds for the training DataLoader's workers.
"""

import os
import threading

# Scheduling priority (nice) added for background work.
BACKGROUND_NICENESS = 10


def run_in_background() -> None:
    """Lower the calling thread's scheduling priority (Linux: per thread; elsewhere: no-op)."""
    try:
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + BACKGROUND_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(niceness, 19))
    except (AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
        pass


def start_background_worker(worker_id: int) -> None:
    """A DataLoader's ``worker_init_fn``: the worker's loading is background work."""
    run_in_background()
