"""What encoders share: a tower that can be frozen, and loading its weights from a file."""
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from vlkd.checkpoint import resolve_checkpoint


class TowerEncoder(nn.Module):
    """Base class of the encoders: submodules named by :meth:`freeze` stay frozen.

    A frozen module has ``requires_grad=False`` on every parameter and stays in eval mode
    (dropout off, batch-norm statistics fixed) whatever ``train()`` is called with.
    """

    def __init__(self):
        super().__init__()
        self._frozen_names: list = []

    def freeze(self, name: str) -> None:
        """Freeze the submodule ``name`` (an attribute path such as ``'vit'``)."""
        module = self.get_submodule(name)
        module.requires_grad_(False)
        module.eval()
        self._frozen_names.append(name)

    @property
    def frozen(self) -> bool:
        return bool(self._frozen_names)

    def train(self, mode: bool = True):
        super().train(mode)
        for name in self._frozen_names:
            self.get_submodule(name).eval()
        return self


def _read_state_dict(path: Path) -> dict:
    try:
        if path.suffix == '.safetensors':
            from safetensors.torch import load_file
            return load_file(str(path))
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:
        raise ValueError(f'Cannot read weights from {path} ({type(err).__name__}: {err}). '
                         'Give a torch state-dict file (.pt/.pth), an mmengine checkpoint or '
                         'a .safetensors file.') from err
    if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
        state = state['state_dict']  # mmengine / open_clip training checkpoints
    if not isinstance(state, dict):
        raise ValueError(f'{path} holds a {type(state).__name__}, not a state dict.')
    return state


def load_weights(module: nn.Module, path, prefix: str = '',
                 ignore: Sequence[str] = ()) -> None:
    """Load the weights of ``module`` from a local file, strictly.

    Args:
        path: a weight file, an mmengine work_dir or ``zoo://NAME``
            (:func:`vlkd.checkpoint.resolve_checkpoint`).
        prefix: only keys starting with it are used, without it (``'visual.'`` takes the
            image tower out of a whole open_clip model; ``'clip.visual.'`` out of a vlkd
            ``CLIPPretrainer`` checkpoint).
        ignore: key prefixes (after ``prefix`` is removed) dropped from the file, e.g. a
            classifier head the encoder does not have.
    """
    path = resolve_checkpoint(path)
    state = _read_state_dict(path)
    selected = {key[len(prefix):]: value for key, value in state.items()
                if key.startswith(prefix) and not key[len(prefix):].startswith(tuple(ignore))}
    if not selected:
        raise ValueError(f'No weights with prefix {prefix!r} in {path}; its keys start with '
                         f'{sorted({k.split(".")[0] for k in state})[:8]}. Set the prefix of '
                         'the tower inside that file.')
    try:
        missing, unexpected = module.load_state_dict(selected, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise ValueError(f'The weights in {path} (prefix {prefix!r}) do not fit the '
                         f'{type(module).__name__} built from the config: {err}') from err
    if missing or unexpected:
        raise ValueError(f'The weights in {path} (prefix {prefix!r}) do not fit the '
                         f'{type(module).__name__} built from the config: missing '
                         f'{missing[:5]}{"..." if len(missing) > 5 else ""}, unexpected '
                         f'{unexpected[:5]}{"..." if len(unexpected) > 5 else ""}.')
