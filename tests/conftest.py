"Shared fixtures: small generated datasets, and the real images in `$ASL_REAL_DATA` when this machine has them."
import subprocess, sys
from pathlib import Path
import pytest
from asl_lib.data import make_synthetic, real_data

BIN = Path(sys.executable).parent

def run_cli(name, *args, **kw):
    "Run the console script `name` with `args`; return the finished process (never raises on a non-zero exit)"
    return subprocess.run([str(BIN/name), *map(str, args)], capture_output=True, text=True, **kw)

@pytest.fixture(scope='session')
def synth(tmp_path_factory):
    "A synthetic dataset in each Kaggle layout: {'grassknoted': Path, 'grassknoted-test': Path, 'danrasband': Path}"
    base = tmp_path_factory.mktemp('synth')
    return {l: make_synthetic(base/l, l, n_per_class=4, size=32) for l in ('grassknoted', 'grassknoted-test', 'danrasband')}

@pytest.fixture
def real():
    "The real images under `$ASL_REAL_DATA` (set by .ci/run when ../shared/data exists); skips the test without them"
    p = real_data()
    if p is None: pytest.skip('no real images: set ASL_REAL_DATA to a folder laid out like ../shared/data')
    return p.parent

@pytest.fixture(scope='session')
def small_run(synth, tmp_path_factory):
    "A ResNet18 run folder trained for one epoch from scratch on generated images"
    from asl_lib.data import make_synthetic
    from asl_lib.train import train
    data = make_synthetic(tmp_path_factory.mktemp('train')/'g', n_per_class=40, size=32)
    return train(data, 'resnet18', epochs=1, size=32, bs=32, lr=1e-2, pretrained=False, out=tmp_path_factory.mktemp('runs'), workers=0)
