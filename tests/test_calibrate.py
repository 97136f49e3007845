"Calibration through its command, as a user runs it: a base landmark run, a folder of another signer's photos, a calibrated run the other commands take."
import json
from pathlib import Path
import pandas as pd
import pytest
from conftest import run_cli
from asl_lib.testing import assert_better, fake_hands_env, make_synthetic, tree_hash

@pytest.fixture(scope='module')
def world(tmp_path_factory):
    "A landmark run on generated signer 0, and generated photos of signer 1 (who forms every letter differently): shots and later frames"
    base = tmp_path_factory.mktemp('calibrate')
    env = dict(fake_hands_env(base/'env'), MPLBACKEND='Agg')
    train = make_synthetic(base/'train', n_per_class=12, size=48)
    other = make_synthetic(base/'other', 'danrasband', n_per_class=16, size=48, signer=1)
    shots, test = base/'my-hand', base/'later'
    for p in sorted(other.rglob('*.jpg')):  # frames 1-3 of each class are the shots, frames 13-16 the test (10 frames later)
        n = int(p.stem.split('_')[0].lstrip(p.parent.name))
        dest = shots if n <= 3 else test if n >= 13 else None
        if dest: (dest/p.parent.name).mkdir(parents=True, exist_ok=True); (dest/p.parent.name/p.name).write_bytes(p.read_bytes())
    r = run_cli('asl-train', '--data', train, '--arch', 'landmarks', '--epochs', 8, '--lr', '1e-2', '--out', base/'runs', '--workers', 0, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return dict(env=env, run=Path(r.stdout.strip().splitlines()[-1]), shots=shots, test=test, train=train)

def test_calibrated_run_reads_the_new_signer(world):
    "The calibrated run beats the base run on the later frames by more than noise, keeps its letters, and leaves its inputs alone"
    before = {k: tree_hash(world[k]) for k in ('run', 'shots', 'train')}
    r = run_cli('asl-calibrate', world['run'], world['shots'], env=world['env'])
    assert r.returncode == 0, r.stderr[-3000:]
    cal = Path(r.stdout.strip().splitlines()[-1])
    assert cal == world['run'].parent/'landmarks-block-calibrated' and 'validation accuracy' in r.stdout
    info = json.loads((cal/'calibration.json').read_text())
    assert set(info['k_per_class'].values()) == {3} and len(info['k_per_class']) == 29 and len(info['shots']) == 87
    assert info['base_run'] == str(world['run']) and info['valid_accuracy']['after'] >= info['valid_accuracy']['before'] - 0.05
    assert {k: tree_hash(world[k]) for k in before} == before  # inputs untouched
    acc = {}
    for run in (world['run'], cal):
        e = run_cli('asl-evaluate', run, '--test', world['test'], '--json', env=world['env'])
        assert e.returncode == 0, e.stderr[-3000:]
        rep = json.loads(e.stdout); acc[run] = (rep['accuracy'], rep['n_images'])
    assert_better(*acc[cal], *acc[world['run']])
    p = run_cli('asl-predict', cal, *sorted(world['test'].rglob('*.jpg'))[:3], '--json', env=world['env'])
    assert p.returncode == 0 and len(json.loads(p.stdout)) == 3, p.stderr[-3000:]
    again = run_cli('asl-calibrate', world['run'], world['shots'], env=world['env'])  # a second calibration never replaces the first
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1].endswith('landmarks-block-calibrated-2'), again.stderr[-2000:]

@pytest.mark.parametrize('case', ['empty shots', 'not a run', 'moved data'])
def test_bad_inputs_are_one_line(world, tmp_path, case):
    "A folder without photos, a folder that is not a run, and a base run whose training data moved: one line naming the fix"
    run, shots = world['run'], world['shots']
    if case == 'empty shots': shots = tmp_path/'empty'; (shots/'A').mkdir(parents=True)
    if case == 'not a run': run = world['shots']
    if case == 'moved data':
        run = tmp_path/'moved-run'; run.mkdir()
        for f in ('model.json', 'model.safetensors'): (run/f).write_bytes((world['run']/f).read_bytes())
        m = json.loads((world['run']/'metrics.json').read_text())
        (run/'metrics.json').write_text(json.dumps(dict(m, data=str(tmp_path/'gone'), config=dict(m['config'], data=str(tmp_path/'gone')))))
    r = run_cli('asl-calibrate', run, shots, '--out', tmp_path/'out', env=world['env'])
    assert r.returncode == 1 and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]
    assert {'empty shots': 'put a few photos of each letter there', 'not a run': 'pass a run folder', 'moved data': '--base-data'}[case] in r.stderr
    assert not (tmp_path/'out').exists()
    if case == 'moved data':  # and naming the data makes it work
        r = run_cli('asl-calibrate', run, shots, '--out', tmp_path/'out', '--base-data', world['train'], env=world['env'])
        assert r.returncode == 0, r.stderr[-2000:]
