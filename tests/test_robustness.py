"""Issue 21: two processes on one output, outputs in the wrong place, resource bombs, hostile files, a full disk, SIGTERM, a
diverged model and the scoring service, each tried the way it was found: through the real commands.

Every case checks the exit code, a one-line `error:` message without a traceback, that the inputs are unchanged (tree hashes),
and, for the bombs, memory under a stated bound: the command runs under an address-space limit (`RLIMIT_AS`, `MEM_LIMIT`: torch
alone maps about 3.5 GB of it) and its peak resident memory is read back (`PEAK_MB`).
"""
import errno, http.client, json, os, resource, shutil, signal, socket, subprocess, sys, threading, time, zipfile
from pathlib import Path
from subprocess import PIPE
import pytest
from PIL import Image
from conftest import BIN, run_cli, free_port, zip_folder, make_synthetic
from asl_lib.core import MARKER, owner_info
from asl_lib.testing import tree_hash

TINY = ['--size', '32', '--epochs', '1', '--bs', '16', '--per-class', '4', '--lr', '1e-2', '--no-pretrained', '--workers', '0']
MEM_LIMIT = 5 << 30  # the address space a bombed command may map: the bombs asked for 4-6 GB more than torch's ~3.5 GB
PEAK_MB = 2000  # the resident memory a bombed command may reach (it runs in 600-900 MB)

def one_line(r, *words):
    "`r` failed with exit 1 and one `error:` line holding `words`: no traceback, no 'unexpected error'"
    assert r.returncode == 1, (r.returncode, r.stderr[-3000:])
    assert 'Traceback' not in r.stderr and 'unexpected error' not in r.stderr, r.stderr[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and len(last) < 700, r.stderr[-2000:]
    for w in words: assert w in last, (w, last)

_BOUNDED = """import resource, subprocess, sys
def cap(): resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), int(sys.argv[1])))
r = subprocess.run(sys.argv[3:], preexec_fn=cap)
open(sys.argv[2], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(r.returncode)"""

def run_bounded(tmp:Path, name:str, *args, **kw):
    "Run the console script `name` under `MEM_LIMIT` of address space: (the finished process, its peak resident memory in MB)"
    peak = tmp/f'peak-{time.monotonic_ns()}.txt'
    r = subprocess.run([sys.executable, '-c', _BOUNDED, str(MEM_LIMIT), str(peak), str(BIN/name), *map(str, args)],
                       capture_output=True, text=True, **kw)
    return r, int(peak.read_text()) / 1024

def wait_for(pred, proc=None, timeout:float=300)->bool:
    "Poll `pred` until it holds (True), `proc` ends or `timeout` passes (False)"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred(): return True
        if proc is not None and proc.poll() is not None: return False
        time.sleep(0.1)
    return False

def start(name, *args, **kw)->subprocess.Popen:
    return subprocess.Popen([str(BIN/name), *map(str, args)], stdout=PIPE, stderr=PIPE, text=True, **kw)

def stop(*procs):
    for p in procs:
        if p.poll() is None: p.kill(); p.communicate()

@pytest.fixture(scope='module')
def bigger(tmp_path_factory):
    "Enough generated frames that a training runs for half a minute on one core"
    return make_synthetic(tmp_path_factory.mktemp('bigger')/'data', n_per_class=30, size=32)

# 1. Two processes, one output
def test_two_trainings_one_name(tmp_path, bigger):
    "A second run of the same name goes to NAME-2 and both finish; a third that asks to --overwrite it is refused at once"
    from asl_lib.runs import check_run
    out, before = tmp_path/'runs', tree_hash(bigger)
    common = ['--data', bigger, '--out', out, '--name', 'same']
    procs = [start('asl-train', *common, '--size', '32', '--epochs', '6', '--bs', '16', '--lr', '1e-2', '--no-pretrained', '--workers', '0')]
    a = procs[0]
    try:
        assert wait_for(lambda: (out/'same.partial'/MARKER).exists(), a), a.communicate()[1][-2000:]
        procs.append(b := start('asl-train', *common, *TINY))
        c = run_cli('asl-train', *common, *TINY, '--overwrite')
        assert a.poll() is None, 'the first run finished before the third asked to replace it: make it train longer'
        one_line(c, 'being written by another asl_lib command')
        (bo, be), (ao, ae) = b.communicate(timeout=900), a.communicate(timeout=900)
    finally: stop(*procs)
    assert (a.returncode, b.returncode) == (0, 0), (ae[-2000:], be[-2000:])
    assert (ao.split(), bo.split()) == ([str(out/'same')], [str(out/'same-2')])
    check_run(out/'same'); check_run(out/'same-2')
    assert sorted(p.name for p in out.iterdir()) == ['same', 'same-2']  # no partial, no claim left behind
    assert tree_hash(bigger) == before

def test_two_extractions_one_zip(tmp_path):
    "Two asl-data on one zip: both print the same complete extraction (one waits for the other), still marked as asl_lib's"
    src = make_synthetic(tmp_path/'src', 'danrasband', n_per_class=40, size=64)
    (tmp_path/'zips').mkdir()
    zp = zip_folder(src, tmp_path/'zips'/'photos.zip')
    before = tree_hash(zp)
    procs = [start('asl-data', zp, cwd=tmp_path) for _ in range(2)]
    try: outs = [p.communicate(timeout=300) for p in procs]
    finally: stop(*procs)
    assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for _, e in outs]
    target = tmp_path/'zips'/'photos'
    assert [o.strip().splitlines()[-1] for o, _ in outs] == [str(target)] * 2
    assert owner_info(target)['kind'] == 'extract'
    assert len(list(target.rglob('*.jpg'))) == 29 * 40
    assert sorted(p.name for p in (tmp_path/'zips').iterdir()) == ['photos', 'photos.zip']
    assert tree_hash(zp) == before

