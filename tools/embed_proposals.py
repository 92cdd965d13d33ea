"""Build the region-embedding cache of a distillation config before training.

    python tools/embed_proposals.py CONFIG [--device cuda] [--batch-size 16] [--rebuild]
                                           [--cfg-options KEY=VALUE ...]

Proposes regions in every training image with the config's proposal detector and embeds them
with its teacher, as the config's BuildRegionCacheHook would at the start of training
(same cache directory, same settings: region source 'crops' or 'dense', scales, proposals
per image). An interrupted build continues where it stopped when run again. A finished
cache that matches the config is left as it is; one made with another teacher, proposal
detector or setting is an error unless --rebuild.
"""
import argparse
import time

import vlkd  # noqa: F401  (installs the mmcv compatibility layer first)
from mmengine.config import DictAction
from mmengine.registry import init_default_scope
from vlkd.det.proposal_embedding import build_region_cache_of_config
from vlkd.engine import load_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='a training config with a BuildRegionCacheHook')
    parser.add_argument('--device', default='cpu', help='where the detector and teacher run')
    parser.add_argument('--batch-size', type=int,
                        help='images per detector forward pass (default: the hook\'s)')
    parser.add_argument('--rebuild', action='store_true',
                        help='rebuild a cache made with another teacher, detector or setting')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config entries')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'vlkd'))
    start = time.perf_counter()
    cache = build_region_cache_of_config(cfg, rebuild=args.rebuild, device=args.device,
                                         batch_size=args.batch_size)
    meta, key = cache.meta, cache.key
    print(f"{cache.cache_dir}: {meta['num_images']} images, {meta['num_regions']} regions of "
          f"dimension {meta['embed_dim']} ({key['region_source']}, scales {key['scales']}); "
          f'{time.perf_counter() - start:.1f} s')
    return cache


if __name__ == '__main__':
    main()
