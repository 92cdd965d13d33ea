"""Turn registry build failures into messages that name the config entry and the fix.

Two mistakes surface deep inside ``mmengine.registry.build_from_cfg``: an unregistered
``type`` (a KeyError) and an argument the class does not take (a TypeError). The frame of
``build_from_cfg`` that failed still holds the dict, the registry and the class, so the
message can say which config entry is wrong and offer the closest valid names.
"""
import inspect
import re
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Iterator, List, Optional

from mmengine.config import Config
from mmengine.registry import OPTIMIZERS, Registry
from mmengine.registry.build_functions import build_from_cfg

from .config_check import ConfigError, suggest, did_you_mean

UNREGISTERED = re.compile(r'^(\S+) is not in the (\S*)::(.+?) registry')
UNEXPECTED_ARGUMENT = re.compile(r"(\w+)(?:\.__init__)?\(\) got an unexpected keyword "
                                 r"argument '(\w+)'")
MISSING_ARGUMENTS = re.compile(r'missing \d+ required (?:positional|keyword-only) '
                               r'arguments?: (.+)$')


@contextmanager
def explain_build_errors(cfg: Config) -> Iterator[None]:
    """Re-raise registry build errors inside the block as ConfigError (chained).

    Errors that are not about the config pass through unchanged.
    """
    try:
        yield
    except (KeyError, TypeError) as err:
        if isinstance(err, KeyError):
            message = _explain_unregistered(err, cfg)
        else:
            message = _explain_bad_argument(err, cfg)
        if message is None:
            raise
        raise ConfigError(message) from err


def check_optimizer_type(cfg: Config) -> None:
    """Raise ConfigError if ``optim_wrapper.optimizer.type`` is not registered.

    mmengine's optimizer constructor reports an unknown type only as 'None is not a callable
    object', so it is checked before the Runner gets there.
    """
    optimizer = (cfg.get('optim_wrapper') or {}).get('optimizer')
    if not isinstance(optimizer, dict) or not isinstance(optimizer.get('type'), str):
        return
    with OPTIMIZERS.switch_scope_and_registry(None) as registry:
        if registry.get(optimizer['type']) is None:
            raise ConfigError(_unregistered_message(optimizer['type'], registry, cfg))


def _explain_unregistered(err: KeyError, cfg: Config) -> Optional[str]:
    match = UNREGISTERED.match(str(err.args[0]) if err.args else '')
    if match is None:
        return None
    frame = _innermost_build_frame(err.__traceback__)
    registry = frame.f_locals.get('registry') if frame is not None else None
    if not isinstance(registry, Registry):
        return None
    return _unregistered_message(match.group(1), registry, cfg)


def _unregistered_message(type_name: str, registry: Registry, cfg: Config) -> str:
    suggestions = _closest_registered(type_name, registry)
    paths = config_paths(cfg, lambda node: node.get('type') == type_name)
    where = f' (at {", ".join(paths)})' if paths else ''
    hint = did_you_mean(suggestions) if suggestions else (
        '; check the spelling, write the scope of a type from another package '
        "(mmdet.FasterRCNN), or import the module that registers it with "
        "custom_imports = dict(imports=['my_module']).")
    return (f'unknown type {type_name!r}{where}: not in the {registry.scope} {registry.name} '
            f'registry{hint}')


def _explain_bad_argument(err: TypeError, cfg: Config) -> Optional[str]:
    text = str(err)
    frame = _innermost_build_frame(err.__traceback__)
    unexpected = UNEXPECTED_ARGUMENT.search(text)
    if unexpected is not None:
        raised_by, key = unexpected.groups()
        if frame is not None and key in frame.f_locals.get('args', {}):
            target = frame.f_locals.get('obj_cls')
            type_name = frame.f_locals['cfg'].get('type')
            paths = config_paths(cfg, lambda node: key in node and node.get('type') == type_name)
        else:  # built by a direct call, e.g. the Runner's IterBasedTrainLoop(**train_cfg)
            target = _lookup_class(raised_by, err.__traceback__)
            paths = config_paths(cfg, lambda node: key in node)
            if not paths:
                return None
        name = getattr(target, '__name__', raised_by)
        where = f'{", ".join(paths)}: ' if paths else ''
        accepted = accepted_arguments(target) if target is not None else []
        suggestions = suggest(key, accepted)
        hint = did_you_mean(suggestions) if suggestions else (
            f' ({name} takes: {", ".join(accepted)})' if accepted else '')
        return f'{where}{name} got the unknown argument {key!r}{hint}'
    missing = MISSING_ARGUMENTS.search(text)
    if missing is not None and frame is not None:
        target = frame.f_locals.get('obj_cls')
        names = re.findall(r"'(\w+)'", missing.group(1))
        given = frame.f_locals.get('args', {})
        # only when the class being built lacks them (not some call inside its __init__)
        if target is None or not names or any(
                name in given or name not in accepted_arguments(target) for name in names):
            return None
        type_name = frame.f_locals['cfg'].get('type')
        paths = config_paths(cfg, lambda node: node.get('type') == type_name)
        where = f'{", ".join(paths)}: ' if paths else ''
        needed = ', '.join(repr(name) for name in names)
        return f'{where}{target.__name__} needs the argument(s) {needed}, which the config ' \
               'does not give.'
    return None


