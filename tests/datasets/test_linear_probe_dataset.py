"""LinearProbeDataset: labelled parts joined in order, every sample tagged with its split."""
import pytest
import torch
from mmengine.registry import init_default_scope

from vlkd.datasets.shapes import SHAPES_CLASSES
from vlkd.registry import DATASETS


def crops(root, split):
    return dict(type='ShapesObjectCropDataset', data_root=str(root),
                ann_file=f'annotations/instances_{split}.json',
                data_prefix=dict(img=f'images/{split}/'), test_mode=True,
                pipeline=[dict(type='LoadImageFromFile'), dict(type='CropRegion'),
                          dict(type='Resize', scale=(8, 8), keep_ratio=False),
                          dict(type='PackImageTextInputs')])


def test_parts_in_order_with_their_split(shapes_root):
    init_default_scope('vlkd')
    parts = {name: DATASETS.build(crops(shapes_root, split))
             for name, split in (('train', 'train'), ('val', 'val'), ('test', 'test'))}
    joined = DATASETS.build(dict(type='LinearProbeDataset', train=crops(shapes_root, 'train'),
                                 val=crops(shapes_root, 'val'), test=crops(shapes_root, 'test')))
    assert len(joined) == sum(len(p) for p in parts.values())
    assert joined.metainfo['classes'] == SHAPES_CLASSES
    expected = [(name, part[i]) for name, part in parts.items() for i in range(len(part))]
    for index, (name, item) in enumerate(expected):
        got = joined[index]
        assert got['data_samples'].probe_split == name
        assert torch.equal(got['inputs'], item['inputs'])
        assert int(got['data_samples'].gt_label) == int(item['data_samples'].gt_label)
    with pytest.raises(IndexError):
        joined[len(joined)]
    two = DATASETS.build(dict(type='LinearProbeDataset', train=crops(shapes_root, 'train'),
                              test=crops(shapes_root, 'test')))
    assert {two[i]['data_samples'].probe_split for i in range(len(two))} == {'train', 'test'}
