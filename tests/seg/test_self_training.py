"""Self-training: relabelling rule against a numpy loop, inverse label tables, and
tools/relabel_seg.py writing masks the dataset reads back."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import save_checkpoint
from PIL import Image

import vlkd  # noqa: F401
from vlkd.datasets import ADE20KOpenVocabDataset, COCOStuffZeroShotDataset
from vlkd.registry import MODELS
from vlkd.seg.self_training import relabel, stored_values

ROOT = Path(__file__).resolve().parents[2]


def test_relabel_matches_loop():
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(4, 5, 6, generator=g).softmax(0)
    gt = torch.randint(0, 4, (5, 6), generator=g)
    gt[torch.rand(5, 6, generator=g) < 0.5] = 255
    new = relabel(gt, probs, pseudo_classes=[1, 3], score_thr=0.27)
    p, labels = probs.numpy(), gt.numpy()
    changed = 0
    for y in range(5):
        for x in range(6):
            c = p[:, y, x].argmax()
            if labels[y, x] == 255 and c in (1, 3) and p[c, y, x] >= 0.27:
                assert new[y, x] == c
                changed += 1
            else:
                assert new[y, x] == labels[y, x]
    assert changed > 0


def test_stored_values_invert_the_label_tables(tmp_path):
    ade = ADE20KOpenVocabDataset(data_root=str(tmp_path), lazy_init=True,
                                 data_prefix=dict(img_path='', seg_map_path=''),
                                 pipeline=[dict(type='LoadSegAnnotations')])
    table = ade.label_table()
    inverse = stored_values(table)
    assert inverse[0] == 1 and inverse[149] == 150 and table[inverse[255]] == 255
    coco = COCOStuffZeroShotDataset(data_root=str(tmp_path), lazy_init=True,
                                    ignore_classes=['tree'],
                                    data_prefix=dict(img_path='', seg_map_path=''),
                                    pipeline=[dict(type='LoadSegAnnotations')])
    tree = coco.metainfo['classes'].index('tree')
    tree_value = 168  # stuffthingmaps value of 'tree' (COCO id 169)
    assert coco.label_table(apply_ignore=False)[tree_value] == tree
    assert coco.label_table()[tree_value] == 255  # ignored for zero-shot training
    table = coco.label_table(apply_ignore=False)  # the stored format: every class
    inverse = stored_values(table)
    for index in range(171):
        assert table[inverse[index]] == index
    assert inverse[tree] == tree_value
    assert inverse[255] == 255


@pytest.mark.slow
def test_relabel_tool_writes_masks_the_dataset_reads(relocate_config, shapes_root, tmp_path):
    cfg = relocate_config(Config.fromfile(
        ROOT / 'configs' / 'seg' / 'deeplabv3plus_r18_gt_shapes.py'))
    config = tmp_path / 'student.py'
    cfg.dump(config)
    model = MODELS.build(cfg.model)
    with torch.no_grad():  # a student that calls every pixel a star (an unseen class)
        head = model.decode_head
        head.background_embedding.zero_()
        head.decoder.conv_seg.weight.zero_()
        head.decoder.conv_seg.bias.copy_(head.train_embeddings[4])
    checkpoint = tmp_path / 'student.pth'
    save_checkpoint(dict(state_dict=model.state_dict(), meta=dict()), str(checkpoint))
    spec = importlib.util.spec_from_file_location('relabel_seg', ROOT / 'tools' / 'relabel_seg.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'masks'
    added = tool.main([str(config), str(checkpoint), '--out-dir', str(out), '--score-thr', '0'])
    originals = sorted((shapes_root / 'semantic' / 'train').glob('*.png'))
    written = sorted(out.glob('*.png'))
    assert [p.name for p in written] == [p.name for p in originals]
    total_unseen = 0
    for original, new in zip(originals, written):
        raw, relabelled = np.array(Image.open(original)), np.array(Image.open(new))
        unseen = np.isin(raw, [4, 9, 10])  # star, heart, crescent (class index + 1)
        total_unseen += unseen.sum()
        np.testing.assert_array_equal(relabelled[~unseen], raw[~unseen])
        assert (relabelled[unseen] == 4).all()  # now all 'star'
    assert added == total_unseen > 0
    with pytest.raises(SystemExit, match='ignores no class'):
        cfg.train_dataloader.dataset.ignore_classes = []
        cfg.dump(config)
        tool.main([str(config), str(checkpoint), '--out-dir', str(out)])
