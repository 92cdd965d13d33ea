"""Few-shot draws, the ImageFolder layout with a class-name file, base / novel halves and
the natural-photo transforms."""
import collections
import random

import mmcv
import numpy as np
import pytest

from vlkd.datasets import (FewShotDataset, ImageFolderDataset, RandomResizedCrop,
                           ResizeShorterSide, base_novel_split, read_class_file,
                           resolve_classes)
from vlkd.datasets.few_shot import few_shot_indices

PIPELINE = [dict(type='LoadImageFromFile'),
            dict(type='PackImageTextInputs', meta_keys=('img_path', 'sample_idx'))]


def make_image_folder(root, counts, split='train', size=(24, 20)):
    """An ImageFolder tree: ``counts`` {folder: number of images}, PNGs of distinct
    colours; returns the class-name file."""
    lines = []
    for k, (folder, count) in enumerate(counts.items()):
        directory = root / split / folder
        directory.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = np.full(size + (3,), (10 * k + i) % 256, dtype=np.uint8)
            mmcv.imwrite(image, str(directory / f'{i:03d}.png'))
        lines.append(folder)
    class_file = root / 'classnames.txt'
    class_file.write_text('# folders and names\n' + '\n'.join(
        f'{folder} {folder.split("_", 1)[-1].replace("_", " ")}' if folder.startswith('n0')
        else folder for folder in lines) + '\n')
    return class_file


def test_class_file_formats(tmp_path):
    path = tmp_path / 'classes.txt'
    path.write_text('n01440764 tench\n\n# comment\nsea_lion\nFaces_easy face\n')
    assert read_class_file(path) == [('n01440764', 'tench'), ('sea_lion', 'sea lion'),
                                     ('Faces_easy', 'face')]
    path.write_text('a x\nb x\n')
    with pytest.raises(ValueError, match="repeats \\['x'\\]"):
        read_class_file(path)
    with pytest.raises(FileNotFoundError, match='one line per class'):
        read_class_file(tmp_path / 'missing.txt')


def test_base_novel_halves(tmp_path):
    assert base_novel_split(list('abcde')) == (list('abc'), list('de'))
    path = tmp_path / 'classes.txt'
    path.write_text('\n'.join('abcdefg') + '\n')
    assert resolve_classes(dict(file=str(path), subset='novel')) == list('efg')
    assert resolve_classes(dict(names=list('abcd'), subset='base')) == ['a', 'b']
    assert resolve_classes(str(path)) == list('abcdefg')
    with pytest.raises(ValueError, match="subset must be one of"):
        resolve_classes(dict(names=['a'], subset='half'))


def test_image_folder_dataset(tmp_path):
    counts = {'n01_red_fox': 3, 'sea_lion': 2, 'cat': 4}
    make_image_folder(tmp_path, counts)
    (tmp_path / 'train' / 'BACKGROUND').mkdir()  # not in the class file: ignored
    dataset = ImageFolderDataset(data_root=str(tmp_path), class_file='classnames.txt',
                                 data_prefix=dict(img='train/'), pipeline=PIPELINE)
    assert dataset.metainfo['classes'] == ('red fox', 'sea lion', 'cat')
    labels = [dataset.get_data_info(i)['gt_label'] for i in range(len(dataset))]
    assert collections.Counter(labels) == {0: 3, 1: 2, 2: 4}
    item = dataset[3]
    assert item['data_samples'].gt_label.item() == 1
    assert item['data_samples'].img_path.endswith('sea_lion/000.png')
    assert item['inputs'].shape == (3, 24, 20)


