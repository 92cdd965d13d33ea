"""tools/make_ov_split.py and vlkd.datasets.ov_splits: the class lists against the published
ones (written here, independently), the split files derived from tiny COCO / LVIS files in
the official formats, and the errors for bad input."""
import ast
import hashlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

import vlkd  # noqa: F401  (installs the compat layer before mmdet)
from ov_detection_data import (COCO_NAME_TO_ID, COCO_TRAIN, COCO_VAL, LVIS_NAMES, LVIS_TRAIN,
                               write_coco_2017, write_lvis_v1)
from vlkd.datasets import ov_splits

ROOT = Path(__file__).resolve().parents[2]

# Bansal et al. (ECCV 2018), mscoco_seen_classes.json / mscoco_unseen_classes.json, in the
# order of those files (OVR-CNN's ipynb/003.ipynb reads them).
PUBLISHED_COCO_BASE = [
    'toilet', 'bicycle', 'apple', 'train', 'laptop', 'carrot', 'motorcycle', 'oven', 'chair',
    'mouse', 'boat', 'kite', 'sheep', 'horse', 'sandwich', 'clock', 'tv', 'backpack',
    'toaster', 'bowl', 'microwave', 'bench', 'book', 'orange', 'bird', 'pizza', 'fork',
    'frisbee', 'bear', 'vase', 'toothbrush', 'spoon', 'giraffe', 'handbag', 'broccoli',
    'refrigerator', 'remote', 'surfboard', 'car', 'bed', 'banana', 'donut', 'skis', 'person',
    'truck', 'bottle', 'suitcase', 'zebra']
PUBLISHED_COCO_NOVEL = [
    'umbrella', 'cow', 'cup', 'bus', 'keyboard', 'skateboard', 'dog', 'couch', 'tie',
    'snowboard', 'sink', 'elephant', 'cake', 'scissors', 'airplane', 'cat', 'knife']
# the 15 COCO classes in neither group
COCO_NOT_EVALUATED = [
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'sports ball',
    'baseball bat', 'baseball glove', 'tennis racket', 'wine glass', 'hot dog', 'potted plant',
    'dining table', 'cell phone', 'teddy bear', 'hair drier']
