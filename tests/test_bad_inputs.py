"""The bad-input matrix (issue 11): every bad argument, unlucky output folder and broken file gets a message and an exit code,
never a traceback, and leaves every input and every neighbouring folder byte-for-byte as it was.

Each case runs one command from `cwd = tmp/work/here`, beside two sentinel folders (`tmp/work/sentinel`, inside `..`, and
`tmp/sentinel`), and checks: the exit code, `error:`-style output without "Traceback" (and the words the message must hold), and a
sha256 tree hash of every input tree and both sentinels before and after.
"""
import hashlib, os, pickle, shutil, signal, subprocess, time, zipfile
from pathlib import Path
import pytest
from conftest import BIN, run_cli, zip_folder, kaggle_env, make_synthetic, DANRASBAND

TINY_TRAIN = ['--size', '32', '--epochs', '1', '--bs', '16', '--per-class', '4', '--lr', '1e-2', '--no-pretrained', '--workers', '0']

def tree_sha(p:Path)->str:
    "sha256 of every relative path, file mode and file's bytes below `p` (or of the file `p`); 'absent' when it does not exist"
    p, h = Path(p), hashlib.sha256()
    if not p.exists(): return 'absent'
    for f in sorted([p] if p.is_file() else p.rglob('*')):
        h.update(str(f.relative_to(p) if f != p else f.name).encode() + b'\0' + oct(f.stat().st_mode).encode())
        if f.is_file(): h.update(f.read_bytes())
    return h.hexdigest()

@pytest.fixture
def ctx(tmp_path, synth, small_run):
    "Fresh inputs for one case: training data, a test set, a user folder, sentinels, a regular file to put outputs under"
    t = tmp_path
    shutil.copytree(synth['grassknoted'], t/'data')
    shutil.copytree(synth['danrasband'], t/'test')
    for s in (t/'sentinel', t/'work'/'sentinel', t/'user'/'sub'):
        s.mkdir(parents=True); (s/'keep.txt').write_text('mine')
    (t/'user'/'thesis.txt').write_text('three years of work')
    (t/'work'/'here').mkdir()
    (t/'afile').write_text('a regular file: nothing can be created under it (chmod does not stop root)')
    shutil.copy(next((t/'test').rglob('*.jpg')), t/'photo.jpg')
    return dict(t=t, cwd=t/'work'/'here', run=small_run, data=t/'data', test=t/'test', user=t/'user', photo=t/'photo.jpg')

def corrupt_zip(t:Path)->Path:
    "A zip of a test set whose one member's bytes are damaged (its CRC fails on extraction)"
    (t/'zips').mkdir()
    zp = zip_folder(t/'test', t/'zips'/'corrupt.zip')
    with zipfile.ZipFile(zp) as z: info = z.infolist()[3]
    b = bytearray(zp.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start + 50, start + 150): b[i] ^= 0xFF
    zp.write_bytes(bytes(b))
    return zp

def camera_folder(t:Path)->Path:
    "A flat folder of photos named the way cameras name them (P1010001.JPG): no ASL label in any name"
    src = sorted((t/'test').rglob('*.jpg'))
    (t/'camera').mkdir()
    for i, f in enumerate(src[:30]): shutil.copy(f, t/'camera'/f'P10100{i+1:02d}.JPG')
    return t/'camera'

def yaml_file(t:Path, text:str)->Path:
    (t/'params.yaml').write_text(text); return t/'params.yaml'