def _innermost_build_frame(traceback: Optional[TracebackType]) -> Optional[FrameType]:
    """The deepest ``build_from_cfg`` call in the traceback (the dict that failed)."""
    found = None
    while traceback is not None:
        if traceback.tb_frame.f_code is build_from_cfg.__code__:
            found = traceback.tb_frame
        traceback = traceback.tb_next
    return found


def _lookup_class(name: str, traceback: Optional[TracebackType]):
    """The class called ``name`` as seen from the frames of the traceback, innermost first."""
    frames = []
    while traceback is not None:
        frames.append(traceback.tb_frame)
        traceback = traceback.tb_next
    for frame in reversed(frames):
        for namespace in (frame.f_locals, frame.f_globals):
            candidate = namespace.get(name)
            if inspect.isclass(candidate):
                return candidate
    return None


def accepted_arguments(target) -> List[str]:
    """Keyword arguments a class (its ``__init__`` and the bases it forwards to) accepts."""
    if not inspect.isclass(target):
        return _named_parameters(target)[0]
    names: List[str] = []
    for klass in target.__mro__:
        if klass is object or '__init__' not in vars(klass):
            continue
        own, forwards = _named_parameters(klass.__init__)
        names += [name for name in own if name != 'self' and name not in names]
        if not forwards:
            break
    return names


def _named_parameters(function):
    """(parameter names, whether it takes **kwargs) of a callable."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return [], False
    names = [p.name for p in parameters
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return names, any(p.kind == p.VAR_KEYWORD for p in parameters)


def _closest_registered(type_name: str, registry: Registry) -> List[str]:
    """Closest registered names in the registry's whole family (mmengine, vlkd, mmdet, ...).

    Names reachable from ``registry`` (its own and its ancestors') are given bare, the others
    with their scope prefix (``mmdet.FasterRCNN``).
    """
    reachable = set()
    node = registry
    while node is not None:
        reachable.add(id(node))
        node = node.parent
    root = registry
    while root.parent is not None:
        root = root.parent
    spelled = {}
    # reachable registries first, so that a name they share with another package stays bare
    for member in sorted(_family(root), key=lambda member: id(member) not in reachable):
        try:
            member.import_from_location()
        except Exception:  # noqa: BLE001  (a package that fails to import offers no names)
            pass
        for name in member.module_dict:
            shown = name if id(member) in reachable else f'{member.scope}.{name}'
            spelled.setdefault(name, shown)
    bare = type_name.split('.')[-1]
    return [spelled[name] for name in suggest(bare, spelled)]


def _family(registry: Registry) -> List[Registry]:
    members = [registry]
    for child in registry.children.values():
        members += _family(child)
    return members


def config_paths(cfg, predicate) -> List[str]:
    """Paths (``model.roi_head.bbox_head``, ``pipeline[2]``) of the dicts that satisfy
    ``predicate``, in the order they appear."""
    found = []

    def visit(node, path):
        if isinstance(node, dict):
            if path and predicate(node):
                found.append(path)
            for key, value in node.items():
                visit(value, f'{path}.{key}' if path else str(key))
        elif isinstance(node, (list, tuple)):
            for index, value in enumerate(node):
                visit(value, f'{path}[{index}]')

    visit(cfg.to_dict() if isinstance(cfg, Config) else cfg, '')
    return found
