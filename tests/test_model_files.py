"Model files as a user meets them: run folders load without unpickling; a pickle that runs code is refused by default."
import json, pickle
import pytest, torch
from conftest import run_cli

class Evil:
    "Unpickling this creates the file `target`: any code could run instead"
    def __init__(self, target): self.target = str(target)
    def __reduce__(self): return (open, (self.target, 'w'))

@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    "A run folder with both routes (model.pkl, and model.json + model.safetensors) of an untrained ResNet18: no training needed"
    from asl_lib.testing import make_synthetic
    from asl_lib.datablock import get_dls
    from asl_lib.models import create_learner
    from asl_lib.runs import export_portable
    data = make_synthetic(tmp_path_factory.mktemp('tiny')/'g', n_per_class=2, size=32)
    learn = create_learner(get_dls(data, size=32, bs=8, workers=0, batch_resize=False), 'resnet18', pretrained=False)  # the pipelines match exactly
    run = tmp_path_factory.mktemp('runs')/'tiny'
    run.mkdir()
    learn.export(run/'model.pkl')
    export_portable(learn, run, 32)
    return run

def _evil_files(tmp_path, how):
    "A malicious model as a run folder holding model.pkl and as a bare .pkl, saved with plain pickle or torch.save"
    (tmp_path/'run').mkdir()
    sentinel = tmp_path/'pwned'
    for f in (tmp_path/'run'/'model.pkl', tmp_path/'evil.pkl'):
        if how == 'pickle':
            with open(f, 'wb') as fh: pickle.dump(Evil(sentinel), fh)
        else: torch.save(Evil(sentinel), f)
    return sentinel, [tmp_path/'run', tmp_path/'evil.pkl']

def _cmd(tool, model, synth):
    img = sorted(synth['danrasband'].rglob('*.jpg'))[0]
    return ('asl-predict', model, img) if tool == 'predict' else ('asl-evaluate', model, '--test', synth['danrasband'])

@pytest.mark.parametrize('how', ['pickle', 'torch.save'])
@pytest.mark.parametrize('tool', ['predict', 'evaluate'])
def test_malicious_pickle_refused_by_default(how, tool, synth, tmp_path):
    sentinel, models = _evil_files(tmp_path, how)
    for m in models:
        r = run_cli(*_cmd(tool, m, synth))
        assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr[-2000:]
        assert 'a pickle runs code when loaded' in r.stderr and '--trust-pickle' in r.stderr
        assert ('older asl_lib' in r.stderr) == m.is_dir()
        assert not sentinel.exists()

@pytest.mark.parametrize('tool', ['predict', 'evaluate'])
def test_trusted_pickle_still_checked_before_unpickling(tool, synth, tmp_path):
    sentinel, models = _evil_files(tmp_path, 'pickle')
    for m in models:
        r = run_cli(*_cmd(tool, m, synth), '--trust-pickle')
        assert r.returncode == 1 and 'Traceback' not in r.stderr and 'not a fastai export' in r.stderr, r.stderr[-2000:]
        assert not sentinel.exists()

def test_safe_route_predicts_as_pickle(tiny_run, synth):
    imgs = sorted(synth['danrasband'].rglob('*.jpg'))[::9]
    safe = run_cli('asl-predict', tiny_run, *imgs, '--json')
    assert safe.returncode == 0, safe.stderr[-2000:]
    pkl = run_cli('asl-predict', tiny_run/'model.pkl', *imgs, '--json', '--trust-pickle')
    assert pkl.returncode == 0, pkl.stderr[-2000:]
    a, b = json.loads(safe.stdout), json.loads(pkl.stdout)
    assert [p['label'] for p in a] == [p['label'] for p in b]
    assert max(abs(p['prob'] - q['prob']) for p, q in zip(a, b)) < 1e-4
    assert 'insecure pickle' not in safe.stderr and 'insecure pickle' in pkl.stderr  # fastai's warning: only the pickle route unpickles

def test_predict_usage_and_input_errors(tiny_run, synth, tmp_path):
    r = run_cli('asl-predict', tiny_run)
    assert r.returncode == 2 and 'no images given' in r.stderr and 'Traceback' not in r.stderr
    r = run_cli('asl-predict', tiny_run, tmp_path)
    assert r.returncode == 1 and 'is a folder, not an image file' in r.stdout and 'error: 1 of 1 images' in r.stderr
    img = sorted(synth['danrasband'].rglob('*.jpg'))[0]
    for args, msg in [(('--topk', '0'), 'topk must be'), (('--bs', '0'), 'bs must be'), (('--device', 'tpu'), 'use cpu, cuda')]:
        r = run_cli('asl-predict', tiny_run, img, *args)
        assert r.returncode == 1 and msg in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]

def test_help_names_the_pickle_risk():
    for tool in ('asl-predict', 'asl-evaluate'):
        h = ' '.join(run_cli(tool, '--help').stdout.split())
        assert '--trust-pickle' in h and 'runs code when loaded' in h and '--device' in h