def test_image_folder_errors_name_the_problem(tmp_path):
    make_image_folder(tmp_path, {'cat': 1, 'dog': 1})
    (tmp_path / 'more.txt').write_text('cat\nfish a fish\n')
    with pytest.raises(FileNotFoundError, match="class 'a fish' in folder 'fish'.*does not "
                       'exist'):
        ImageFolderDataset(data_root=str(tmp_path), class_file='more.txt', pipeline=PIPELINE)
    with pytest.raises(FileNotFoundError, match='val/? does not exist'):
        ImageFolderDataset(data_root=str(tmp_path), data_prefix=dict(img='val/'),
                           pipeline=PIPELINE)
    (tmp_path / 'train' / 'dog' / '000.png').unlink()
    with pytest.raises(FileNotFoundError, match="dog \\('dog'\\) holds no images"):
        ImageFolderDataset(data_root=str(tmp_path), pipeline=PIPELINE)


def test_few_shot_indices_draw_without_replacement():
    labels = [i % 3 for i in range(30)]
    first = few_shot_indices(labels, [2, 0], 4, seed=1)
    assert first == few_shot_indices(labels, [2, 0], 4, seed=1)
    assert first != few_shot_indices(labels, [2, 0], 4, seed=2)
    assert [labels[i] for i in first] == [2] * 4 + [0] * 4
    assert len(set(first)) == 8 and first[:4] == sorted(first[:4])
    assert few_shot_indices(labels, [1], None, seed=0) == list(range(1, 30, 3))


def test_few_shot_dataset_relabels_a_class_subset(tmp_path):
    make_image_folder(tmp_path, {'cat': 5, 'dog': 2, 'owl': 6})
    folder = dict(type='ImageFolderDataset', data_root=str(tmp_path), pipeline=PIPELINE)
    dataset = FewShotDataset(folder, shots=3, seed=0, classes=['owl', 'dog'])
    assert dataset.metainfo['classes'] == ('owl', 'dog')
    items = [dataset[i] for i in range(len(dataset))]
    labels = [item['data_samples'].gt_label.item() for item in items]
    assert labels == [0, 0, 0, 1, 1]  # dog has only 2 images: both are used
    assert all('/owl/' in item['data_samples'].img_path for item in items[:3])
    assert [item['data_samples'].sample_idx for item in items] == list(range(5))
    with pytest.raises(ValueError, match=r"Classes \['fish'\] are not in the dataset"):
        FewShotDataset(folder, shots=1, classes=['fish'])


def test_few_shot_dataset_on_shapes_crops(shapes_root):
    crops = dict(type='ShapesObjectCropDataset', data_root=str(shapes_root),
                 ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='images/train/'), pipeline=[
                     dict(type='LoadImageFromFile'), dict(type='CropRegion'),
                     dict(type='PackImageTextInputs', meta_keys=('img_id',))])
    everything = FewShotDataset(crops, shots=None)
    one_shot = FewShotDataset(crops, shots=1, seed=3)
    present = {everything.dataset.get_data_info(i)['gt_label']
               for i in range(len(everything.dataset))}
    assert len(one_shot) == len(present) and len(everything) == len(everything.dataset)


@pytest.mark.parametrize('shape', [(40, 60), (100, 30)])
def test_random_resized_crop(shape):
    random.seed(0)
    transform = RandomResizedCrop(16, scale=(0.2, 0.9), ratio=(0.5, 2.0))
    for _ in range(50):
        x1, y1, x2, y2 = transform.crop_box(*shape)
        assert 0 <= x1 < x2 <= shape[1] and 0 <= y1 < y2 <= shape[0]
        area = (x2 - x1) * (y2 - y1) / (shape[0] * shape[1])
        in_range = 0.2 - 0.05 <= area <= 0.9 + 0.05 and 0.45 <= (x2 - x1) / (y2 - y1) <= 2.2
        central = (x1 + x2) // 2 in range(shape[1] // 2 - 1, shape[1] // 2 + 2)
        assert in_range or central  # a draw in range, or the fallback central crop
    out = transform(dict(img=np.zeros(shape + (3,), np.uint8)))
    assert out['img'].shape == (16, 16, 3) and out['img_shape'] == (16, 16)


def test_resize_shorter_side():
    out = ResizeShorterSide(20)(dict(img=np.zeros((40, 100, 3), np.uint8)))
    assert out['img'].shape == (20, 50, 3)