# 2. Every path a command writes goes through the same checks
def test_every_output_one_rule(tmp_path, synth, small_run):
    data = shutil.copytree(synth['grassknoted'], tmp_path/'data')
    notes = tmp_path/'notes.txt'; notes.write_text('my notes')
    hashes = {p: tree_hash(p) for p in (data, notes, small_run)}
    tune = ['asl-tune', '--data', data, '--trials', '1', '--out', tmp_path/'tune']
    one_line(run_cli(*tune, '--storage', data/'optuna.journal', cwd=tmp_path), 'overlaps the input')
    one_line(run_cli(*tune, '--storage', f'sqlite:///{data}/optuna.db', cwd=tmp_path), 'overlaps the input')
    one_line(run_cli(*tune, '--storage', notes, cwd=tmp_path), 'that file exists and is not one')
    one_line(run_cli('asl-export', small_run, '--out', small_run, '--overwrite', cwd=tmp_path), 'holds an asl_lib run folder')
    assert {p: tree_hash(p) for p in hashes} == hashes
    assert not (tmp_path/'tune').exists()

# 3. Resource bombs
BOMB = 'a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n' + ''.join(
    f"{chr(98+i)}: &{chr(98+i)} [{', '.join([f'*{chr(97+i)}'] * 9)}]\n" for i in range(8))  # 9**9 strings, 1 KB

def test_yaml_bombs(tmp_path):
    bomb = tmp_path/'bomb.yaml'; bomb.write_text(BOMB)
    assert len(BOMB) < 1100
    for cmd in (['asl-run', '--params', bomb, '--out', tmp_path/'series'], ['asl-tune', '--space', bomb, '--out', tmp_path/'tune']):
        r, peak = run_bounded(tmp_path, *cmd, cwd=tmp_path)
        one_line(r, 'uses the alias *a')
        assert peak < PEAK_MB, peak
    (tmp_path/'set.yaml').write_text('archs: !!set {resnet18: null}\n')
    one_line(run_cli('asl-run', '--params', tmp_path/'set.yaml', '--out', tmp_path/'series', cwd=tmp_path), 'archs is a YAML set')
    one_line(run_cli('asl-run', '--params', '/dev/zero', '--out', tmp_path/'series', cwd=tmp_path), 'characters long')
    assert not (tmp_path/'series').exists() and not (tmp_path/'tune').exists()

