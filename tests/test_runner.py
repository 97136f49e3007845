"""`asl-run` (papermill) checks and failures. The whole series runs end to end in tests/test_readme.py, through the README's own
`asl-run` commands with Kaggle handles served by the simulated Kaggle (kagglehub ignoring `output_dir`, as on Kaggle notebooks)."""
from pathlib import Path
import pytest
from asl_lib.core import is_owned
from conftest import run_cli, GRASSKNOTED, DANRASBAND

@pytest.mark.parametrize('honour_output_dir', [True, False], ids=['output_dir', 'kaggle-notebook'])
def test_get_data_with_handles(tmp_path, kaggle_zips, honour_output_dir, monkeypatch):
    "`get_data` returns the image roots of both handles whether kagglehub honours `output_dir` (a machine) or not (Kaggle, Colab)"
    from asl_lib.data import get_data, find_image_root
    from asl_lib.testing import simulated_kaggle
    monkeypatch.setenv('ASL_DATA', str(tmp_path/'asl-data'))
    with simulated_kaggle(kaggle_zips, honour_output_dir, cache=tmp_path/'kagglehub'):
        train, test = get_data(GRASSKNOTED, part='train'), get_data(DANRASBAND, part='test')
        assert get_data(GRASSKNOTED, part='train') == train  # a second call finds the first download
    def classes(d): return [o for o in d.iterdir() if o.is_dir()]
    assert train.parts[-2:] == ('asl_alphabet_train', 'asl_alphabet_train') and len(classes(train)) == 29
    assert find_image_root(test)[0] == test and len(classes(test)) == 29

def test_unknown_arch_fails_before_running(tmp_path):
    r = run_cli('asl-run', '-p', 'archs', '[resnet18, resnet1000]', '--out', tmp_path/'s')
    assert r.returncode == 1 and "Unknown architecture 'resnet1000'" in r.stderr
    assert not (tmp_path/'s').exists()

def test_failing_cell_names_notebook_and_keeps_it(tmp_path):
    r = run_cli('asl-run', '-p', 'data', str(tmp_path/'no-such-data'), '--out', tmp_path/'s')
    assert r.returncode == 1 and 'Traceback' not in r.stderr
    assert '00_data.ipynb failed in cell' in r.stderr and 'no-such-data' in r.stderr
    assert (tmp_path/'s/00_data.ipynb').exists() and not (tmp_path/'s/03_train.ipynb').exists()
    assert is_owned(tmp_path/'s')  # the failed series stays, marked as ours: a rerun needs --overwrite, then replaces it
    r = run_cli('asl-run', '-p', 'data', str(tmp_path/'no-such-data'), '--out', tmp_path/'s')
    assert r.returncode == 1 and '--overwrite' in r.stderr

@pytest.mark.parametrize('example', sorted((Path(__file__).parents[1]/'examples').glob('*.yaml')), ids=lambda p: p.name)
def test_examples_are_valid_params(example):
    "Every example parameters file passes the series' checks, and speaks to users (no path of this project's CI)"
    from asl_lib.runner import check_params, read_params
    p = check_params(read_params(str(example)))
    assert 'shared/data' not in example.read_text() and all(p[k] is None or not str(p[k]).startswith('..') for k in ('data', 'test_data'))
