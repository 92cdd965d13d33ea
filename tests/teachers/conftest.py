"""Fixtures of these tests; the shared ones (tiny data, private VLKD_HOME) are in tests/conftest.py."""
import copy

import pytest


@pytest.fixture
def tiny_clip_cfg(tiny_teacher_cfg):
    """A copy of the open_clip config dict of the suite's tiny CLIP (32 px, 1 block per tower)."""
    return copy.deepcopy(tiny_teacher_cfg['model_cfg'])