def test_image_bombs(tmp_path, synth, small_run):
    "A 144-megapixel PNG (18 KB) is a bad file, listed and left out; a 48-megapixel JPEG is read at reduced scale; memory stays bounded"
    test = shutil.copytree(synth['danrasband'], tmp_path/'test')
    Image.new('1', (12000, 12000)).save(test/'A'/'A0099_test.png')
    Image.new('L', (8000, 6000), 128).save(test/'B'/'B0099_test.jpg', quality=30)
    before = tree_hash(test)
    r, peak = run_bounded(tmp_path, 'asl-evaluate', small_run, '--test', test, '--out', tmp_path/'report', '--json', cwd=tmp_path)
    assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr[-3000:]
    rep = json.loads(r.stdout)
    assert list(rep['bad_files']) == [str(test/'A'/'A0099_test.png')] and 'pixels' in rep['bad_files'][str(test/'A'/'A0099_test.png')]
    assert rep['n_images'] == len(list(synth['danrasband'].rglob('*.jpg'))) + 1  # the 48 MP JPEG was scored
    assert peak < PEAK_MB, peak
    r, peak = run_bounded(tmp_path, 'asl-predict', small_run, test/'A'/'A0099_test.png', test/'B'/'B0099_test.jpg', '--json', cwd=tmp_path)
    preds = json.loads(r.stdout)
    assert r.returncode == 1 and 'pixels' in preds[0]['error'] and 'label' in preds[1] and 'Traceback' not in r.stderr, r.stderr[-2000:]
    assert peak < PEAK_MB, peak
    assert tree_hash(test) == before

def test_zip_bomb(tmp_path):
    "300 MB of zeros in a 300 KB zip: refused before anything is written, naming the limit and how to raise it"
    zp = tmp_path/'bomb.zip'
    with zipfile.ZipFile(zp, 'w', zipfile.ZIP_DEFLATED) as z, z.open('A/A1.jpg', 'w', force_zip64=True) as f:
        for _ in range(300): f.write(bytes(1 << 20))
    assert zp.stat().st_size < 1_000_000
    r, peak = run_bounded(tmp_path, 'asl-data', zp, cwd=tmp_path)
    one_line(r, 'a zip bomb?', 'ASL_MAX_ZIP_RATIO')
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith('peak-')) == ['bomb.zip']

# 4. A message naming the fix, where an unexpected error was
def _hostile(folder:Path):
    "Add a file whose name is not UTF-8, a link into /proc and a broken link to the first class folder of `folder`"
    a = next(folder.rglob('*.jpg')).parent
    shutil.copy(next(a.glob('*.jpg')), a/os.fsdecode(b'caf\xe9.jpg'))  # Latin-1, as old cameras and zips write names
    (a/'proc').symlink_to('/proc/1/cwd')
    (a/'gone.jpg').symlink_to(folder/'no-such-file.jpg')

