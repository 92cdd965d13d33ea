"""GroupedOptimWrapperConstructor against mmengine's DefaultOptimWrapperConstructor."""
import copy
from collections import Counter

import torch
from mmengine.optim import build_optim_wrapper
from torch import nn

import vlkd.engine  # noqa: F401  (registers the constructor)
from vlkd.engine import merge_param_groups


class TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10, 8)
        self.linear = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)

    def forward(self, tokens):
        return self.head(self.norm(self.linear(self.embedding(tokens)))).sum()


OPTIM = dict(type='OptimWrapper',
             optimizer=dict(type='AdamW', lr=1e-2, betas=(0.9, 0.98), weight_decay=0.1),
             paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                                custom_keys={'embedding': dict(decay_mult=0.0),
                                             'head': dict(lr_mult=0.5)}))


def test_groups_are_the_distinct_settings_and_training_is_unchanged():
    torch.manual_seed(0)
    model = TwoLayers()
    twin = copy.deepcopy(model)
    default = build_optim_wrapper(model, OPTIM)
    grouped = build_optim_wrapper(twin, dict(OPTIM, constructor='GroupedOptimWrapperConstructor'))
    assert len(default.optimizer.param_groups) == len(list(model.parameters())) == 7
    # one group per distinct setting of the default's per-parameter groups: linear weight;
    # linear bias and norm (no decay); head (lr_mult 0.5); embedding (no decay, and a
    # custom key, which mmengine records as decay_mult in the group: kept apart)
    sizes = sorted(len(g['params']) for g in grouped.optimizer.param_groups)
    assert sizes == [1, 1, 2, 3]
    expected = Counter(tuple(sorted((k, v) for k, v in g.items() if k != 'params'))
                       for g in default.optimizer.param_groups)
    assert sorted(expected.values()) == sizes
    names = {id(p): n for n, p in twin.named_parameters()}
    by_name = {names[id(p)]: g for g in grouped.optimizer.param_groups for p in g['params']}
    for group in default.optimizer.param_groups:
        (parameter,) = group['params']
        name = next(n for n, p in model.named_parameters() if p is parameter)
        assert {k: v for k, v in by_name[name].items() if k != 'params'} == {
            k: v for k, v in group.items() if k != 'params'}
    tokens = torch.randint(0, 10, (4, 5))
    for _ in range(3):
        for wrapper, net in ((default, model), (grouped, twin)):
            wrapper.update_params(net(tokens))
    for (name, a), (_, b) in zip(model.named_parameters(), twin.named_parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7, msg=name)


def test_merge_keeps_first_appearance_order():
    a, b, c = (nn.Parameter(torch.zeros(1)) for _ in range(3))
    groups = merge_param_groups([dict(params=[a], lr=1.0), dict(params=[b], lr=2.0),
                                 dict(params=[c], lr=1.0)])
    assert [g['lr'] for g in groups] == [1.0, 2.0]
    assert groups[0]['params'] == [a, c] and groups[1]['params'] == [b]
