"""VLMo stage-wise pretraining: which MoME parameters get gradients in each stage, and the
hook switching stages inside an mmengine training run (parameters that changed per
iteration)."""
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import DataLoader

from vlkd.registry import HOOKS
from vlkd.vlp.fusion import MoMETransformer, VLMoStageHook, apply_vlmo_stage

ALL_GROUPS = {'image_embedding', 'text_embedding', 'attention', 'vision_expert',
              'language_expert', 'vision_language_expert', 'final_norm'}
EXPECTED = {
    'image': {'attention', 'vision_expert', 'image_embedding', 'final_norm'},
    'text': {'language_expert', 'text_embedding'},
    'image_text': ALL_GROUPS,
}


def tiny_mome():
    return MoMETransformer(image_size=16, patch_size=8, vocab_size=40, max_text_length=8,
                           width=16, depth=2, num_heads=2, mlp_ratio=2.0, num_vl_layers=1)


def all_modes_loss(mome, images, input_ids):
    """A loss that uses the dual-encoder and the fusion modes, so every expert is used."""
    return (mome.encode_image(images).cls.pow(2).mean()
            + mome.encode_text(input_ids).cls.pow(2).mean()
            + mome.fuse(images, input_ids).cls.pow(2).mean())


def groups_with_grad(mome):
    return {mome.parameter_group(n) for n, p in mome.named_parameters()
            if p.grad is not None and p.grad.abs().sum() > 0}


@pytest.mark.parametrize('stage', ['image', 'text', 'image_text'])
def test_gradients_per_stage(stage):
    torch.manual_seed(0)
    mome = tiny_mome()
    images, ids = torch.randn(2, 3, 16, 16), torch.randint(1, 40, (2, 5))
    all_modes_loss(mome, images, ids).backward()  # stale gradients from an earlier stage
    apply_vlmo_stage(torch.nn.ModuleDict(dict(backbone=mome)), stage)
    for name, p in mome.named_parameters():
        assert p.requires_grad == (mome.parameter_group(name) in EXPECTED[stage])
    all_modes_loss(mome, images, ids).backward()
    assert groups_with_grad(mome) == EXPECTED[stage]


def test_bad_stages():
    with pytest.raises(ValueError, match="Unknown VLMo stage 'video'"):
        apply_vlmo_stage(tiny_mome(), 'video')
    with pytest.raises(ValueError, match='contains no MoMETransformer'):
        apply_vlmo_stage(torch.nn.Linear(2, 2), 'image')
    with pytest.raises(ValueError, match='start at iteration 0'):
        VLMoStageHook([(5, 'image')])
    with pytest.raises(ValueError, match='must increase'):
        VLMoStageHook([(0, 'image'), (4, 'text'), (4, 'image_text')])
    assert VLMoStageHook([(0, 'image'), (3, 'text')]).stage_at(7) == 'text'


class TinyVLMo(BaseModel):
    def __init__(self):
        super().__init__()
        self.mome = tiny_mome()

    def forward(self, images, input_ids, mode='loss'):
        return dict(loss=all_modes_loss(self.mome, images, input_ids))


class RecordChanges(Hook):
    """Per iteration: the MoME parameter groups whose values the optimizer changed."""
    priority = 'LOWEST'

    def __init__(self):
        self.changed = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.before = {n: p.detach().clone() for n, p in runner.model.mome.named_parameters()}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        mome = runner.model.mome
        self.changed.append({mome.parameter_group(n) for n, p in mome.named_parameters()
                             if not torch.equal(p, self.before[n])})


def test_hook_switches_stages_in_a_training_run(tmp_path):
    torch.manual_seed(0)
    data = [dict(images=torch.randn(3, 16, 16), input_ids=torch.randint(1, 40, (5,)))
            for _ in range(12)]  # 6 batches: no epoch restart (mmengine sleeps 2 s there)
    record = RecordChanges()
    runner = Runner(
        model=TinyVLMo(), work_dir=str(tmp_path),
        train_dataloader=DataLoader(data, batch_size=2),
        train_cfg=dict(by_epoch=False, max_iters=6),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        custom_hooks=[dict(type='VLMoStageHook',
                           stages=[(0, 'image'), (2, 'text'), (4, 'image_text')]), record],
        default_hooks=dict(checkpoint=None), default_scope='vlkd')
    assert isinstance(HOOKS.build(dict(type='VLMoStageHook', stages=[(0, 'text')])),
                      VLMoStageHook)
    runner.train()
    assert record.changed == [EXPECTED['image']] * 2 + [EXPECTED['text']] * 2 + \
        [EXPECTED['image_text']] * 2