# LVIS v1 rare categories as listed (from the LVIS annotation files) in OWL-ViT's code
# (google-research/scenic), which removes them from its detection training data.
PUBLISHED_LVIS_RARE = [
    'applesauce', 'apricot', 'arctic_(type_of_shoe)', 'armoire', 'armor', 'ax', 'baboon',
    'bagpipe', 'baguet', 'bait', 'ballet_skirt', 'banjo', 'barbell', 'barge', 'bass_horn',
    'batter_(food)', 'beachball', 'bedpan', 'beeper', 'beetle', 'Bible', 'birthday_card',
    'pirate_flag', 'blimp', 'gameboard', 'bob', 'bolo_tie', 'bonnet', 'bookmark',
    'boom_microphone', 'bow_(weapon)', 'pipe_bowl', 'bowling_ball', 'boxing_glove',
    'brass_plaque', 'breechcloth', 'broach', 'bubble_gum', 'horse_buggy', 'bulldozer',
    'bulletproof_vest', 'burrito', 'cabana', 'locker', 'candy_bar', 'canteen', 'elevator_car',
    'car_battery', 'cargo_ship', 'carnation', 'casserole', 'cassette', 'chain_mail',
    'chaise_longue', 'chalice', 'chap', 'checkbook', 'checkerboard', 'chessboard', 'chime',
    'chinaware', 'poker_chip', 'chocolate_milk', 'chocolate_mousse', 'cider', 'cigar_box',
    'clarinet', 'cleat_(for_securing_rope)', 'clementine', 'clippers_(for_plants)', 'cloak',
    'clutch_bag', 'cockroach', 'cocoa_(beverage)', 'coil', 'coloring_material',
    'combination_lock', 'comic_book', 'compass', 'convertible_(automobile)', 'sofa_bed',
    'cooker', 'cooking_utensil', 'corkboard', 'cornbread', 'cornmeal', 'cougar', 'coverall',
    'crabmeat', 'crape', 'cream_pitcher', 'crouton', 'crowbar', 'hair_curler', 'curling_iron',
    'cylinder', 'cymbal', 'dagger', 'dalmatian', 'date_(fruit)', 'detergent', 'diary', 'die',
    'dinghy', 'tux', 'dishwasher_detergent', 'diving_board', 'dollar', 'dollhouse', 'dove',
    'dragonfly', 'drone', 'dropper', 'drumstick', 'dumbbell', 'dustpan', 'earplug', 'eclair',
    'eel', 'egg_roll', 'electric_chair', 'escargot', 'eyepatch', 'falcon', 'fedora', 'ferret',
    'fig_(fruit)', 'file_(tool)', 'first-aid_kit', 'fishbowl', 'flash', 'fleece',
    'football_helmet', 'fudge', 'funnel', 'futon', 'gag', 'garbage', 'gargoyle', 'gasmask',
    'gemstone', 'generator', 'goldfish', 'gondola_(boat)', 'gorilla', 'gourd', 'gravy_boat',
    'griddle', 'grits', 'halter_top', 'hamper', 'hand_glass', 'handcuff', 'handsaw',
    'hardback_book', 'harmonium', 'hatbox', 'headset', 'heron', 'hippopotamus', 'hockey_stick',
    'hookah', 'hornet', 'hot-air_balloon', 'hotplate', 'hourglass', 'houseboat', 'hummus',
    'popsicle', 'ice_pack', 'ice_skate', 'inhaler', 'jelly_bean', 'jewel', 'joystick', 'keg',
    'kennel', 'keycard', 'kitchen_table', 'knitting_needle', 'knocker_(on_a_door)', 'koala',
    'lab_coat', 'lamb-chop', 'lasagna', 'lawn_mower', 'leather', 'legume', 'lemonade',
    'lightning_rod', 'limousine', 'liquor', 'machine_gun', 'mallard', 'mallet', 'mammoth',
    'manatee', 'martini', 'mascot', 'masher', 'matchbox', 'microscope', 'milestone',
    'milk_can', 'milkshake', 'mint_candy', 'motor_vehicle', 'music_stool', 'nailfile',
    'neckerchief', 'nosebag_(for_animals)', 'nutcracker', 'octopus_(food)', 'octopus_(animal)',
    'omelet', 'inkpad', 'pan_(metal_container)', 'pantyhose', 'papaya', 'paperback_book',
    'paperweight', 'parchment', 'passenger_ship', 'patty_(food)', 'wooden_leg', 'pegboard',
    'pencil_box', 'pencil_sharpener', 'pendulum', 'pennant', 'penny_(coin)', 'persimmon',
    'phonebook', 'piggy_bank', 'pin_(non_jewelry)', 'ping-pong_ball', 'pinwheel',
    'tobacco_pipe', 'pistol', 'pitchfork', 'playpen', 'plow_(farm_equipment)', 'plume',
    'pocket_watch', 'poncho', 'pool_table', 'prune', 'pudding', 'puffer_(fish)', 'puffin',
    'pug-dog', 'puncher', 'puppet', 'quesadilla', 'quiche', 'race_car', 'radar', 'rag_doll',
    'rat', 'rib_(food)', 'river_boat', 'road_map', 'rodent', 'roller_skate', 'Rollerblade',
    'root_beer', 'safety_pin', 'salad_plate', 'salmon_(food)', 'satchel', 'saucepan',
    'sawhorse', 'saxophone', 'scarecrow', 'scraper', 'seaplane', 'sharpener', 'Sharpie',
    'shaver_(electric)', 'shawl', 'shears', 'shepherd_dog', 'sherbert', 'shot_glass',
    'shower_cap', 'shredder_(for_paper)', 'skullcap', 'sling_(bandage)', 'smoothie', 'snake',
    'softball', 'sombrero', 'soup_bowl', 'soya_milk', 'space_shuttle', 'sparkler_(fireworks)',
    'spear', 'crawfish', 'squid_(food)', 'stagecoach', 'steak_knife', 'stepladder', 'stew',
    'stirrer', 'string_cheese', 'stylus', 'subwoofer', 'sugar_bowl', 'sugarcane_(plant)',
    'syringe', 'Tabasco_sauce', 'table-tennis_table', 'tachometer', 'taco', 'tambourine',
    'army_tank', 'telephoto_lens', 'tequila', 'thimble', 'trampoline', 'trench_coat',
    'triangle_(musical_instrument)', 'truffle_(chocolate)', 'vat', 'turnip', 'unicycle',
    'vinegar', 'violin', 'vodka', 'vulture', 'waffle_iron', 'walrus', 'wardrobe', 'washbasin',
    'water_heater', 'water_gun', 'wolf']
