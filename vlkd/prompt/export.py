"""Learned prompts out of a training checkpoint, as class embeddings for any student.

A checkpoint of a ``configs/prompt`` run holds the training config (``meta.cfg``, written
by mmengine) and the learned parts; :func:`load_prompt_model` rebuilds the model (with its
teacher, from the config or from ``teacher``) and loads them, checking the teacher's
fingerprint and the class names. :func:`export_class_embeddings` embeds a vocabulary under
the learned prompts and writes a class-embedding file
(:func:`vlkd.teachers.embedding_file.save_class_embeddings`) that detectors and segmenters
read in place of template embeddings (DetPro-style learned prompts for ViLD).
``tools/embed_text.py --prompt-checkpoint`` is the command line.
"""
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
from mmengine.config import Config

from vlkd.checkpoint import resolve_checkpoint
from vlkd.registry import MODELS
from vlkd.teachers.embedding_file import save_class_embeddings
from .classifier import PromptClassifier

__all__ = ['load_prompt_model', 'export_class_embeddings']


def load_prompt_model(checkpoint: Union[str, Path],
                      teacher: Optional[dict] = None) -> PromptClassifier:
    """The :class:`PromptClassifier` of a ``configs/prompt`` training checkpoint (a file,
    a work_dir or ``zoo://NAME``), in eval mode.

    Args:
        teacher: a teacher config replacing the one in the training config (e.g. the
            teacher's weights moved); it must be the same teacher (checked).
    """
    path = resolve_checkpoint(checkpoint)
    stored = torch.load(path, map_location='cpu', weights_only=True)
    cfg_text = stored.get('meta', {}).get('cfg') if isinstance(stored, dict) else None
    if not isinstance(cfg_text, str) or 'state_dict' not in stored:
        raise ValueError(f'{path} is not a checkpoint of tools/train.py: it lacks the training '
                         'config (meta.cfg) or the state_dict.')
    cfg = Config.fromstring(cfg_text, file_format='.py')
    model_cfg = cfg.model.to_dict()
    if teacher is not None:
        model_cfg['teacher'] = teacher
    model = MODELS.build({'_scope_': cfg.get('default_scope', 'vlkd'), **model_cfg})
    if not isinstance(model, PromptClassifier):
        raise ValueError(f'{path} holds a {type(model).__name__}, not a vlkd.prompt model '
                         '(CoOp, MaPLe, ...): give a checkpoint of a configs/prompt config.')
    model.load_state_dict(stored['state_dict'])
    return model.eval()


@torch.no_grad()
def export_class_embeddings(model: PromptClassifier, classes: Sequence[str], out,
                            source: str) -> Path:
    """Write the embeddings (C, D) of ``classes`` under ``model``'s learned prompts to the
    class-embedding file ``out``; ``source`` says where they come from."""
    embeddings = model.class_embeddings(list(classes))
    return save_class_embeddings(out, classes, embeddings, model.teacher.fingerprint, source)
