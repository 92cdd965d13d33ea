"""Timing, peak memory and the machine's matmul throughput, for benchmarks run in one process.

Times are wall-clock seconds, synchronised with the GPU when the device is CUDA. Peak memory
is in bytes:

- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus the
  memory allocated before the call (tensors the call allocates at its peak).
- CPU: the growth of the process's peak resident set size (``VmHWM`` in
  ``/proc/self/status``, reset by writing 5 to ``/proc/self/clear_refs``) above the resident
  size before the call. It counts every allocation the call touches (torch, numpy, POT,
  Python objects), not only tensors. Free heap pages are handed back to the system first
  (``malloc_trim``), so that the call cannot reuse pages left resident by earlier calls and
  look smaller than it is; pages that stay resident for good (libraries' lazy buffers) are
  counted only by the first call, so measure a call after a warm-up. Page granularity and
  the allocator's own bookkeeping make figures under about a MiB approximate. ``None`` where
  Linux does not allow the reset.
"""
import ctypes
import os
import platform
import time
from typing import Callable, Optional, Tuple

import torch

MIB = 2 ** 20


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed(fn: Callable, device: torch.device) -> float:
    """Wall time (s) of one call of ``fn``."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def best_times(ours: Callable, theirs: Callable, repeats: int, device: torch.device,
               min_seconds: float = 2.0) -> Tuple[float, float]:
    """Best wall times (s) of ``ours()`` and ``theirs()`` over alternating runs after one
    warm-up each: at least ``repeats`` rounds, more (up to ``20 * repeats``) until the rounds
    took ``min_seconds``, so that fast calls get enough tries. Alternating exposes both to
    the same load of a shared machine, and the best run is the least disturbed by it."""
    ours(), theirs()
    runs, spent = [], 0.0
    while len(runs) < repeats or (spent < min_seconds and len(runs) < 20 * repeats):
        runs.append((timed(ours, device), timed(theirs, device)))
        spent += sum(runs[-1])
    return min(r[0] for r in runs), min(r[1] for r in runs)


def _return_freed_memory() -> None:
    """Have glibc hand the free pages of its heaps back to the system (``malloc_trim``), so
    that a measured call cannot reuse pages left resident by earlier calls; malloc's
    behaviour is not changed. No effect without glibc."""
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _memory_status() -> dict:
    """VmRSS and VmHWM (bytes) of this process."""
    values = {}
    with open('/proc/self/status') as status:
        for line in status:
            key, _, rest = line.partition(':')
            if key in ('VmRSS', 'VmHWM'):
                values[key] = int(rest.split()[0]) * 1024
    return values


def _reset_peak_rss() -> bool:
    try:
        with open('/proc/self/clear_refs', 'w') as clear_refs:
            clear_refs.write('5')
    except OSError:
        return False
    return True


def peak_memory(fn: Callable, device: torch.device) -> Optional[int]:
    """Peak memory (bytes) that one call of ``fn`` adds to what was in use before it (see the
    module docstring for what is counted on each device); ``None`` if it cannot be
    measured."""
    if device.type == 'cuda':
        synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    _return_freed_memory()
    if not _reset_peak_rss():
        return None
    before = _memory_status()['VmRSS']
    fn()
    return max(0, _memory_status()['VmHWM'] - before)


def matmul_throughput(device: torch.device, size: int, repeats: int) -> float:
    """FLOP/s of the fastest of ``repeats`` float32 ``torch.mm`` of two (size, size)
    matrices (``2 size^3`` FLOPs each), after one warm-up."""
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, generator=g, device=device)
    b = torch.randn(size, size, generator=g, device=device)
    torch.mm(a, b)
    best = min(timed(lambda: torch.mm(a, b), device) for _ in range(repeats))
    return 2 * size ** 3 / best


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform knows."""
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            for line in cpuinfo:
                if line.startswith('model name'):
                    return line.partition(':')[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(device: torch.device) -> str:
    """One line: the device, the CPU, cores, torch threads, torch / CUDA versions."""
    cpu = (f'CPU {cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch '
           'threads')
    if device.type == 'cuda':
        properties = torch.cuda.get_device_properties(device)
        return (f'{torch.cuda.get_device_name(device)} ({properties.total_memory / 2 ** 30:.0f} '
                f'GiB), CUDA {torch.version.cuda}; {cpu}; torch {torch.__version__}')
    return f'{cpu}; torch {torch.__version__}'