# sizes of the LVIS v1 frequency groups (Gupta et al.; ViLD's 866 base = frequent + common)
LVIS_GROUP_SIZES = dict(r=337, c=461, f=405)


def load_tool():
    spec = importlib.util.spec_from_file_location('vlkd_tools_make_ov_split',
                                                  ROOT / 'tools' / 'make_ov_split.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_ov_split = load_tool()


def test_ov_coco_lists_are_the_published_split():
    assert len(PUBLISHED_COCO_BASE) == 48 and len(PUBLISHED_COCO_NOVEL) == 17
    assert sorted(ov_splits.OV_COCO_BASE_CLASSES) == sorted(PUBLISHED_COCO_BASE)
    assert sorted(ov_splits.OV_COCO_NOVEL_CLASSES) == sorted(PUBLISHED_COCO_NOVEL)
    assert sorted(ov_splits.OV_COCO_CLASSES) == sorted(PUBLISHED_COCO_BASE + PUBLISHED_COCO_NOVEL)
    # the classes left out are the other 15 COCO classes
    assert sorted(set(COCO_NAME_TO_ID) - set(ov_splits.OV_COCO_CLASSES)) == \
        sorted(COCO_NOT_EVALUATED)
    # label order = COCO category-id order
    for names in (ov_splits.OV_COCO_BASE_CLASSES, ov_splits.OV_COCO_NOVEL_CLASSES,
                  ov_splits.OV_COCO_CLASSES):
        ids = [COCO_NAME_TO_ID[name] for name in names]
        assert ids == sorted(ids)


def test_ov_coco_lists_match_mmdets_own_converter():
    """mmdet ships tools/dataset_converters/coco2ovd.py with the lists as tuples."""
    import mmdet
    path = Path(mmdet.__file__).parent / '.mim/tools/dataset_converters/coco2ovd.py'
    if not path.is_file():
        pytest.skip('this mmdet install has no coco2ovd.py')
    tree = ast.parse(path.read_text())
    lists = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
             if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
             and node.targets[0].id in ('base_classes', 'novel_classes')}
    assert tuple(lists['base_classes']) == ov_splits.OV_COCO_BASE_CLASSES
    assert tuple(lists['novel_classes']) == ov_splits.OV_COCO_NOVEL_CLASSES


def test_lvis_frequency_groups_are_the_published_ones():
    assert len(PUBLISHED_LVIS_RARE) == len(set(PUBLISHED_LVIS_RARE)) == 337
    assert list(ov_splits.LVIS_V1_RARE_CLASSES) == PUBLISHED_LVIS_RARE  # same names, id order
    assert list(ov_splits.OV_LVIS_NOVEL_CLASSES) == PUBLISHED_LVIS_RARE
    assert len(ov_splits.LVIS_V1_FREQUENCY) == len(ov_splits.LVIS_V1_CLASSES) == 1203
    for letter, size in LVIS_GROUP_SIZES.items():
        assert ov_splits.LVIS_V1_FREQUENCY.count(letter) == size
    assert len(ov_splits.LVIS_V1_COMMON_CLASSES) == 461
    assert len(ov_splits.LVIS_V1_FREQUENT_CLASSES) == 405
    assert sorted(ov_splits.OV_LVIS_BASE_CLASSES) == sorted(
        set(LVIS_NAMES) - set(PUBLISHED_LVIS_RARE))
    # a few well-known members of the other groups (LVIS v1 categories)
    assert {'person', 'car_(automobile)', 'chair', 'banana'} <= set(
        ov_splits.LVIS_V1_FREQUENT_CLASSES)
    assert {'aerosol_can', 'alligator', 'almond', 'bagel'} <= set(ov_splits.LVIS_V1_COMMON_CLASSES)


def expected_coco_split(images, keep):
    """(image ids, [(image id, class, box)]) an OV-COCO file keeps, from the fixture table."""
    kept = [(image_id, name, list(map(float, box))) for image_id, _, _, _, objects in images
            for name, box, _ in objects if name in keep]
    return sorted({image_id for image_id, _, _ in kept}), kept


def file_annotations(data):
    names = {c['id']: c['name'] for c in data['categories']}
    return [(a['image_id'], names[a['category_id']], a['bbox']) for a in data['annotations']]


