"""Training in several processes (GPUs, or CPU processes) started by PyTorch's launcher, torchrun.

Each process finds its place in torchrun's variables and joins one process group (NCCL between GPUs, gloo
between CPU processes); with one process nothing here does anything. ``--batch-size`` is the global batch,
sharded so that a step sees the images of a single-process run; all ranks stop at the same step; rank 0 writes
the files; a failing rank tells the others through the group's store. docs/distributed.md explains each."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from latentctl.device import resolve_device
from latentctl.errors import LatentctlError

EXIT_INTERRUPTED = 130
REPORT_WAIT_SECONDS = 2.0  # how long a failed rank other than 0 waits to see whether rank 0 failed too
WATCH_SECONDS = 1.0  # how often each rank looks for another rank's failure
LEAVE_AFTER_SECONDS = 10.0  # how long it then gives the failed rank to report, and torchrun to stop everyone
TORCHRUN_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")  # torchrun takes these over in its process


@dataclass(frozen=True)
class Distributed:
    """This process's place among the processes of one training run: rank 0 of 1 unless torchrun started it."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0  # the rank among the processes of this machine: which GPU it takes

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and prints progress."""
        return self.rank == 0

    def check_batch_size(self, batch_size: int) -> None:
        """Refuse a global batch that does not split evenly into per-rank batches of 2 or more."""
        if self.enabled and (batch_size % self.world_size or batch_size // self.world_size < 2):
            raise LatentctlError(f"a batch of {batch_size} does not split into {self.world_size} equal batches of "
                                 "2 images or more (--batch-size is the global batch, shared by the processes)",
                                 hint=f"pass a --batch-size that is a multiple of {self.world_size}")

    def shard(self, batch_index: torch.Tensor) -> torch.Tensor:
        """Return this rank's slice of a global batch (all of it in a single process)."""
        if not self.enabled:
            return batch_index
        per_rank = batch_index.shape[0] // self.world_size
        return batch_index[self.rank * per_rank:(self.rank + 1) * per_rank]

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """Return ``module`` in DistributedDataParallel (gradients averaged over the ranks), or itself in one
        process. The module keeps its own parameter names: checkpoints hold no ``module.`` prefix."""
        if not self.enabled:
            return module
        from torch.nn.parallel import DistributedDataParallel

        # DDP's defaults: every rank starts from rank 0's weights and, before each forward pass, from its
        # BatchNorm running statistics; no unused parameters to look for (every forward uses them all)
        return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)

    def sync_batchnorm(self, module: nn.Module, device: torch.device) -> nn.Module:
        """Return ``module`` with its BatchNorm layers computing their statistics over the global batch
        (``--sync-bn``); the parameter and buffer names stay those of plain BatchNorm."""
        if not self.enabled:
            return module
        if device.type != "cuda":
            raise LatentctlError("--sync-bn needs GPUs: PyTorch's SyncBatchNorm does not run on the CPU",
                                 hint="leave --sync-bn out, or train with --device cuda")
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)

    def no_sync(self, module: nn.Module) -> AbstractContextManager[Any]:
        """Backward passes started inside skip averaging ``module``'s gradients (for gradients to be discarded)."""
        return module.no_sync() if self.enabled else nullcontext()

    def mean_and_stop(self, values: torch.Tensor, stop: bool) -> tuple[torch.Tensor, bool]:
        """Return ``values`` averaged over the ranks, and whether any rank asked to stop: one all-reduce."""
        if not self.enabled:
            return values, stop
        import torch.distributed as dist

        packed = torch.cat([values.detach().flatten().float(),
                            torch.tensor([1.0 if stop else 0.0], device=values.device)])
        dist.all_reduce(packed)
        mean = (packed[:-1] / self.world_size).to(values.dtype).view_as(values)
        return mean, bool(packed[-1].item() > 0)

    def sync_buffers(self, *modules: nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

        Training never reads them (BatchNorm in training mode normalises with the batch's own statistics),
        and DDP sends rank 0's before each forward pass; this makes every rank hold the very model rank 0
        saves, for evaluation and for the checkpoint."""
        if not self.enabled:
            return
        import torch.distributed as dist

        for module in modules:
            for buffer in module.buffers():
                dist.broadcast(buffer, src=0)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Return ``tensor`` summed over the ranks (itself in one process), on its own device."""
        if not self.enabled:
            return tensor
        import torch.distributed as dist

        total = tensor.to(_collective_device(), copy=True)
        dist.all_reduce(total)
        return total.to(tensor.device)

    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Return every rank's ``tensor`` (same shape and type on all), in rank order, on the CPU."""
        if not self.enabled:
            return [tensor]
        import torch.distributed as dist

        mine = tensor.to(_collective_device())
        parts = [torch.empty_like(mine) for _ in range(self.world_size)]
        dist.all_gather(parts, mine)
        return [part.cpu() for part in parts]

    def barrier(self) -> None:
        """Wait until every rank gets here (after rank 0 wrote files, before anyone reads them)."""
        if self.enabled:
            import torch.distributed as dist

            device = _collective_device()
            if device.type == "cuda":
                dist.barrier(device_ids=[device.index])
            else:
                dist.barrier()


def _collective_device() -> torch.device:
    """Where tensors must be for the process group's collectives: this process's GPU with NCCL, else the CPU."""
    import torch.distributed as dist

    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


SINGLE = Distributed()


# ------------------------------------------------------------------------------------- joining and leaving

def environment_rank() -> int:
    """This process's rank as torchrun set it (0 outside torchrun), readable before the group exists."""
    return int(os.environ.get("RANK", "0")) if launched_by_torchrun() else 0


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"))


def start(device_spec: str) -> tuple[Distributed, torch.device]:
    """Join the processes torchrun started with this one and return this one's place and device; without
    torchrun, or alone, return a single process on ``resolve_device(device_spec)``."""
    world_size = int(os.environ.get("WORLD_SIZE", "1")) if launched_by_torchrun() else 1
    if world_size == 1:
        return SINGLE, resolve_device(device_spec)
    spec = device_spec.strip().lower()
    if spec == "mps" or spec.startswith("cuda:"):
        raise LatentctlError(f"--device {spec} cannot be shared by {world_size} processes",
                             hint="with torchrun pass --device cuda (each process takes the GPU of its local rank; "
                                  "CUDA_VISIBLE_DEVICES picks the GPUs) or --device cpu")
    use_cuda = spec == "cuda" or (spec == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise LatentctlError("CUDA was asked for but no CUDA device is available",
                             hint="use --device cpu, or install a CUDA build of PyTorch")
    import torch.distributed as dist

    dist.init_process_group("nccl" if use_cuda else "gloo")
    group = Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ["LOCAL_RANK"]))
    _watcher.start(group.rank)
    if not use_cuda:
        return group, torch.device("cpu")
    if group.local_rank >= torch.cuda.device_count():
        raise LatentctlError(f"process {group.local_rank} of this machine has no GPU of its own: "
                             f"{torch.cuda.device_count()} are visible",
                             hint="start at most one process per GPU (--nproc, or torchrun's --nproc-per-node)")
    device = torch.device("cuda", group.local_rank)
    torch.cuda.set_device(device)
    return group, device


def finish() -> None:
    """Leave the process group after a run that ended normally (finished, or stopped by Ctrl-C)."""
    _watcher.stop()
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def report_failure(error: BaseException) -> bool:
    """Tell the other ranks that this one failed with ``error``; return whether this rank should report it.

    Exactly one rank reports a failure: rank 0 reports its own; another rank reports its own unless rank 0
    fails too within a moment (a failure every rank meets at once, such as a diverged loss, which rank 0
    reports). A rank whose collective broke because another rank had already failed and left stays
    silent. The process group is not destroyed: with a collective left hanging that could block; the
    process exits and torchrun stops the others.
    """
    import torch.distributed as dist

    rank = environment_rank()
    if not (dist.is_available() and dist.is_initialized()):
        # before the group exists every rank runs the same command line on the same checks: rank 0 says
        # what failed, unless it is not one of those checks (then each rank says its own)
        return rank == 0 or not isinstance(error, LatentctlError)
    _watcher.stop()
    found_here = isinstance(error, (LatentctlError, OSError, KeyboardInterrupt))
    try:
        store = _store()
        if not found_here and store.check([_failure_key()]):
            return False
        store.set(_failure_key(rank), "1")
        store.set(_failure_key(), str(rank))
        if rank == 0:
            return True
        deadline = time.monotonic() + REPORT_WAIT_SECONDS
        while time.monotonic() < deadline:
            if store.check([_failure_key(0)]):
                return False
            time.sleep(0.05)
    except Exception:  # the store went away with torchrun's agent: say what happened here
        return True
    return True


def _failure_key(rank: int | None = None) -> str:
    """A store key that says a rank failed (any rank, when ``rank`` is None), fresh for each restart."""
    key = f"latentctl/failed/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
    return key if rank is None else f"{key}/rank{rank}"


def _store() -> Any:
    import torch.distributed as dist

    return dist.distributed_c10d._get_default_store()  # the rendezvous store every rank already reaches


class _Watcher:
    """A thread that ends this process when another rank failed and this one does not notice by itself.

    A rank blocked in an NCCL collective whose peer died would otherwise wait for the collective's timeout
    (ten minutes or more); on one machine torchrun stops it sooner, on several it cannot."""

    def __init__(self) -> None:
        self._stopped = threading.Event()

    def start(self, rank: int) -> None:
        self._stopped = threading.Event()  # one per thread: a stopped watcher never wakes up again
        threading.Thread(target=self._watch, args=(rank, _store(), self._stopped), name="latentctl-watch",
                         daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()

    @staticmethod
    def _watch(rank: int, store: Any, stopped: threading.Event) -> None:
        failed_since = None
        while not stopped.wait(WATCH_SECONDS):
            try:
                failed = store.check([_failure_key()]) and store.get(_failure_key()).decode() != str(rank)
            except Exception:  # the store is gone: torchrun is stopping everything anyway
                return
            if failed and failed_since is None:
                failed_since = time.monotonic()
            if failed_since is not None and time.monotonic() - failed_since > LEAVE_AFTER_SECONDS:
                os._exit(1)  # the main thread is stuck in a collective: nothing else can end it


_watcher = _Watcher()


# ------------------------------------------------------------------------------------------------ launching

def launch(argv: Sequence[str], processes: int, module: str = "latentctl") -> int:
    """Run ``python -m MODULE ARGV`` in ``processes`` processes on this machine under torchrun (``--nproc``).

    Returns the exit status to leave with: 0 when all succeeded; otherwise that of the lowest rank that
    failed (1, or 130 after Ctrl-C), or 130 when Ctrl-C reached torchrun, which then stops the processes
    with SIGINT, so each saves its checkpoint as a single process would. This is torchrun's own entry point
    (``torchrun --standalone``) called in this process, which turns its errors into exit statuses without
    the traceback its console script prints.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    with _torchrun_process(processes):
        try:
            torchrun(["--standalone", f"--nproc-per-node={processes}", "-m", module, *argv])
        except ChildFailedError as failed:
            codes = [failed.failures[rank].exitcode for rank in sorted(failed.failures)]
            return next((code for code in codes if code > 0), 1)
        except SignalException:
            return EXIT_INTERRUPTED
    return 0


@contextmanager
def _torchrun_process(processes: int) -> Iterator[None]:
    """Share the cores between the processes, keep torchrun's log lines quiet, and give back the signal
    handlers it takes over."""
    handlers = {name: signal.getsignal(getattr(signal, name)) for name in TORCHRUN_SIGNALS if hasattr(signal, name)}
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads is None:  # torchrun would set 1 per process, with a warning
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // processes))
    # the processes report their own failures; torchrun's summary of them would say it again, less clearly
    loggers = [logging.getLogger(name) for name in list(logging.Logger.manager.loggerDict)
               if name.startswith("torch.distributed")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        if threads is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        for name, handler in handlers.items():
            signal.signal(getattr(signal, name), handler)
