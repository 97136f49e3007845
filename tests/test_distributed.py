"Real multi-process training on CPU (gloo) through fastai's distrib_ctx and torchrun."
import copy, json
from pathlib import Path
import pytest, timm, torch, torchvision
from torch import nn
from fastai.vision.all import load_learner
from fastai.callback.tracker import TerminateOnNaNCallback
from asl_lib.datablock import get_dls
from asl_lib.distributed import launch, sync_batchnorm
from asl_lib.models import arch_spec
from asl_lib.testing import FailAfterEpoch, ShardLog, WriteAudit, downloads, make_synthetic, seed_weights_cache, simulated_kaggle_env
from asl_lib.runs import RUN_FILES
from conftest import run_cli

@pytest.fixture(scope='module')
def ddp_data(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp('ddp')/'g', n_per_class=60, size=32)

def test_two_process_fine_tune(ddp_data, tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path/'torch'))  # "pretrained" weights from a seeded cache, so fine_tune runs offline
    seed_weights_cache('resnet18', torchvision.models.resnet18().state_dict())
    kw = dict(data=str(ddp_data), arch='resnet18', epochs=1, size=32, bs=16, lr=1e-2, pretrained=True, seed=3,
              out=str(tmp_path/'runs'), name='ddp', workers=0)
    seen = tmp_path/'seen'; seen.mkdir()
    work = launch(2, kw, tmp_path/'work', cbs=[ShardLog(seen), WriteAudit(tmp_path/'runs', seen), TerminateOnNaNCallback()])
    ranks = [json.loads((work/f'rank{r}.json').read_text()) for r in (0, 1)]
    assert [(r['rank'], r['world_size'], r['backend']) for r in ranks] == [(0, 2, 'gloo'), (1, 2, 'gloo')]
    assert all(r['cbs'] == ['ShardLog', 'WriteAudit', 'TerminateOnNaNCallback'] for r in ranks)  # the caller's callbacks reach every rank
    for r in ranks: r.update(train_idxs=json.loads((seen/f"shards-rank{r['rank']}.json").read_text()),
                             writes=json.loads((seen/f"writes-rank{r['rank']}.json").read_text()))
    run = tmp_path/'runs/ddp'
    m = json.loads((run/'metrics.json').read_text())
    assert all((run/f).exists() for f in RUN_FILES) and m['nproc'] == 2 and 'x 2 processes' in m['device']
    # each rank trained on its own half of every epoch (fine_tune: one frozen epoch, then one unfrozen)
    for e0, e1 in zip(ranks[0]['train_idxs'], ranks[1]['train_idxs']):
        assert set(e0).isdisjoint(e1) and set(e0) | set(e1) == set(range(m['n_train'])) and abs(len(e0) - len(e1)) <= 1
    assert len(ranks[0]['train_idxs']) == 2
    # rank 0 alone wrote the run folder
    assert ranks[1]['writes'] == [], ranks[1]['writes']
    wrote0 = {Path(p).name for _, p in ranks[0]['writes']}
    assert {'ddp.partial', 'metrics.json', 'history.csv'} <= wrote0, wrote0
    # the validation accuracy recorded during distributed training = a single-process evaluation of the exported model
    learn = load_learner(run/'model.pkl', cpu=True)
    dls = get_dls(ddp_data, size=32, bs=16, seed=3, workers=0, stats=arch_spec('resnet18').stats)
    probs, targs = learn.get_preds(dl=learn.dls.test_dl(dls.valid_ds.items, bs=16))
    single = (probs.argmax(1) == torch.tensor([learn.dls.vocab.o2i[lbl] for lbl in map(lambda p: p.parent.name, dls.valid_ds.items)])).float().mean().item()
    hist_best = max(float(l.split(',')[4]) for l in (run/'history.csv').read_text().splitlines()[1:])
    assert abs(single - hist_best) < 1e-6 and abs(single - m['valid_accuracy']) < 1e-6

