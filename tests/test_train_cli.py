"`asl-train` as a user runs it: one run folder per call, its path printed last, and errors that name the problem."
import inspect, os, signal, subprocess, time
from dataclasses import fields
from pathlib import Path
import pytest
from fastcore.script import anno_parser
from asl_lib.testing import assert_beats_chance, downloads, make_synthetic, simulated_kaggle_env
from asl_lib.runs import check_run
from asl_lib.train import TrainConfig, asl_train, train
from conftest import BIN, run_cli

def test_train_writes_complete_run(synth, tmp_path):
    r = run_cli('asl-train', '--data', synth['grassknoted'], '--arch', 'resnet18', '--no-pretrained', '--epochs', '1',
                '--size', '32', '--bs', '16', '--lr', '1e-3', '--out', tmp_path, '--workers', '0')
    assert r.returncode == 0, r.stderr[-2000:]
    run = Path(r.stdout.strip().splitlines()[-1])
    assert run == tmp_path/'resnet18-block-32px'
    m = check_run(run)
    assert (m['arch'], m['pretrained'], m['split'], m['size'], m['lr'], m['lr_source']) == ('resnet18', False, 'block', 32, 1e-3, 'given')
    assert m['config']['epochs'] == 1 and m['config']['out'] == str(tmp_path)
    assert not list(tmp_path.glob('*.partial'))
    assert 'training on cpu' in r.stderr or 'training on cuda' in r.stderr

