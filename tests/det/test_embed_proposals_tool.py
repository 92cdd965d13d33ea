"""tools/embed_proposals.py: builds the cache the training hook would, leaves a matching
cache alone, refuses a mismatched one unless --rebuild."""
import importlib.util
from pathlib import Path

import pytest

from vlkd.det.region_cache import RegionCacheMismatch, RegionEmbeddingCache

TOOLS = Path(__file__).resolve().parents[2] / 'tools'


def _tool():
    spec = importlib.util.spec_from_file_location('embed_proposals', TOOLS / 'embed_proposals.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_embed_proposals_of_a_config(tmp_path, vild_config, tiny_teacher_cfg,
                                     vild_text_checkpoint, capsys):
    checkpoint, _ = vild_text_checkpoint
    cfg = vild_config('vild_r18_fpn_shapes.py')
    cache_dir = tmp_path / 'cache'
    cfg.custom_hooks = [dict(cfg.custom_hooks[0], cache_dir=str(cache_dir),
                             teacher=tiny_teacher_cfg,
                             proposal_detector=dict(checkpoint=str(checkpoint)),
                             num_proposals=2)]
    config = tmp_path / 'vild.py'
    cfg.dump(str(config))
    tool = _tool()
    cache = tool.main([str(config), '--batch-size', '3'])
    # the training set after its filters (images with base-class boxes)
    from mmengine.registry import DATASETS
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert sorted(cache.index) == sorted(dataset.get_data_info(i)['img_id']
                                         for i in range(len(dataset)))
    assert cache.key['num_proposals'] == 2 and 'regions of dimension 32' in capsys.readouterr().out
    built = (cache_dir / 'meta.json').stat().st_mtime_ns

    tool.main([str(config)])  # complete and matching: left as it is
    assert (cache_dir / 'meta.json').stat().st_mtime_ns == built

    with pytest.raises(RegionCacheMismatch, match='num_proposals: cache has 2, expected 3'):
        tool.main([str(config), '--cfg-options', 'custom_hooks.0.num_proposals=3'])
    rebuilt = tool.main([str(config), '--rebuild', '--cfg-options',
                         'custom_hooks.0.num_proposals=3'])
    assert rebuilt.key['num_proposals'] == 3
    assert RegionEmbeddingCache(cache_dir).key['num_proposals'] == 3


def test_config_without_region_distillation_is_refused(tmp_path, vild_config):
    config = tmp_path / 'vild_text.py'
    vild_config('vild_text_r18_fpn_shapes.py').dump(str(config))
    with pytest.raises(ValueError, match='no BuildRegionCacheHook'):
        _tool().main([str(config)])