# name: (argv from ctx, expected exit code(s), words the message holds, inputs to hash besides data/test/user/run/sentinels)
CASES = {
    # 1. --out of asl-evaluate at folders that are not asl_lib's
    'evaluate-out-user-folder': (lambda c: ['asl-evaluate', c['run'], '--test', c['test'], '--out', c['user']], 1, [], []),
    'evaluate-out-test-set':    (lambda c: ['asl-evaluate', c['run'], '--test', c['test'], '--out', c['test']], 1, [], []),
    'evaluate-out-parent':      (lambda c: ['asl-evaluate', c['run'], '--test', c['test'], '--out', '..'], 1, [], []),
    'evaluate-out-cwd':         (lambda c: ['asl-evaluate', c['run'], '--test', c['test'], '--out', '.'], 1, [], []),
    # 2. --overwrite aimed at the training data, or at a user folder
    'train-overwrite-data':     (lambda c: ['asl-train', '--data', c['data'], '--out', c['t'], '--name', 'data', '--overwrite', *TINY_TRAIN], 1, [], []),
    'train-overwrite-user':     (lambda c: ['asl-train', '--data', c['data'], '--out', c['t'], '--name', 'user', '--overwrite', *TINY_TRAIN], 1, [], []),
    # argument ranges
    'train-size-negative':      (lambda c: ['asl-train', '--data', c['data'], *TINY_TRAIN, '--size', '-5'], 1, ['size'], []),
    'train-epochs-0':           (lambda c: ['asl-train', '--data', c['data'], *TINY_TRAIN, '--epochs', '0'], 1, ['epochs'], []),
    'train-bs-0':               (lambda c: ['asl-train', '--data', c['data'], *TINY_TRAIN, '--bs', '0'], 1, ['bs'], []),
    'train-per-class-0':        (lambda c: ['asl-train', '--data', c['data'], *TINY_TRAIN, '--per-class', '0'], 1, ['per'], []),
    'predict-topk-0':           (lambda c: ['asl-predict', c['run'], c['photo'], '--topk', '0'], 1, ['topk'], []),
    'evaluate-bs-0':            (lambda c: ['asl-evaluate', c['run'], '--test', c['test'], '--bs', '0'], 1, ['bs'], []),
    # broken inputs
    'data-corrupt-zip-member':  (lambda c: ['asl-data', corrupt_zip(c['t'])], 1, [], ['zips/corrupt.zip']),
    'data-camera-flat-folder':  (lambda c: ['asl-data', camera_folder(c['t'])], 1, [], ['camera']),
    'evaluate-camera-flat-folder': (lambda c: ['asl-evaluate', c['run'], '--test', camera_folder(c['t'])], 1, [], ['camera']),
    'predict-no-images':        (lambda c: ['asl-predict', c['run']], 2, ['image'], []),
    'predict-folder-as-image':  (lambda c: ['asl-predict', c['run'], c['test']], 1, ['folder'], []),
    # output folders that cannot be written (a path under a regular file: root ignores chmod)
    'train-out-unwritable':     (lambda c: ['asl-train', '--data', c['data'], *TINY_TRAIN, '--out', c['t']/'afile'/'runs'], 1, [], ['afile']),
    'evaluate-out-unwritable':  (lambda c: ['asl-evaluate', c['run'], '--test', c['test'], '--out', c['t']/'afile'/'report'], 1, [], ['afile']),
    'run-out-unwritable':       (lambda c: ['asl-run', '-p', 'archs', '[resnet18]', '--out', c['t']/'afile'/'s'], 1, [], ['afile']),
    # the series: every parameter checked before a kernel starts
    'run-yaml-invalid':         (lambda c: ['asl-run', '--params', yaml_file(c['t'], 'epochs: [2\n'), '--out', c['t']/'s'], 1, ['YAML'], ['params.yaml']),
    'run-yaml-not-mapping':     (lambda c: ['asl-run', '--params', yaml_file(c['t'], '- epochs\n'), '--out', c['t']/'s'], 1, ['params.yaml'], ['params.yaml']),
    'run-yaml-missing':         (lambda c: ['asl-run', '--params', c['t']/'missing.yaml', '--out', c['t']/'s'], 1, ['missing.yaml'], []),
    'run-epochs-abc':           (lambda c: ['asl-run', '-p', 'epochs', 'abc', '--out', c['t']/'s'], 1, ['epochs'], []),
    'run-size-negative':        (lambda c: ['asl-run', '-p', 'size', '-5', '--out', c['t']/'s'], 1, ['size'], []),
    'run-lr-text':              (lambda c: ['asl-run', '-p', 'lr', 'fast', '--out', c['t']/'s'], 1, ['lr'], []),
    'run-pretrained-text':      (lambda c: ['asl-run', '-p', 'pretrained', 'maybe', '--out', c['t']/'s'], 1, ['pretrained'], []),
    'run-unknown-name':         (lambda c: ['asl-run', '-p', 'epoch', '3', '--out', c['t']/'s'], 1, ['epoch'], []),
    'run-unknown-arch':         (lambda c: ['asl-run', '-p', 'archs', '[resnet1000]', '--out', c['t']/'s'], 1, ['resnet1000'], []),
    'run-unknown-split':        (lambda c: ['asl-run', '-p', 'split', 'leaky', '--out', c['t']/'s'], 1, ['leaky'], []),
    'run-out-user-folder':      (lambda c: ['asl-run', '--out', c['user']], 1, [], []),
    'run-overwrite-user-folder': (lambda c: ['asl-run', '--out', c['user'], '--overwrite'], 1, [], []),
    'run-out-is-data':          (lambda c: ['asl-run', '-p', 'data', c['data'], '--out', c['data']/'series'], 1, [], []),
    'run-out-cwd':              (lambda c: ['asl-run', '--out', '.'], 1, [], []),
    'run-out-parent':           (lambda c: ['asl-run', '--out', '..', '--overwrite'], 1, [], []),
}