def test_hostile_files_are_listed(tmp_path, synth, small_run):
    data, test = shutil.copytree(synth['grassknoted'], tmp_path/'data'), shutil.copytree(synth['danrasband'], tmp_path/'test')
    _hostile(data); _hostile(test)
    before = tree_hash(data), tree_hash(test)
    r = run_cli('asl-data', data, '--json', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    bad = json.loads(r.stdout)['bad']
    assert sorted(Path(k).name for k in bad) == ['caf\\xe9.jpg', 'gone.jpg', 'proc'], bad
    r = run_cli('asl-data', data, cwd=tmp_path)  # the same as text, on a terminal's encoding
    assert r.returncode == 0 and 'caf\\xe9.jpg' in r.stdout, r.stderr[-2000:]
    r = run_cli('asl-train', '--data', data, '--out', tmp_path/'runs', *TINY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_cli('asl-evaluate', small_run, '--test', test, '--out', tmp_path/'report', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tree_hash(data), tree_hash(test)) == before
    r = run_cli('asl-data', '/', cwd=tmp_path, timeout=600)  # the whole disk: a bounded look, never a traceback
    assert r.returncode in (0, 1) and 'Traceback' not in r.stderr and 'unexpected error' not in r.stderr, r.stderr[-2000:]

@pytest.fixture
def full_disk(tmp_path):
    "A folder on a 64 KB tmpfs (root only: CI runs as root)"
    d = tmp_path/'full'; d.mkdir()
    if os.geteuid() != 0: pytest.skip('mounting a small tmpfs needs root')
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', str(d)], capture_output=True, text=True)
    if r.returncode: pytest.skip(f'cannot mount a tmpfs here: {r.stderr.strip()}')
    try: yield d
    finally: subprocess.run(['umount', '-l', str(d)])

def test_disk_full(full_disk, tmp_path, synth, small_run):
    "Training and evaluation on a full disk: one line, and nothing half-written left there"
    r = run_cli('asl-train', '--data', synth['grassknoted'], '--out', full_disk, *TINY, cwd=tmp_path)
    one_line(r, 'disk', 'write elsewhere (--out on a disk with room)')
    r = run_cli('asl-evaluate', small_run, '--test', synth['danrasband'], '--out', full_disk/'report', cwd=tmp_path)
    one_line(r, 'disk', 'write elsewhere (--out on a disk with room)')
    assert list(full_disk.iterdir()) == []

def test_tampered_model_files(tmp_path, synth, small_run):
    run = shutil.copytree(small_run, tmp_path/'run')
    photo = next(synth['danrasband'].rglob('*.jpg'))
    good = json.loads((run/'model.json').read_text())
    for change in (dict(size=1e9), dict(size='abc'), dict(size=-32), dict(normalize={})):
        (run/'model.json').write_text(json.dumps({**good, **change}))
        one_line(run_cli('asl-predict', run, photo, '--json', cwd=tmp_path), 'is damaged or was edited')
    (run/'model.json').write_text(json.dumps(good))
    from safetensors.torch import load_file, save_file
    sd = load_file(run/'model.safetensors')
    next(v for v in sd.values() if v.is_floating_point()).fill_(float('nan'))
    save_file(sd, run/'model.safetensors')
    r = run_cli('asl-predict', run, photo, '--json', cwd=tmp_path)
    one_line(r, 'not numbers (NaN or infinite)')
    assert r.stdout == ''  # no JSON with NaN in it

# 5. SIGTERM
def test_sigterm_cleans_up(tmp_path, bigger):
    "A scheduler's SIGTERM: exit 143 with 'terminated', no NAME.partial left; with --nproc 2 the ranks stop too"
    for extra, name in (([], 'one'), (['--nproc', '2'], 'two')):
        env = dict(os.environ, TMPDIR=str(tmp_path/f'tmp-{name}'))
        (tmp_path/f'tmp-{name}').mkdir()
        p = start('asl-train', '--data', bigger, '--out', tmp_path/'runs', '--name', name, '--size', '32', '--epochs', '20',
                  '--bs', '16', '--lr', '1e-2', '--no-pretrained', '--workers', '0', *extra, env=env)
        try:
            assert wait_for(lambda: (tmp_path/'runs'/f'{name}.partial'/MARKER).exists(), p), p.communicate()[1][-2000:]
            time.sleep(2)
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=120)
        finally: stop(p)
        assert (p.returncode, out) == (143, ''), err[-3000:]
        assert err.endswith('\nterminated\n') and 'Traceback' not in err, err[-3000:]  # on a line of its own, after the progress bar
        assert not (tmp_path/'runs'/f'{name}.partial').exists() and not (tmp_path/'runs'/name).exists()
        ranks = [c for c in Path('/proc').glob('[0-9]*/cmdline') if str(tmp_path/f'tmp-{name}') in c.read_bytes().decode(errors='replace')]
        assert not ranks, 'a rank outlived its launcher'
    assert list((tmp_path/'runs').iterdir()) == []

# 6. A diverged model is not a result
def test_diverged_training_is_refused(tmp_path, synth):
    r = run_cli('asl-train', '--data', synth['grassknoted'], '--out', tmp_path/'runs', '--size', '32', '--epochs', '2', '--bs', '16',
                '--per-class', '4', '--lr', '1e6', '--no-pretrained', '--workers', '0', cwd=tmp_path)
    one_line(r, 'Training diverged', 'Lower the learning rate')
    assert not (tmp_path/'runs').exists() or list((tmp_path/'runs').iterdir()) == []

# 7. The scoring service
@pytest.fixture(scope='module')
def exports(small_run, tmp_path_factory):
    "Two exports of models that differ (32 and 48 pixels)"
    from asl_lib.export import export_onnx
    from asl_lib.train import train
    base = tmp_path_factory.mktemp('exports')
    other = train(make_synthetic(base/'g', n_per_class=4, size=48), 'resnet18', epochs=1, size=48, bs=32, lr=1e-2, pretrained=False,
                  out=base/'runs', workers=0)
    return export_onnx(small_run, base/'a'), export_onnx(other, base/'b')

def _serve(folder, port, *args):
    return start('asl-serve', folder, '--port', port, *args)

def test_serve_refuses_a_description_of_another_model(tmp_path, exports):
    a, b = exports
    good = json.loads((a/'model.onnx.json').read_text())
    changes = {'vocab': (dict(vocab=good['vocab'][:-1]), 'scores, not one for each'), 'mean': (dict(normalize=dict(mean=[0, 0], std=[1, 1, 1])), 'normalize.mean'),
               'std': (dict(normalize=dict(mean=[0, 0, 0], std=[1, 0, 1])), 'not positive'), 'size': (dict(size=0), 'size 0'),
               'huge': (dict(size=10**9), 'size 1000000000 '), 'name': (dict(input_name='x'), "not 'x'")}
    for what, (change, words) in changes.items():
        d = shutil.copytree(a, tmp_path/what)
        (d/'model.onnx.json').write_text(json.dumps({**good, **change}))
        one_line(run_cli('asl-serve', d, '--port', free_port(), timeout=120), words)
    swapped = shutil.copytree(a, tmp_path/'swapped')
    shutil.copy(b/'model.onnx', swapped/'model.onnx')
    one_line(run_cli('asl-serve', swapped, '--port', free_port(), timeout=120), 'sha256 differs')
    (swapped/'model.onnx.json').write_text(json.dumps({k: v for k, v in good.items() if k != 'sha256'}))
    one_line(run_cli('asl-serve', swapped, '--port', free_port(), timeout=120), 'not batches of 3 x 32 x 32')

def test_serve_port_taken_or_host_unknown(exports):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); s.listen()
        r = run_cli('asl-serve', exports[0], '--port', s.getsockname()[1], timeout=120)
    one_line(r, 'pass another --port')
    assert 'serving' not in r.stderr
    one_line(run_cli('asl-serve', exports[0], '--host', 'no-such-host.invalid', timeout=120), 'Cannot listen on no-such-host.invalid')

