"""ZeroShotCropAccuracy: top-1 accuracy over all, base and novel classes, by hand."""
import math

import mmcv
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

from vlkd.registry import METRICS
from vlkd.vlp.metrics import split_accuracy, teacher_crop_accuracy

CLASSES = ('circle', 'square', 'star', 'heart')
NOVEL = ('star', 'heart')


def test_split_accuracy_by_hand():
    gt = [0, 1, 1, 2, 3, 3]      # base, base, base, novel, novel, novel
    pred = [0, 2, 1, 2, 0, 3]    # right, wrong, right, right, wrong (a base name), right
    result = split_accuracy(pred, gt, CLASSES, NOVEL)
    assert result['top1'] == pytest.approx(100 * 4 / 6)
    assert result['top1_base'] == pytest.approx(100 * 2 / 3)
    assert result['top1_novel'] == pytest.approx(100 * 2 / 3)
    assert math.isnan(split_accuracy([0], [0], CLASSES, NOVEL)['top1_novel'])
    with pytest.raises(ValueError, match='not among the classes'):
        split_accuracy(pred, gt, CLASSES, ['hexagon'])


def test_metric_reads_predictions_and_class_names_from_the_dataset():
    init_default_scope('vlkd')
    metric = METRICS.build(dict(type='ZeroShotCropAccuracy', novel_classes=NOVEL))
    metric.dataset_meta = dict(classes=CLASSES)
    samples = [dict(pred_label=torch.tensor(p), gt_label=torch.tensor(g))
               for p, g in [(0, 0), (1, 0), (2, 2), (3, 2)]]
    metric.process({}, samples[:3])
    metric.process({}, samples[3:])
    result = metric.evaluate(size=4)
    assert result == pytest.approx({'zero_shot/top1': 50.0, 'zero_shot/top1_base': 50.0,
                                    'zero_shot/top1_novel': 50.0})
    metric.dataset_meta = dict(classes=CLASSES[:2])
    metric.process({}, samples)
    with pytest.raises(ValueError, match='only 2 classes'):
        metric.evaluate(size=4)


class ColourTeacher:
    """A stand-in teacher that 'recognises' the class by the crop's mean red value."""

    def encode_class_names(self, names, templates=None):
        return torch.eye(len(names))

    def encode_regions(self, images, boxes, scales=(1.0,)):
        out = []
        for image, image_boxes in zip(images, boxes):
            rows = []
            for x1, y1, x2, y2 in image_boxes.round().long().tolist():
                red = image[0, y1:y2, x1:x2].mean().item()
                rows.append(torch.nn.functional.one_hot(torch.tensor(int(red) % 4), 4))
            out.append(torch.stack(rows).float())
        return out


def test_teacher_crop_accuracy_groups_boxes_by_image(tmp_path):
    # two images; a crop's class is (its red value) % 4: boxes read 0, 1 and 3
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, :4, 0], image[:, 4:, 0] = 4, 1    # RGB red channel
    mmcv.imwrite(image[..., ::-1], str(tmp_path / 'a.png'))
    image[:, :4, 0] = 3
    mmcv.imwrite(image[..., ::-1], str(tmp_path / 'b.png'))

    class Crops:
        metainfo = dict(classes=CLASSES)
        items = [(str(tmp_path / 'a.png'), [0, 0, 4, 8], 0),   # red 4 -> 0: right
                 (str(tmp_path / 'a.png'), [4, 0, 8, 8], 1),   # red 1 -> 1: right
                 (str(tmp_path / 'b.png'), [0, 0, 4, 8], 2)]   # red 3 -> 3: wrong (novel)

        def __len__(self):
            return len(self.items)

        def get_data_info(self, i):
            path, box, label = self.items[i]
            return dict(img_path=path, crop_bbox=box, gt_label=label)

    result = teacher_crop_accuracy(ColourTeacher(), Crops(), NOVEL)
    assert result['top1_base'] == 100.0 and result['top1_novel'] == 0.0
