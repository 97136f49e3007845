"""`pip install asl_lib` from a wheel, outside this checkout: the package carries the series' notebooks, and `asl-run` runs them.
On a GPU instance that is the common way in; an editable checkout would hide a wheel that forgot them."""
import importlib.util, os, subprocess, sys
from pathlib import Path
import pytest
from asl_lib.runner import SERIES

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location('gpu_bundle', ROOT/'tools'/'gpu_bundle.py')
gpu_bundle = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(gpu_bundle)  # its `build_wheel`: one way to build

def _run(cmd, **kw):
    r = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, **kw)
    assert r.returncode == 0, f'{cmd[:3]} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}'
    return r

@pytest.mark.slow
def test_series_from_an_installed_wheel(tmp_path):
    whl = gpu_bundle.build_wheel(ROOT, tmp_path/'dist')
    site = tmp_path/'site'  # the package alone (its dependencies are this environment's): PYTHONPATH puts it before the editable checkout
    _run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target', site, whl])
    env = {**os.environ, 'PYTHONPATH': str(site), 'MPLBACKEND': 'Agg'}
    away = tmp_path/'elsewhere'; away.mkdir()
    found = _run([sys.executable, '-c', 'import asl_lib, asl_lib.runner as r; print(asl_lib.__file__); print(r.nbs_dir())'], cwd=away, env=env)
    assert found.stdout.split() == [str(site/'asl_lib'/'__init__.py'), str(site/'asl_lib'/'nbs')]
    assert all((site/'asl_lib'/'nbs'/nb).exists() for nb in SERIES)
    r = _run([site/'bin'/'asl-run', '-p', 'archs', '[resnet18]', '--out', 'series'], cwd=away, env=env)
    out = Path(r.stdout.strip().splitlines()[-1])
    assert out == away/'series' and all((out/nb).exists() for nb in SERIES)
    assert (out/"runs.json").exists()  # notebook 03 trained and recorded its run folders
