"Training across machines: two local 'machines' meeting at a c10d rendezvous, and `asl-train` as one rank of the user's own torchrun."
import os, subprocess
from pathlib import Path
import pytest
from asl_lib.core import run_cli as run_in_process
from asl_lib.testing import make_synthetic
from asl_lib.runs import check_run
from asl_lib.train import asl_train
from conftest import BIN, free_port

TINY = ['--arch', 'resnet18', '--no-pretrained', '--epochs', '1', '--size', '32', '--bs', '16', '--lr', '1e-2', '--workers', '0']
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg', 'PYTHONUNBUFFERED': '1'}

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp('multinode')/'g', n_per_class=6, size=32)

def finish(procs, timeout=300):
    "Wait for every process; kill them all if one hangs"
    try: return [p.communicate(timeout=timeout) for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs: p.kill()
        raise

def the_run(out:Path)->dict:
    "The one complete run folder in `out` (nothing else there), checked: its metrics"
    assert [p.name for p in out.iterdir()] == ['resnet18-block-32px'], list(out.iterdir())
    return check_run(out/'resnet18-block-32px')

@pytest.mark.slow  # six processes importing torch and fastai: about 55 s of CPU, 2-3 minutes on a busy 2-core machine
def test_two_machines(data, tmp_path):
    "Two `asl-train --nnodes 2` on this machine, machine 1 started first: one run folder, trained by both, reported by both"
    out, endpoint = tmp_path/'runs', f'127.0.0.1:{free_port()}'
    cmd = [BIN/'asl-train', '--data', data, *TINY, '--out', out, '--nnodes', '2', '--rdzv-endpoint', endpoint, '--nproc', '1']
    procs = [subprocess.Popen([*map(str, cmd), '--node-rank', r], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for r in ('1', '0')]
    res = finish(procs)
    for p, (_, err) in zip(procs, res): assert p.returncode == 0, err[-3000:]
    assert [o for o, _ in res] == [f'{out/"resnet18-block-32px"}\n'] * 2  # each machine prints the one run folder
    assert 'machine 0 of 2' in res[1][1] and 'machine 1 of 2' in res[0][1]
    m = the_run(out)
    assert m['nproc'] == 2 and 'x 2 processes' in m['device'] and (m['config']['nnodes'], m['config']['nproc']) == (2, 1)

def test_under_users_torchrun(data, tmp_path):
    "`torchrun --nproc-per-node 2 asl-train ...`: both processes join torchrun's group; one run folder, its path printed once"
    out = tmp_path/'runs'
    cmd = [BIN/'torchrun', '--standalone', '--nproc-per-node', '2', BIN/'asl-train', '--data', data, *TINY, '--out', out]
    r = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout == f'{out/"resnet18-block-32px"}\n'
    assert 'x 2 processes' in r.stderr
    m = the_run(out)
    assert m['nproc'] == 2 and 'x 2 processes' in m['device']

def test_machines_need_an_endpoint(tmp_path, capsys):
    "--nnodes 2 without --rdzv-endpoint: one line naming the fix, exit code 1, before anything else"
    assert run_in_process(asl_train, ['--data', str(tmp_path/'none'), '--nnodes', '2', '--out', str(tmp_path/'runs')]) == 1
    err = capsys.readouterr().err
    assert err == 'error: nnodes=2 needs rdzv_endpoint: pass --rdzv-endpoint HOST:PORT, machine 0\'s address (the same on every machine).\n', err
    assert not (tmp_path/'runs').exists()

def test_taken_name_is_refused_on_every_machine(data, tmp_path):
    "Several machines never pick a -2 (they could disagree): a taken name is an error before the rendezvous, on any machine"
    from asl_lib.core import OutputError
    from asl_lib.train import train
    (tmp_path/'runs'/'r').mkdir(parents=True)
    for rank in (0, 1):
        with pytest.raises(OutputError, match='already exists: a run on several machines takes its name as given'):
            train(data, out=tmp_path/'runs', name='r', nnodes=2, node_rank=rank, rdzv_endpoint='127.0.0.1:1')
    assert [p.name for p in (tmp_path/'runs').iterdir()] == ['r']

def test_launcher_sets_the_processes(tmp_path, monkeypatch):
    "Under someone else's launcher (WORLD_SIZE > 1, no group yet), --nproc and --nnodes are a one-line error, not a second launch"
    from asl_lib.core import ConfigError
    from asl_lib.train import train
    monkeypatch.setenv('WORLD_SIZE', '2')
    for kw in (dict(nproc=2), dict(nnodes=2, rdzv_endpoint='127.0.0.1:1')):
        with pytest.raises(ConfigError, match='already one of 2 ranks that a launcher started: drop nproc and nnodes'):
            train(tmp_path/'none', out=tmp_path/'runs', **kw)
    assert not (tmp_path/'runs').exists()