def _wait_health(port, proc):
    def up():
        try:
            c = http.client.HTTPConnection('127.0.0.1', port, timeout=2); c.request('GET', '/health'); return c.getresponse().status == 200
        except OSError: return False
    assert wait_for(up, proc, 120), proc.communicate()[1][-2000:]

def _post(port, name, data):
    "POST one file to /predict: (status, headers, body)"
    boundary = 'asl-test-boundary'
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + data + f'\r\n--{boundary}--\r\n'.encode())
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
    c.request('POST', '/predict', body, {'Content-Type': f'multipart/form-data; boundary={boundary}'})
    r = c.getresponse()
    return r.status, r.headers, r.read()  # headers: case-insensitive

def _hwm_mb(pid)->float:
    "The peak resident memory of process `pid` so far, in MB"
    return next(int(l.split()[1]) for l in Path(f'/proc/{pid}/status').read_text().splitlines() if l.startswith('VmHWM')) / 1024

def test_serve_bounds_work_in_flight(tmp_path, exports):
    "Four 40-megapixel PNGs at once through one slot: served one at a time (memory of one decode), or 503 with Retry-After when waiting too long"
    import io
    buf = io.BytesIO(); Image.new('L', (8000, 5000)).save(buf, 'PNG'); big = buf.getvalue()  # 40 MP, ~40 KB
    port = free_port()
    p = _serve(exports[0], port, '--max-busy', '1', '--wait', '60')
    try:
        _wait_health(port, p)
        base = _hwm_mb(p.pid)
        answers = [None] * 4
        def send(i): answers[i] = _post(port, f'big{i}.png', big)
        threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
        for t in threads: t.start()
        for t in threads: t.join(300)
        assert [a[0] for a in answers] == [200] * 4, [a[2][:200] for a in answers]
        grew = _hwm_mb(p.pid) - base
        # the client that goes away mid-upload: one access line, no traceback
        s = socket.create_connection(('127.0.0.1', port))
        s.sendall(b'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n')
        s.close()
        time.sleep(1)
        assert _post(port, 'small.png', _png(64))[0] == 200
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    assert 'Traceback' not in err, err[-3000:]
    assert grew < 600, f'peak memory grew by {grew:.0f} MB for four 40 MP images: more than one decode at a time?'
    port = free_port()
    p = _serve(exports[0], port, '--max-busy', '1', '--wait', '0')
    try:
        _wait_health(port, p)
        answers = [None] * 4
        threads = [threading.Thread(target=lambda i=i: answers.__setitem__(i, _post(port, f'big{i}.png', big))) for i in range(4)]
        for t in threads: t.start()
        for t in threads: t.join(300)
    finally: p.send_signal(signal.SIGINT); p.communicate(timeout=60)
    busy = [a for a in answers if a[0] == 503]
    assert busy and all(a[1].get('retry-after') == '1' for a in busy), [a[0] for a in answers]
    assert {a[0] for a in answers} == {200, 503}, [a[0] for a in answers]  # the free slot is taken at once, the others are told to retry

def _png(n):
    import io
    buf = io.BytesIO(); Image.new('RGB', (n, n), (120, 80, 40)).save(buf, 'PNG'); return buf.getvalue()

# 8. Nothing written outside what the user asked for
def test_export_and_serve_leave_home_alone(tmp_path, small_run):
    home = tmp_path/'home'; home.mkdir()
    env = dict(os.environ, HOME=str(home), MPLCONFIGDIR=str(tmp_path/'mpl'))
    env.pop('ORT_DISABLE_TELEMETRY', None)
    r = run_cli('asl-export', small_run, '--out', tmp_path/'onnx', env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    port = free_port()
    p = start('asl-serve', tmp_path/'onnx', '--port', port, env=env, cwd=tmp_path)
    try:
        _wait_health(port, p)
        assert _post(port, 'a.png', _png(64))[0] == 200
    finally: p.send_signal(signal.SIGINT); p.communicate(timeout=60)
    assert sorted(str(p.relative_to(home)) for p in home.rglob('*')) == []