@pytest.mark.parametrize('case', list(CASES))
def test_bad_input(case, ctx):
    argv, codes, words, more = CASES[case]
    t = ctx['t']
    argv = [str(a) for a in argv(ctx)]
    watched = [ctx['data'], ctx['test'], ctx['user'], ctx['run'], t/'sentinel', t/'work'/'sentinel', *(t/m for m in more)]
    before = {p: tree_sha(p) for p in watched}
    r = run_cli(*argv, cwd=ctx['cwd'], env={**os.environ, 'MPLBACKEND': 'Agg'}, timeout=900)
    msg = r.stderr[-3000:]
    assert r.returncode in ([codes] if isinstance(codes, int) else codes), f'{argv}: exit {r.returncode}\n{msg}'
    assert 'Traceback' not in r.stderr, msg
    assert 'error' in r.stderr.lower(), msg
    for w in words: assert w.lower() in r.stderr.lower(), f'{w!r} not in {msg}'
    for p, h in before.items(): assert tree_sha(p) == h, f'{p} changed'
    assert not list(t.rglob('*.partial')), 'a partial folder was left'
    if argv[0] == 'asl-run': assert not list(t.rglob('*.ipynb')), 'a notebook ran before the parameters were checked'

def test_extraction_beside_zip_in_read_only_folder(tmp_path, synth):
    "A zip in a folder the user cannot write to: a message, not a traceback (root writes anyway, so only as a regular user)"
    if os.geteuid() == 0: pytest.skip('running as root: chmod does not stop root from writing, so a read-only folder cannot be simulated')
    (tmp_path/'ro').mkdir()
    zp = zip_folder(synth['danrasband'], tmp_path/'ro'/'t.zip')
    os.chmod(tmp_path/'ro', 0o555)
    try:
        before = tree_sha(tmp_path/'ro')
        r = run_cli('asl-data', zp, cwd=tmp_path)
        assert r.returncode == 1 and 'Traceback' not in r.stderr and tree_sha(tmp_path/'ro') == before, r.stderr
    finally: os.chmod(tmp_path/'ro', 0o755)

def test_data_dest_user_partial(tmp_path, kaggle_zips):
    "`asl-data owner/name --dest DIR` leaves a user folder named DIR/owner/name.partial alone"
    user = tmp_path/'dest'/'danrasband'/'asl-alphabet-test.partial'
    user.mkdir(parents=True); (user/'thesis.txt').write_text('mine')
    before = tree_sha(user)
    r = run_cli('asl-data', DANRASBAND, '--dest', tmp_path/'dest', cwd=tmp_path, env=kaggle_env(tmp_path, kaggle_zips, True))
    assert r.returncode in (0, 1) and 'Traceback' not in r.stderr, r.stderr[-3000:]
    assert tree_sha(user) == before