def test_coco_split_files(tmp_path, capsys):
    ann = write_coco_2017(tmp_path / 'coco') / 'annotations'
    assert make_ov_split.main(['coco', str(ann)]) == 0
    printed = capsys.readouterr().out

    train = json.loads((ann / 'instances_train2017_ov_base.json').read_text())
    images, annotations = expected_coco_split(COCO_TRAIN, PUBLISHED_COCO_BASE)
    assert images == [1, 2, 6]  # 3: novel only, 4: not evaluated only, 5: no objects
    assert sorted(image['id'] for image in train['images']) == images
    assert file_annotations(train) == annotations  # crowd box of image 1 included
    assert sorted(c['name'] for c in train['categories']) == sorted(PUBLISHED_COCO_BASE)
    assert {c['split'] for c in train['categories']} == {'base'}
    assert all(c['id'] == COCO_NAME_TO_ID[c['name']] for c in train['categories'])

    val = json.loads((ann / 'instances_val2017_ov.json').read_text())
    images, annotations = expected_coco_split(COCO_VAL,
                                              PUBLISHED_COCO_BASE + PUBLISHED_COCO_NOVEL)
    assert images == [11, 12, 14]  # 13 holds only a teddy bear
    assert sorted(image['id'] for image in val['images']) == images
    assert file_annotations(val) == annotations
    assert {c['name']: c['split'] for c in val['categories']} == {
        **{name: 'base' for name in PUBLISHED_COCO_BASE},
        **{name: 'novel' for name in PUBLISHED_COCO_NOVEL}}
    # the official files' other fields travel unchanged
    official = json.loads((ann / 'instances_val2017.json').read_text())
    assert val['info'] == official['info'] and val['licenses'] == official['licenses']
    assert val['images'][0] == official['images'][0]

    # the counts and checksums printed are those of the files
    assert re.search(r'OV-COCO train:\s+images\s+3 kept,\s+3 dropped\s+annotations\s+5 kept,'
                     r'\s+5 dropped\s+categories\s+base 48 \(5 annotations\)', printed)
    assert re.search(r'OV-COCO val:\s+images\s+3 kept,\s+1 dropped\s+annotations\s+5 kept,'
                     r'\s+1 dropped\s+categories\s+base 48 \(2 annotations\), '
                     r'novel 17 \(3 annotations\)', printed)
    for name in ('instances_train2017_ov_base.json', 'instances_val2017_ov.json'):
        digest = hashlib.sha256((ann / name).read_bytes()).hexdigest()
        assert f'{name}  sha256 {digest}' in printed


def test_split_is_deterministic(tmp_path):
    ann = write_coco_2017(tmp_path / 'coco') / 'annotations'
    first = make_ov_split.make_split('coco', ann, tmp_path / 'first')
    second = make_ov_split.make_split('coco', ann, tmp_path / 'second')
    assert list(first.values()) == list(second.values())
    for name in ('instances_train2017_ov_base.json', 'instances_val2017_ov.json'):
        assert (tmp_path / 'first' / name).read_bytes() == (tmp_path / 'second' / name).read_bytes()


def test_lvis_split_file(tmp_path, capsys):
    ann = write_lvis_v1(tmp_path / 'lvis') / 'annotations'
    assert make_ov_split.main(['lvis', str(ann)]) == 0
    printed = capsys.readouterr().out
    official = json.loads((ann / 'lvis_v1_train.json').read_text())
    split = json.loads((ann / 'lvis_v1_train_ov_base.json').read_text())
    expected = [(image_id, name, list(map(float, box))) for image_id, _, _, _, objects in LVIS_TRAIN
                for name, box in objects if name not in PUBLISHED_LVIS_RARE]
    assert file_annotations(split) == expected
    assert len(expected) == 6 and len(official['annotations']) == 9  # 3 rare boxes removed
    # images (with their negative / not-exhaustive lists) and all 1203 categories stay
    assert split['images'] == official['images'] and split['categories'] == official['categories']
    assert re.search(r'OV-LVIS train:\s+images\s+5 kept,\s+0 dropped\s+annotations\s+6 kept,\s+'
                     r'3 dropped\s+categories\s+rare 337 \(0 annotations\), common 461 \(2 '
                     r'annotations\), frequent 405 \(4 annotations\)', printed)
    digest = hashlib.sha256((ann / 'lvis_v1_train_ov_base.json').read_bytes()).hexdigest()
    assert f'sha256 {digest}' in printed


