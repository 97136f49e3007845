"Shared fixtures: small generated datasets, and the real images in `$ASL_REAL_DATA` when this machine has them."
import os, shutil, subprocess, sys
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