def test_touched_zip_is_still_the_same_zip(tmp_path, synth):
    "A zip whose bytes are unchanged but whose mtime is new is not refused as 'not extracted from this zip'"
    (tmp_path/'z').mkdir()
    zp = zip_folder(synth['danrasband'], tmp_path/'z'/'t.zip')
    r1 = run_cli('asl-data', zp, cwd=tmp_path)
    os.utime(zp, (time.time() + 60, time.time() + 60))
    r2 = run_cli('asl-data', zp, cwd=tmp_path)
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr[-2000:] + r2.stderr[-2000:]
    assert r1.stdout.strip().splitlines()[-1] == r2.stdout.strip().splitlines()[-1]

def test_offline_hint_names_real_options(tmp_path):
    "Offline, the hint of asl-train does not suggest a flag asl-train does not have (--method)"
    env = kaggle_env(tmp_path, None)
    r = run_cli('asl-train', '--data', 'someone/some-asl-set', *TINY_TRAIN, '--out', tmp_path/'runs', cwd=tmp_path, env=env)
    assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr[-3000:]
    assert all('asl-data' in l for l in r.stderr.splitlines() if '--method' in l), r.stderr[-3000:]  # only asl-data has --method

def test_evaluate_keeps_report_of_another_test_set_with_same_name(tmp_path, synth, small_run):
    "Two test folders with the same base name: the second evaluation does not silently replace the first report"
    for d in ('a', 'b'): shutil.copytree(synth['danrasband'], tmp_path/d/'test')
    r1 = run_cli('asl-evaluate', small_run, '--test', tmp_path/'a'/'test', cwd=tmp_path)
    assert r1.returncode == 0, r1.stderr[-3000:]
    reports = {p: tree_sha(p) for p in Path(small_run).glob('eval-*') if p.is_dir()}
    r2 = run_cli('asl-evaluate', small_run, '--test', tmp_path/'b'/'test', cwd=tmp_path)
    assert r2.returncode in (0, 1) and 'Traceback' not in r2.stderr, r2.stderr[-3000:]
    assert all(tree_sha(p) == h for p, h in reports.items()), 'the first report was replaced'

class Evil:
    def __reduce__(self): return (os.system, (f'touch {Evil.target}',))

@pytest.mark.parametrize('fmt', ['pickle', 'torch.save'])
@pytest.mark.parametrize('cmd', ['asl-predict', 'asl-evaluate'])
def test_malicious_pickle_does_not_run(tmp_path, synth, cmd, fmt):
    "A model file that would create a file when unpickled, passed with default flags, must not create it"
    import torch
    Evil.target = tmp_path/'pwned'
    f = tmp_path/'model.pkl'
    if fmt == 'pickle': f.write_bytes(pickle.dumps(Evil()))
    else: torch.save(Evil(), f)
    img = next(Path(synth['danrasband']).rglob('*.jpg'))
    argv = [f, img] if cmd == 'asl-predict' else [f, '--test', synth['danrasband'], '--out', tmp_path/'report']
    r = run_cli(cmd, *argv, cwd=tmp_path)
    assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr[-3000:]
    assert not Evil.target.exists(), 'unpickling ran code'

def test_ctrl_c_during_training(tmp_path):
    "SIGINT while training: exit 130, 'interrupted', no traceback, no .partial left"
    data = make_synthetic(tmp_path/'d', n_per_class=40, size=32)
    p = subprocess.Popen([str(BIN/'asl-train'), '--data', str(data), '--out', str(tmp_path/'runs'), *TINY_TRAIN, '--per-class', '40',
                          '--epochs', '30'], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 600
        while not list((tmp_path/'runs').glob('*.partial')) and p.poll() is None and time.time() < deadline: time.sleep(0.2)
        time.sleep(2)  # inside training
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=300)
    finally:
        if p.poll() is None: p.kill()
    assert p.returncode == 130 and 'interrupted' in err and 'Traceback' not in err, err[-3000:]
    assert not list((tmp_path/'runs').glob('*.partial'))