def test_default_relative_out_from_fresh_cwd(synth, tmp_path):
    "The README's way: no --out (the relative `runs`), from a new folder, the run folder taken with `| tail -1`"
    cwd = tmp_path/'fresh'; cwd.mkdir()
    cmd = (f"run=$('{BIN}/asl-train' --data '{synth['grassknoted']}' --no-pretrained --epochs 1 --size 32 --bs 16 --lr 1e-3 "
           f"--workers 0 | tail -1) && printf '%s' \"$run\"")
    r = subprocess.run(['bash', '-c', cmd], cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == str(cwd/'runs'/'resnet18-block-32px')  # exactly the folder: no progress bar glued on
    check_run(r.stdout)
    assert sorted(p.name for p in (cwd/'runs').iterdir()) == ['resnet18-block-32px']

def test_unknown_arch_is_named(synth, tmp_path):
    r = run_cli('asl-train', '--data', synth['grassknoted'], '--arch', 'vgg16', '--out', tmp_path)
    assert r.returncode == 1 and "Unknown architecture 'vgg16'" in r.stderr and 'Traceback' not in r.stderr
    assert not any(tmp_path.iterdir())

@pytest.mark.parametrize('args,msg', [(['--size', '-5'], 'size'), (['--epochs', '0'], 'epochs'), (['--bs', '0'], 'bs'),
                                      (['--per-class', '0'], 'per_class'), (['--nproc', '0'], 'nproc'), (['--freeze-epochs', '-1'], 'freeze_epochs'),
                                      (['--lr', '0'], 'lr'), (['--valid-pct', '1.5'], 'valid_pct'), (['--split', 'time'], "Unknown split 'time'"),
                                      (['--timeout', '0'], 'timeout')])
def test_bad_arguments_fail_before_work(tmp_path, args, msg):
    "Checked before anything is fetched: the handle below would be a download (and fails offline), yet the message is about the argument"
    env = simulated_kaggle_env(tmp_path/'kaggle', {})  # online, but no such dataset: a download would show in `downloads`
    r = run_cli('asl-train', '--data', 'nobody/no-such-dataset', '--out', tmp_path/'runs', *args, env=env)
    assert r.returncode == 1 and msg in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert r.stdout == '' and not (tmp_path/'runs').exists() and downloads(tmp_path/'kaggle') == []

def test_cli_exposes_every_training_parameter():
    "`asl-train`'s parser has an option for every field of `TrainConfig`, with the field's default; `train` takes the same"
    parsed = vars(anno_parser(asl_train).parse_args([]))
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    assert {k: v for k, v in parsed.items() if k not in ('pdb', 'xtra')} == defaults
    assert {k: p.default for k, p in inspect.signature(train).parameters.items() if k != 'cbs'} == defaults

def _tree(p): return sorted((str(f.relative_to(p)), f.stat().st_size) for f in Path(p).rglob('*'))

def test_overwrite_never_replaces_data_or_user_folders(synth, tmp_path):
    data = Path(synth['grassknoted'])
    before = _tree(data)
    r = run_cli('asl-train', '--data', data, '--out', data.parent, '--name', data.name, '--overwrite', '--no-pretrained',
                '--epochs', '1', '--size', '32', '--workers', '0')
    assert r.returncode == 1 and 'Traceback' not in r.stderr and str(data) in r.stderr, r.stderr
    assert _tree(data) == before
    user = tmp_path/'mine'; user.mkdir(); (user/'thesis.txt').write_text('years of work')
    r = run_cli('asl-train', '--data', data, '--out', tmp_path, '--name', 'mine', '--overwrite', '--no-pretrained',
                '--epochs', '1', '--size', '32', '--lr', '1e-3', '--workers', '0')
    assert r.returncode == 1 and 'did not create it' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert (user/'thesis.txt').read_text() == 'years of work' and not list(tmp_path.glob('*.partial'))

def test_overwrite_replaces_own_run(synth, tmp_path):
    args = ['--data', synth['grassknoted'], '--no-pretrained', '--epochs', '1', '--size', '32', '--bs', '16', '--lr', '1e-3',
            '--out', tmp_path, '--workers', '0', '--name', 'r']
    assert run_cli('asl-train', *args).returncode == 0
    r = run_cli('asl-train', *args, '--overwrite')
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == str(tmp_path/'r') and sorted(p.name for p in tmp_path.iterdir()) == ['r']

def test_ctrl_c_during_training(tmp_path):
    data = make_synthetic(tmp_path/'g', n_per_class=8, size=32)
    out = tmp_path/'runs'
    p = subprocess.Popen([str(BIN/'asl-train'), '--data', str(data), '--no-pretrained', '--epochs', '200', '--size', '32', '--bs', '8',
                          '--lr', '1e-3', '--out', str(out), '--workers', '0', '--name', 'r'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (out/'r.partial').exists() and p.poll() is None and time.time() < deadline: time.sleep(0.2)
    time.sleep(5)  # into the epochs
    assert p.poll() is None, p.communicate()
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stderr[-2000:]
    assert 'interrupted' in stderr and 'Traceback' not in stderr and stdout == ''
    assert not out.exists() or not any(out.iterdir())

def test_offline_pretrained_says_which_file(synth, tmp_path):
    env = {**os.environ, 'TORCH_HOME': str(tmp_path/'torch')}
    r = run_cli('asl-train', '--data', synth['grassknoted'], '--size', '32', '--out', tmp_path/'runs', env=env)
    assert r.returncode == 1, r.stdout
    assert str(tmp_path/'torch/hub/checkpoints/resnet18-f37072fd.pth') in r.stderr and '--no-pretrained' in r.stderr

def test_gpu_without_matching_torch_is_an_error(monkeypatch):
    "A machine where nvidia-smi works but torch sees no GPU: say how to install a matching build (checked on any machine)"
    import torch, asl_lib.distributed as d
    from asl_lib.core import ConfigError
    monkeypatch.setattr(d, 'gpu_driver_present', lambda: True)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(ConfigError, match='GPU setup') as e: d.check_torch_build()
    assert 'download.pytorch.org/whl/cu' in str(e.value)
    monkeypatch.setattr(d, 'gpu_driver_present', lambda: False)
    d.check_torch_build()  # no NVIDIA driver: the CPU is the right device