def test_lvis_split_reads_rare_from_the_frequency_field():
    """A file whose categories say otherwise is split by what the file says."""
    lvis = dict(images=[dict(id=1)], categories=[
        dict(id=1, name='applesauce', frequency='f'), dict(id=2, name='person', frequency='r')],
        annotations=[dict(id=1, image_id=1, category_id=1), dict(id=2, image_id=1, category_id=2)])
    split, summary = ov_splits.ov_lvis_train_split(lvis)
    assert [a['category_id'] for a in split['annotations']] == [1]
    assert summary.annotations_dropped == 1
    assert len(lvis['annotations']) == 2  # the input is not modified


def run_tool(capsys, *argv):
    code = make_ov_split.main(list(argv))
    return code, capsys.readouterr().err


def test_missing_folder_and_files(tmp_path, capsys):
    code, err = run_tool(capsys, 'coco', str(tmp_path / 'nowhere'))
    assert code == 1 and 'is not a folder' in err and 'cocodataset.org' in err
    (tmp_path / 'ann').mkdir()
    code, err = run_tool(capsys, 'coco', str(tmp_path / 'ann'))
    assert code == 1 and 'instances_train2017.json, instances_val2017.json' in err
    code, err = run_tool(capsys, 'lvis', str(tmp_path / 'ann'))
    assert code == 1 and 'lvis_v1_train.json' in err and 'lvisdataset.org' in err


def write_pair(ann: Path, train, val=None):
    ann.mkdir(parents=True, exist_ok=True)
    for name, data in (('instances_train2017.json', train), ('instances_val2017.json', val)):
        text = data if isinstance(data, str) else json.dumps(data if data is not None else train)
        (ann / name).write_text(text)


@pytest.fixture
def coco_train(tmp_path):
    ann = write_coco_2017(tmp_path / 'coco') / 'annotations'
    return json.loads((ann / 'instances_train2017.json').read_text())


def test_bad_json_and_wrong_format(tmp_path, capsys, coco_train):
    write_pair(tmp_path / 'a', '{"images": [', coco_train)
    code, err = run_tool(capsys, 'coco', str(tmp_path / 'a'))
    assert code == 1 and 'instances_train2017.json is not valid json' in err

    write_pair(tmp_path / 'b', dict(images=[], annotations=[]))
    code, err = run_tool(capsys, 'coco', str(tmp_path / 'b'))
    assert code == 1 and "has no 'categories' list" in err

    broken = dict(coco_train, annotations=coco_train['annotations'] + [
        dict(id=1, image_id=1, category_id=12345, bbox=[0, 0, 1, 1])])
    write_pair(tmp_path / 'c', broken)
    code, err = run_tool(capsys, 'coco', str(tmp_path / 'c'))
    assert code == 1 and 'category_id 12345' in err


def test_missing_categories_are_named(tmp_path, capsys, coco_train):
    no_dog = dict(coco_train, categories=[c for c in coco_train['categories']
                                          if c['name'] not in ('dog', 'person')],
                  annotations=[a for a in coco_train['annotations']
                               if a['category_id'] not in (COCO_NAME_TO_ID['dog'],
                                                           COCO_NAME_TO_ID['person'])])
    write_pair(tmp_path / 'a', no_dog)
    code, err = run_tool(capsys, 'coco', str(tmp_path / 'a'))
    assert code == 1 and "lacks 1 of the 48 categories the split needs: 'person'" in err
    with pytest.raises(ov_splits.AnnotationFormatError, match=r"lacks 2 of the 65 .*'dog'"):
        ov_splits.ov_coco_split(no_dog, 'val')


def test_lvis_file_given_as_coco_and_coco_given_as_lvis(tmp_path, capsys, coco_train):
    lvis_ann = write_lvis_v1(tmp_path / 'lvis') / 'annotations'
    lvis = (lvis_ann / 'lvis_v1_train.json').read_text()
    write_pair(tmp_path / 'a', lvis, lvis)
    code, err = run_tool(capsys, 'coco', str(tmp_path / 'a'))
    assert code == 1 and 'looks like an LVIS file' in err

    (tmp_path / 'b').mkdir()
    (tmp_path / 'b' / 'lvis_v1_train.json').write_text(json.dumps(coco_train))
    code, err = run_tool(capsys, 'lvis', str(tmp_path / 'b'))
    assert code == 1 and "has frequency None" in err and 'LVIS v1 file' in err
