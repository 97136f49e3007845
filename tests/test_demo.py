"The web demo as its users meet it: through Gradio's API (`gradio_client`) and, in the slow test, in a real headless Chromium."
import os, shutil, signal, subprocess, sys, time
from pathlib import Path
from urllib.parse import urlparse
from unittest.mock import patch
import pytest
from PIL import Image
from conftest import BIN
from asl_lib.core import run_cli
from asl_lib.inference import load_model, predict
from asl_lib.testing import real_data

@pytest.fixture(scope='module')
def learn(small_run): return load_model(small_run)

@pytest.fixture(scope='module')
def served(small_run):
    "The demo of `small_run`, served in this process as `asl-demo` serves it: (url, app)"
    from asl_lib.demo import demo_app, launch_demo
    app = demo_app(small_run)
    url = launch_demo(app)
    yield url
    app.close()

@pytest.fixture(scope='module')
def client(served):
    from gradio_client import Client
    return Client(served, verbose=False)

def _photos(synth): return sorted(synth['danrasband'].rglob('*.jpg'))[::23][:3]

def test_api_gives_predicts_letters_and_a_gradcam(client, learn, synth):
    "The page's API gives, for each photo, `predict`'s top three letters in its order, and the Grad-CAM image"
    from gradio_client import handle_file
    for photo in _photos(synth):
        letters, cam = client.predict(handle_file(str(photo)), api_name='/predict')
        best = predict(learn, [photo])[0]
        confs = [c['confidence'] for c in letters['confidences']]
        assert letters['label'] == best['label'] == letters['confidences'][0]['label']
        assert [c['label'] for c in letters['confidences']] == [l for l, _ in best['topk']]
        assert confs == sorted(confs, reverse=True) and 0 < sum(confs) <= 1 + 1e-6
        assert confs == pytest.approx([v for _, v in best['topk']], abs=1e-5)
        with Image.open(cam) as im: assert im.width > 100 and im.height > 100

def test_bad_uploads_get_a_message_not_a_traceback(client, tmp_path, capfd):
    "A file that is not a photo, or none, gets a one-line message on the page; the server logs no traceback"
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    (tmp_path/'notes.txt').write_text('not a photo')
    (tmp_path/'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 truncated')
    for f, msg in [('notes.txt', 'notes.txt is not a photo'), ('broken.jpg', 'broken.jpg is not a photo')]:
        with pytest.raises(AppError, match=msg): client.predict(handle_file(str(tmp_path/f)), api_name='/predict')
    with pytest.raises(AppError, match='No photo yet'): client.predict(None, api_name='/predict')
    assert 'Traceback' not in capfd.readouterr().err

def test_demo_listens_on_localhost_only(served):
    assert urlparse(served).hostname == '127.0.0.1'

def test_missing_gradio_is_one_line(small_run, capsys):
    "Without gradio, asl-demo says how to install it, in one line, before loading the model"
    from asl_lib.demo import asl_demo
    with patch.dict(sys.modules, {'gradio': None}): rc = run_cli(asl_demo, [str(small_run)])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err == 'error: The web demo needs gradio: pip install "asl_lib[demo]"', err

# The slow test: the page in a real browser, started by the command users run

def _chromium()->str:
    "Debian's chromium, installed with apt-get when missing (as root); skip with the reason when it cannot be"
    if exe := shutil.which('chromium'): return exe
    if os.geteuid() != 0 or not shutil.which('apt-get'):
        pytest.skip('no chromium on PATH, and apt-get cannot install it here (not root): run `apt-get install -y chromium`')
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    r = subprocess.run(['apt-get', 'install', '-y', 'chromium'], capture_output=True, text=True, env=env)
    if r.returncode:  # the package lists may be missing or stale
        subprocess.run(['apt-get', 'update'], capture_output=True, env=env)
        r = subprocess.run(['apt-get', 'install', '-y', 'chromium'], capture_output=True, text=True, env=env)
    if r.returncode or not shutil.which('chromium'):
        pytest.skip(f"apt-get install -y chromium failed: {(r.stderr.strip().splitlines() or ['exit %d' % r.returncode])[-1]}")
    return shutil.which('chromium')

def _photo(synth)->Path:
    "A real photo from `$ASL_REAL_DATA` when there are some, else a generated one"
    real = real_data('external-desk-29')
    return sorted(real.rglob('*.jpg'))[0] if real else _photos(synth)[0]

def _start_demo(run, log:Path)->tuple:
    "`asl-demo RUN` in a subprocess, its stderr into the file `log` (a pipe nobody reads fills up and blocks the server): (process, the address it printed)"
    with open(log, 'w') as err:
        proc = subprocess.Popen([str(BIN/'asl-demo'), str(run)], stdout=subprocess.PIPE, stderr=err, text=True, env=dict(os.environ, MPLBACKEND='Agg'))
    url = proc.stdout.readline().strip()
    if not url: proc.kill(); proc.wait(); pytest.fail(f"asl-demo printed no address: {log.read_text()[-3000:]}")
    return proc, url

def _stop_demo(proc)->int:
    "Ctrl-C on a server `_start_demo` started, and its exit status; one that does not stop in 90 s (a loaded machine takes its time) is killed, not left running"
    proc.send_signal(signal.SIGINT)
    try: return proc.wait(timeout=90)
    except subprocess.TimeoutExpired: proc.kill(); proc.wait(); raise

@pytest.mark.slow
def test_page_in_headless_chromium(small_run, learn, synth, tmp_path):
    "Upload a photo: the letter shown is `predict`'s, with its Grad-CAM, and nothing comes from outside this machine"
    sync_api = pytest.importorskip('playwright.sync_api', reason='playwright is not installed: pip install playwright')
    exe, photo, t0 = _chromium(), _photo(synth), time.time()
    expected = predict(learn, [photo])[0]['label']
    proc, url = _start_demo(small_run, log := tmp_path/'asl-demo.err')
    outside, shot = [], tmp_path/'demo.png'
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, headless=True)
            ctx = browser.new_context(viewport=dict(width=1200, height=900))
            ctx.on('request', lambda r: urlparse(r.url).hostname not in (None, '127.0.0.1', 'localhost') and outside.append(r.url))
            ctx.set_default_timeout(90_000)  # a loaded 2-core machine runs the model, the server and the browser at once
            page = ctx.new_page()
            page.goto(url)
            page.get_by_role('tab', name='Photo').click()
            page.locator('#photo input[type=file]').set_input_files(str(photo))
            page.locator('#photo img').wait_for()  # the upload is shown, and read as it arrives: no button to press
            shown = page.locator('#letters').get_by_test_id('label-output-value')
            shown.wait_for()
            page.locator('#explain img').wait_for()
            letter = shown.inner_text().strip()
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
    finally:
        rc = _stop_demo(proc)
    print(f'browser test: {time.time() - t0:.1f} s wall (photo {photo.name})')
    assert letter == expected, (letter, expected)
    assert shot.stat().st_size > 10_000
    assert not outside, f'the page fetched from outside this machine: {outside[:5]}'
    assert rc == 130, log.read_text()[-3000:]
