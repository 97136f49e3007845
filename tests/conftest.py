"Shared fixtures: small generated datasets, the simulated Kaggle serving them, and the real images in `$ASL_REAL_DATA` when this machine has them."
import os, signal, socket, subprocess, sys, tempfile, zipfile
from pathlib import Path
import pytest

# pytest-xdist workers share the cores: each worker's torch, and every command a test starts, gets cores // workers threads. Two
# torch processes with 2 OpenMP threads each on 2 cores spin against each other (measured: a ResNet18 step on a loaded 2-core
# machine took 5 s with 2 threads, 0.6 s with 1). Set before asl_lib.testing imports torch; an explicit OMP_NUM_THREADS wins.
if (_workers := int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', 1))) > 1:
    os.environ.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1) // _workers)))
# A suite started in the background (`pytest &` in a script, some CI runners) inherits SIGINT ignored, and so would every command
# it starts: a test that presses Ctrl-C on a command would then wait for nothing. Catching SIGINT here gives the commands the
# default back (exec resets a caught signal, not an ignored one), as in a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN: signal.signal(signal.SIGINT, signal.default_int_handler)
from asl_lib.data import SIGN_MNIST
from asl_lib.testing import make_sign_mnist, make_synthetic, real_data, simulated_kaggle_env

# asl_lib's cache (resized copies, scan records) goes to a temporary folder, not the home folder; commands inherit it
os.environ.setdefault('ASL_CACHE', tempfile.mkdtemp(prefix='asl_lib-test-cache-'))

BIN = Path(os.environ.get('ASL_BIN') or Path(sys.executable).parent)  # ASL_BIN: where a --target install put the commands (tools/gpu_bundle.py)
GRASSKNOTED, DANRASBAND = 'grassknoted/asl-alphabet', 'danrasband/asl-alphabet-test'

def run_cli(name, *args, **kw):
    "Run the console script `name` with `args`; return the finished process (never raises on a non-zero exit)"
    return subprocess.run([str(BIN/name), *map(str, args)], capture_output=True, text=True, **kw)

def free_port()->int:
    "A TCP port on 127.0.0.1 that nothing listens on now"
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def zip_folder(folder:Path, dest:Path)->Path:
    "Zip the contents of `folder` into `dest`, paths relative to `folder` (as Kaggle serves a dataset)"
    with zipfile.ZipFile(dest, 'w') as z:
        for p in sorted(Path(folder).rglob('*')):
            if p.is_file(): z.write(p, p.relative_to(folder))
    return dest

def kaggle_env(tmp:Path, zips:dict, honour_output_dir:bool=False, **extra)->dict:
    "Environment for subprocesses: the simulated Kaggle serving `zips` (under `tmp/kaggle`), downloads to `tmp/asl-data` (`ASL_DATA`)"
    env = simulated_kaggle_env(Path(tmp)/'kaggle', zips, honour_output_dir)
    env.update(ASL_DATA=str(Path(tmp)/'asl-data'), MPLBACKEND='Agg', **extra)
    return env

@pytest.fixture(scope='session')
def kaggle_zips(tmp_path_factory):
    "Tiny generated stand-ins of the Kaggle datasets (grassknoted, danrasband, Sign-MNIST), zipped as Kaggle serves them: {handle: zip}"
    base = tmp_path_factory.mktemp('kaggle-zips')
    make_synthetic(base/'gk', 'grassknoted', n_per_class=20, size=32)
    make_synthetic(base/'gk-test', 'grassknoted-test', size=32)  # the real zip holds the official test folder too
    for p in (base/'gk-test').iterdir(): p.rename(base/'gk'/p.name)
    make_synthetic(base/'dr', 'danrasband', n_per_class=10, size=32)
    make_sign_mnist(base/'sm', kaggle_folders=True)
    return {GRASSKNOTED: zip_folder(base/'gk', base/'asl-alphabet.zip'), DANRASBAND: zip_folder(base/'dr', base/'asl-alphabet-test.zip'),
            SIGN_MNIST: zip_folder(base/'sm', base/'sign-language-mnist.zip')}

@pytest.fixture(scope='session')
def synth(tmp_path_factory):
    "A synthetic dataset in each Kaggle layout: {'grassknoted': Path, 'grassknoted-test': Path, 'danrasband': Path}"
    base = tmp_path_factory.mktemp('synth')
    return {l: make_synthetic(base/l, l, n_per_class=4, size=32) for l in ('grassknoted', 'grassknoted-test', 'danrasband')}

@pytest.fixture
def real():
    "The real images under `$ASL_REAL_DATA` (set by .ci/run when ../shared/data exists); skips the test without them"
    p = real_data()
    if p is None: pytest.skip('no real images: set ASL_REAL_DATA to a folder holding asl-alphabet/ and external-desk-29/')
    return p.parent

@pytest.fixture(scope='session')
def small_run(synth, tmp_path_factory):
    "A ResNet18 run folder trained for one epoch from scratch on generated images"
    from asl_lib.train import train
    data = make_synthetic(tmp_path_factory.mktemp('train')/'g', n_per_class=40, size=32)
    return train(data, 'resnet18', epochs=1, size=32, bs=32, lr=1e-2, pretrained=False, out=tmp_path_factory.mktemp('runs'), workers=0)
