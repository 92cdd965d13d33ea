"""Run a test function in several CPU processes joined by a gloo process group."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _bootstrap(rank, world_size, port, worker, args, out):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        out[rank] = worker(rank, world_size, *args)
    finally:
        dist.destroy_process_group()


def run_in_processes(worker, *args, world_size: int = 2) -> list:
    """``[worker(rank, world_size, *args) for each rank]``, each in its own process.

    ``worker`` must be a module-level function (it is pickled by name) returning picklable
    values.
    """
    out = mp.Manager().dict()
    mp.spawn(_bootstrap, nprocs=world_size, join=True,
             args=(world_size, _free_port(), worker, args, out))
    return [out[rank] for rank in range(world_size)]