def test_failing_rank_fails_the_launch(ddp_data, tmp_path, monkeypatch):
    from asl_lib.core import LaunchError
    kw = dict(data=str(ddp_data), arch='resnet18', epochs=2, size=32, bs=16, lr=1e-2, pretrained=False, out=str(tmp_path/'runs'),
              name='r', workers=0)
    with pytest.raises(LaunchError) as e: launch(2, kw, cbs=[FailAfterEpoch(rank=1)])
    msg = str(e.value)
    assert 'failed (torchrun exit code' in msg and 'rank1: RuntimeError' in msg and 'rank 1 failed on purpose (FailAfterEpoch)' in msg
    assert not (tmp_path/'runs').exists() or not any((tmp_path/'runs').iterdir())  # nothing looks complete, no .partial

def test_kaggle_handle_downloads_once_in_the_launcher(ddp_data, tmp_path):
    "`asl-train --nproc 2` with a Kaggle handle: the launcher downloads, the ranks get the folder; no launch folder left"
    sim = tmp_path/'kaggle'
    env = simulated_kaggle_env(sim, {'someone/asl-small': ddp_data})
    env.update(ASL_DATA=str(tmp_path/'data'), TMPDIR=str(tmp_path/'tmp'))
    (tmp_path/'tmp').mkdir()
    r = run_cli('asl-train', '--data', 'someone/asl-small', '--no-pretrained', '--epochs', '1', '--size', '32', '--bs', '16',
                '--lr', '1e-2', '--out', tmp_path/'runs', '--workers', '0', '--nproc', '2', env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert downloads(sim) == ['someone/asl-small']
    assert 'x 2 processes' in r.stderr
    run = Path(r.stdout.strip())
    assert r.stdout == f'{run}\n'  # the ranks' progress went to stderr
    m = json.loads((run/'metrics.json').read_text())
    assert m['nproc'] == 2 and Path(m['data']).is_relative_to(tmp_path/'data')
    assert not list((tmp_path/'tmp').glob('asl-launch-*'))

def test_callback_from_main_is_refused_before_launch(tmp_path):
    "A callback class defined in `__main__` (a script, a notebook) cannot be unpickled by the ranks: one line naming the fix, no torchrun"
    from asl_lib.core import ConfigError
    from fastai.callback.core import Callback
    Mine = type('Mine', (Callback,), {'__module__': '__main__'})
    with pytest.raises(ConfigError, match='Mine is defined in __main__.*move it into a module'):
        launch(2, dict(data='unused'), tmp_path/'work', cbs=[Mine()])
    assert not (tmp_path/'work').exists()
    from asl_lib.train import train  # the same from `train`, before anything is downloaded (this handle would be a download)
    with pytest.raises(ConfigError, match='Mine is defined in __main__'):
        train('nobody/no-such-dataset', nproc=2, out=tmp_path/'runs', cbs=[Mine()])
    assert not (tmp_path/'runs').exists()

@pytest.mark.parametrize('arch', ['resnet18', 'efficientnet_b0'])
def test_sync_batchnorm_keeps_the_network(arch):
    "The conversion used on CUDA with several ranks, applied on CPU: in eval mode the outputs do not change"
    model = (torchvision.models.resnet18(num_classes=29) if arch == 'resnet18'
             else timm.create_model('efficientnet_b0', pretrained=False, num_classes=29)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        after = sync_batchnorm(copy.deepcopy(model)).eval()(x)
        torch_conv = nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(model)).eval()(x)
    assert torch.allclose(before, after, atol=1e-6)
    assert any(isinstance(m, nn.SyncBatchNorm) for m in sync_batchnorm(copy.deepcopy(model)).modules())
    # torch's converter (what fastai's sync_bn=True uses) drops timm's BatchNormAct2d activations
    assert torch.allclose(before, torch_conv, atol=1e-6) == (arch == 'resnet18')
