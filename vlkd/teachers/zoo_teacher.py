"""Teachers of model-zoo entries: ``Teacher.from_zoo(NAME)``, or in a config
``teacher=dict(type='ZooTeacher', name=NAME)``.

:mod:`vlkd.zoo` returns the entry's file, downloaded if needed and checked against the
manifest's sha256 (``VLKD_OFFLINE=1``: the cache only). The entry's ``load`` mapping then
says which adapter builds the teacher:

- ``library: open_clip``: the file holds open_clip weights (.pt, .bin, .safetensors) of the
  architecture ``load.model_name`` (or the model config ``load.model_cfg``):
  :class:`OpenCLIPTeacher`. With ``format: torchscript`` it is one of OpenAI's TorchScript
  archives: :class:`OpenAICLIPTeacher` (``load.model_name``, if given, must match it).
- ``library: transformers``: a .tar / .tar.gz archive of a CLIPModel directory
  (``save_pretrained`` output with the tokenizer files), unpacked once beside the cached
  file: :class:`HFCLIPTeacher`.
- ``library: vlkd``, or no ``load`` but ``format: mmengine-checkpoint`` (what
  ``tools/publish_model.py`` writes): a vlkd pretraining checkpoint: ``VLKDTeacher``.
"""
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import open_clip
from filelock import FileLock

from vlkd import zoo
from vlkd.registry import MODELS
from .base import Teacher
from .hf_clip_teacher import HFCLIPTeacher
from .open_clip_teacher import OpenAICLIPTeacher, OpenCLIPTeacher
from .templates import Templates
from .vlkd_teacher import VLKDTeacher

# written into an unpacked archive's folder: the sha256 of the archive it came from
_UNPACKED_MARK = '.vlkd-unpacked-from'


def _check_open_clip(entry: zoo.ZooEntry) -> None:
    load = entry.load
    where = f'{entry.source}, entry {entry.name!r}'
    if entry.format != 'torchscript' \
            and (load.get('model_name') is None) == (load.get('model_cfg') is None):
        raise zoo.ManifestError(f'{where}: an open_clip entry needs exactly one of '
                                'load.model_name (an open_clip architecture) and '
                                'load.model_cfg (a model config).')
    name = load.get('model_name')
    if name is not None and name not in open_clip.list_models():
        raise zoo.ManifestError(f'{where}: load.model_name {name!r} is not an open_clip '
                                'architecture (see open_clip.list_models()).')


def _open_clip(entry: zoo.ZooEntry, path: Path, **kwargs) -> Teacher:
    load = entry.load
    if entry.format == 'torchscript':
        return OpenAICLIPTeacher(str(path), model_name=load.get('model_name'), **kwargs)
    return OpenCLIPTeacher(model_name=load.get('model_name'), model_cfg=load.get('model_cfg'),
                           pretrained=str(path), **kwargs)


def _transformers(entry: zoo.ZooEntry, path: Path, **kwargs) -> Teacher:
    return HFCLIPTeacher(model_dir=str(unpack_model_dir(entry, path)), **kwargs)


def _vlkd(entry: zoo.ZooEntry, path: Path, **kwargs) -> Teacher:
    return VLKDTeacher(str(path), **kwargs)


def _no_check(entry: zoo.ZooEntry) -> None:
    pass


# how each `load.library` becomes a teacher: (check of the entry, builder from the file)
LOADERS: Dict[str, Tuple[Callable[[zoo.ZooEntry], None], Callable[..., Teacher]]] = {
    'open_clip': (_check_open_clip, _open_clip),
    'transformers': (_no_check, _transformers),
    'vlkd': (_no_check, _vlkd)}


def teacher_library(entry: zoo.ZooEntry) -> str:
    """The ``load.library`` of a zoo entry that can build a teacher, checked without
    downloading anything; ManifestError if the entry cannot build one."""
    library = entry.load.get('library')
    if library is None and entry.format == 'mmengine-checkpoint':
        library = 'vlkd'
    if library not in LOADERS:
        raise zoo.ManifestError(
            f'{entry.source}, entry {entry.name!r}: load.library is {library!r}; a teacher '
            f'needs one of {sorted(LOADERS)} (see vlkd.teachers.zoo_teacher).')
    check, _ = LOADERS[library]
    check(entry)
    return library


def unpack_model_dir(entry: zoo.ZooEntry, archive: Path) -> Path:
    """The model directory inside ``archive`` (a verified .tar / .tar.gz), unpacked once
    into ``<archive>.unpacked/`` next to it; unpacked again if the archive changed."""
    if not tarfile.is_tarfile(archive):
        raise zoo.ManifestError(
            f'{entry.name}: {archive} is not a tar archive. A transformers zoo entry is a '
            '.tar or .tar.gz of a CLIPModel directory (save_pretrained output with the '
            'tokenizer files).')
    digest = entry.sha256 or zoo.sha256_file(archive)
    target = archive.with_name(archive.name + '.unpacked')
    with FileLock(str(target) + '.lock'):
        mark = target / _UNPACKED_MARK
        if not (mark.is_file() and mark.read_text().strip() == digest):
            staging = Path(tempfile.mkdtemp(dir=archive.parent, prefix='.unpacking-'))
            try:
                with tarfile.open(archive) as tar:
                    tar.extractall(staging, filter='data')  # nothing may land outside
            except tarfile.FilterError as err:
                shutil.rmtree(staging)
                raise zoo.ManifestError(f'{entry.name}: {archive} holds an unsafe member '
                                        f'({err}); it was not unpacked.') from err
            (staging / _UNPACKED_MARK).write_text(digest + '\n')
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
    configs = sorted(p.parent for p in target.rglob('config.json'))
    if len(configs) != 1:
        raise zoo.ManifestError(f'{entry.name}: {archive} must hold exactly one model '
                                f'directory with a config.json, found {len(configs)}.')
    return configs[0]


def teacher_from_zoo(name: str, templates: Optional[Templates] = None,
                     region_batch_size: int = 256, manifest=None,
                     allow_unverified: bool = False, offline: Optional[bool] = None) -> Teacher:
    """The teacher of zoo entry ``name`` (``NAME`` or ``zoo://NAME``).

    Args:
        templates: default class-name templates; None keeps the adapter's default.
        region_batch_size: crops per forward pass.
        manifest, allow_unverified, offline: as :func:`vlkd.zoo.download`.
    """
    entry = zoo.get_entry(name, manifest)
    _, build = LOADERS[teacher_library(entry)]
    path = zoo.download(entry.name, manifest=manifest, allow_unverified=allow_unverified,
                        offline=offline)
    kwargs = dict(region_batch_size=region_batch_size)
    if templates is not None:
        kwargs['templates'] = templates
    return build(entry, path, **kwargs)


def ZooTeacher(name: str, templates: Optional[Templates] = None, region_batch_size: int = 256,
               allow_unverified: bool = False) -> Teacher:
    """Config entry point of :func:`teacher_from_zoo`: ``dict(type='ZooTeacher', name=...)``."""
    return teacher_from_zoo(name, templates=templates, region_batch_size=region_batch_size,
                            allow_unverified=allow_unverified)


MODELS.register_module(name='ZooTeacher', module=ZooTeacher)
