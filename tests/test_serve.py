"asl-serve as users run it: a real server process on 127.0.0.1, real HTTP requests (good, bad, concurrent), then stopped."
import io, os, signal, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
import pytest
import requests
from PIL import Image
from conftest import BIN, free_port, run_cli
from asl_lib.onnx_runtime import OnnxModel

LIMITS = dict(max_bytes=300_000, max_pixels=1_000_000, max_files=4)

@pytest.fixture(scope='module')
def exported(small_run, tmp_path_factory):
    "The small ResNet18 run, exported to ONNX (outside the run folder, which other tests read)"
    import torch
    from asl_lib.export import export_onnx
    torch.set_num_threads(1)
    return export_onnx(small_run, out=tmp_path_factory.mktemp('serve')/'onnx')

@pytest.fixture(scope='module')
def server(exported, tmp_path_factory):
    "`asl-serve` in its own process group; yields its base URL, then terminates the group"
    port, log = free_port(), tmp_path_factory.mktemp('log')/'serve.log'
    args = [str(BIN/'asl-serve'), str(exported), '--port', str(port), '--threads', '1',
            *(f"--{k.replace('_', '-')}={v}" for k, v in LIMITS.items())]
    with open(log, 'w') as f:
        proc = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, start_new_session=True, env=dict(os.environ, OMP_NUM_THREADS='1'))
    url = f'http://127.0.0.1:{port}'
    try:
        for _ in range(300):
            if proc.poll() is not None: pytest.fail(f'asl-serve exited {proc.returncode}:\n{log.read_text()[-3000:]}')
            try:
                if requests.get(url + '/health', timeout=1).ok: break
            except requests.ConnectionError: time.sleep(0.1)
        else: pytest.fail(f'asl-serve did not answer within 30 s:\n{log.read_text()[-3000:]}')
        yield dict(url=url, proc=proc, log=log)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try: proc.wait(10)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait()

@pytest.fixture(scope='module')
def photos(synth):
    return sorted(synth['danrasband'].rglob('*.jpg'))[::7]

def post(server, files, **params):
    return requests.post(server['url'] + '/predict', files=files, params=params, timeout=30)

def upload(*paths): return [('files', (p.name, p.read_bytes(), 'image/jpeg')) for p in paths]

def png(w, h)->bytes:
    buf = io.BytesIO(); Image.new('L', (w, h)).save(buf, 'PNG'); return buf.getvalue()

def test_health(server, exported):
    h = requests.get(server['url'] + '/health', timeout=5).json()
    assert (h['status'], h['model']['arch'], h['model']['file'], h['limits']) == ('ok', 'resnet18', str(exported/'model.onnx'), dict(LIMITS, max_busy=4, wait=10))  # busy and wait: the defaults

def test_predictions_are_onnx_predictions(server, exported, photos):
    want = OnnxModel(exported).predict(photos, topk=5, names=[p.name for p in photos])
    r = post(server, upload(photos[0]))
    assert r.status_code == 200 and r.json()[0]['label'] == want[0]['label'] and len(r.json()[0]['topk']) == 3
    r = post(server, upload(*photos[:4]), topk=5)
    assert r.status_code == 200
    assert [(p['input'], p['label'], len(p['topk'])) for p in r.json()] == [(p['input'], p['label'], 5) for p in want[:4]]
    assert all(abs(a['prob'] - b['prob']) < 1e-5 for a, b in zip(r.json(), want))

def test_bad_requests_get_4xx_with_a_message(server, photos):
    one = lambda name, data: [('files', (name, data, 'application/octet-stream'))]
    good = photos[0].read_bytes()
    cases = [('not an image', one('notes.txt', b'hello'), {}, 400, 'notes.txt: not an image'),
             ('empty file', one('empty.jpg', b''), {}, 400, 'empty.jpg: empty file'),
             ('too many files', one('a.jpg', good)*5, {}, 400, 'Too many files'),
             ('too many pixels', one('bomb.png', png(2000, 1000)), {}, 413, '2000x1000 pixels is more than the 1,000,000'),
             ('too many bytes', one('big.jpg', os.urandom(400_000)), {}, 413, 'over the limit of 300,000 bytes'),
             ('topk 0', one('a.jpg', good), dict(topk=0), 422, 'topk'),
             ('topk not a number', one('a.jpg', good), dict(topk='abc'), 422, 'topk'),
             ('one bad among good', one('a.jpg', good) + one('b.jpg', b'\xff\xd8 truncated'), {}, 400, 'b.jpg')]
    for what, files, params, status, msg in cases:
        r = post(server, files, **params)
        assert (r.status_code, msg in r.json()['detail']) == (status, True), (what, r.status_code, r.text[:300])
    r = requests.post(server['url'] + '/predict', data=dict(x='1'), timeout=10)
    assert r.status_code == 400 and 'No image in the request' in r.json()['detail']
    head = b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.jpg"\r\n\r\n'
    r = requests.post(server['url'] + '/predict', data=iter([head] + [b'x'*1000]*400), timeout=10,  # chunked: no Content-Length
                      headers={'content-type': 'multipart/form-data; boundary=b'})
    assert r.status_code == 413, r.text
    assert server['proc'].poll() is None and 'Traceback' not in server['log'].read_text()

def test_concurrent_requests(server, exported, photos):
    want = [p['label'] for p in OnnxModel(exported).predict(photos)]
    with ThreadPoolExecutor(8) as ex:
        rs = list(ex.map(lambda i: post(server, upload(photos[i % len(photos)])), range(16)))
    assert [r.status_code for r in rs] == [200]*16
    assert [r.json()[0]['label'] for r in rs] == [want[i % len(photos)] for i in range(16)]

def test_service_imports_no_torch(exported):
    code = (f"import sys; from asl_lib.serve import make_app; make_app({str(exported)!r}); "
            "assert 'torch' not in sys.modules and 'fastai' not in sys.modules, sorted(sys.modules)")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]

def test_missing_extra_and_bad_model_are_one_line(exported, tmp_path):
    (tmp_path/'fastapi').mkdir(); (tmp_path/'fastapi'/'__init__.py').write_text("raise ImportError('no fastapi here')")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get('PYTHONPATH', '')]))
    r = run_cli('asl-serve', exported, env=env)
    assert (r.returncode, r.stderr.strip()) == (1, 'error: The scoring service needs fastapi (ImportError: no fastapi here): pip install "asl_lib[serve]"')
    r = run_cli('asl-serve', tmp_path)
    assert r.returncode == 1 and 'No ONNX model at' in r.stderr and len(r.stderr.strip().splitlines()) == 1
