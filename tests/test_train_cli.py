"`asl-train` as a user runs it: one run folder per call, its path printed last, and errors that name the problem."
import os
from pathlib import Path
import pytest
from asl_lib.train import check_run
from conftest import run_cli

def test_train_writes_complete_run(synth, tmp_path):
    r = run_cli('asl-train', '--data', synth['grassknoted'], '--arch', 'resnet18', '--no-pretrained', '--epochs', '1',
                '--size', '32', '--bs', '16', '--lr', '1e-3', '--out', tmp_path, '--workers', '0')
    assert r.returncode == 0, r.stderr[-2000:]
    run = Path(r.stdout.strip().splitlines()[-1])
    assert run == tmp_path/'resnet18-block-32px'
    m = check_run(run)
    assert (m['arch'], m['pretrained'], m['split'], m['size'], m['lr'], m['lr_source']) == ('resnet18', False, 'block', 32, 1e-3, 'given')
    assert not list(tmp_path.glob('*.partial'))

def test_unknown_arch_is_named(synth, tmp_path):
    r = run_cli('asl-train', '--data', synth['grassknoted'], '--arch', 'vgg16', '--out', tmp_path)
    assert r.returncode == 1 and "Unknown architecture 'vgg16'" in r.stderr and 'Traceback' not in r.stderr
    assert not any(tmp_path.iterdir())

def test_offline_pretrained_says_which_file(synth, tmp_path):
    env = {**os.environ, 'TORCH_HOME': str(tmp_path/'torch')}
    r = run_cli('asl-train', '--data', synth['grassknoted'], '--size', '32', '--out', tmp_path/'runs', env=env)
    assert r.returncode == 1, r.stdout
    assert str(tmp_path/'torch/hub/checkpoints/resnet18-f37072fd.pth') in r.stderr and '--no-pretrained' in r.stderr

@pytest.mark.slow
def test_resnet18_learns_real_images(real, tmp_path):
    r = run_cli('asl-train', '--data', real/'asl-alphabet', '--arch', 'resnet18', '--no-pretrained', '--epochs', '3', '--size', '48',
                '--bs', '32', '--per-class', '100', '--lr', '3e-3', '--out', tmp_path, '--workers', '2')
    assert r.returncode == 0, r.stderr[-2000:]
    m = check_run(r.stdout.strip().splitlines()[-1])
    print(m['valid_accuracy'], m['train_seconds'])
    assert m['valid_accuracy'] > 5/29  # chance is 1/29, on frame blocks never seen in training
