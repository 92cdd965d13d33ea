"""Memory and time of a training step of a tower with and without gradient checkpointing.

    python tools/benchmark_grad_checkpointing.py [--tower vit|bert] [--device cpu|cuda]
                                                 [--batch-size B] [--steps N]

Builds the tower twice with the same weights (``grad_checkpointing`` off and on) and runs
forward + backward steps of the two alternately. Prints, per setting, the memory the forward
pass leaves allocated for the backward pass, the peak memory of a step (CUDA only) and the
fastest step time, and the time ratio on / off. Memory on the CPU is what glibc's malloc has
handed out (``mallinfo2``, Linux); on CUDA torch's allocator statistics.
"""
import argparse
import ctypes
import time

import torch

import vlkd.vlp  # noqa: F401  (registers the encoders)
from vlkd.registry import MODELS

TOWERS = {
    # a ViT-S-like depth and width on 64 px images (65 tokens)
    'vit': dict(type='ViTPatchEncoder', vision_cfg=dict(image_size=64, patch_size=8,
                                                        width=256, layers=6, head_width=64)),
    'bert': dict(type='BertTextEncoder', max_length=64, bert_cfg=dict(
        hidden_size=256, num_hidden_layers=6, num_attention_heads=4, intermediate_size=1024,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)),
}


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks',
        'fordblks', 'keepcost')]


def allocated_bytes(device: torch.device) -> int:
    """Bytes currently allocated: torch's CUDA allocator, or glibc malloc (heap + mmap)."""
    if device.type == 'cuda':
        return torch.cuda.memory_allocated(device)
    try:
        libc = ctypes.CDLL('libc.so.6')
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError) as err:
        raise SystemExit('CPU memory is read with glibc mallinfo2 (Linux, glibc >= 2.33); '
                         f'not available here ({err}). Use --device cuda.') from err
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd


def inputs_of(tower: str, model, batch_size: int, device: torch.device) -> dict:
    generator = torch.Generator().manual_seed(0)
    if tower == 'vit':
        size = model.image_size
        return dict(images=torch.randn(batch_size, 3, *size, generator=generator).to(device))
    ids = torch.randint(1000, model.tokenizer.vocab_size, (batch_size, 64), generator=generator)
    return dict(input_ids=ids.to(device),
                attention_mask=torch.ones_like(ids, dtype=torch.bool).to(device))


def step(model, inputs: dict, device: torch.device):
    """(bytes held after the forward pass, peak bytes of the step or None, seconds)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start_bytes, start = allocated_bytes(device), time.perf_counter()
    tokens = model(**inputs).tokens
    held = allocated_bytes(device) - start_bytes
    tokens.float().pow(2).mean().backward()
    peak = None
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - start_bytes
    seconds = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    return held, peak, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--tower', choices=sorted(TOWERS), default='vit')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--steps', type=int, default=10, help='timed steps of each setting')
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    models = {}
    for checkpointing in (False, True):
        models[checkpointing] = MODELS.build(
            {**TOWERS[args.tower], 'grad_checkpointing': checkpointing}).to(device).train()
    models[True].load_state_dict(models[False].state_dict())
    inputs = inputs_of(args.tower, models[False], args.batch_size, device)
    results = {checkpointing: [] for checkpointing in models}
    for index in range(args.steps + 2):  # the first two steps of each warm up
        for checkpointing, model in models.items():
            measured = step(model, inputs, device)
            if index >= 2:
                results[checkpointing].append(measured)
    mib = 2 ** 20
    print(f'{args.tower}, batch {args.batch_size}, {device}, '
          f'{torch.get_num_threads()} threads, {args.steps} alternating steps each')
    for checkpointing, runs in results.items():
        held = max(run[0] for run in runs) / mib
        peak = '' if runs[0][1] is None else \
            f', step peak {max(run[1] for run in runs) / mib:.0f} MiB'
        print(f'grad_checkpointing={checkpointing!s:5}: held for backward {held:.0f} MiB'
              f'{peak}, fastest step {min(run[2] for run in runs):.3f} s')
    ratio = min(run[2] for run in results[True]) / min(run[2] for run in results[False])
    print(f'time on / off: {ratio:.2f}')


if __name__ == '__main__':
    main()
