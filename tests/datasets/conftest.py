"""Fixtures of the dataset tests; the shared ones (tiny vlkd-shapes, tiny teacher) are in
tests/conftest.py."""
import pytest

from vlkd.datasets.shapes_video import generate_shapes_video


@pytest.fixture(scope='session')
def shapes_video_root(tmp_path_factory):
    """vlkd-shapes-video: 6 train, 3 val, 2 test clips of 5 to 8 frames of 64 px."""
    return generate_shapes_video(tmp_path_factory.mktemp('data') / 'shapes_video', seed=0,
                                 num_train=6, num_val=3, num_test=2, image_size=64,
                                 num_frames=8, min_frames=5, max_objects=3)
