"The notebook series through `asl-run` (papermill) on generated data, as users rerun it in batch."
import json
from pathlib import Path
import nbformat, yaml
from asl_lib.runner import SERIES
from asl_lib.train import RUN_FILES
from conftest import run_cli

def test_series_runs_end_to_end(tmp_path):
    params = tmp_path/'params.yaml'
    params.write_text(yaml.safe_dump(dict(archs=['resnet18', 'efficientnet_b0'], epochs=1, size=32, bs=32)))
    out = tmp_path/'series'
    r = run_cli('asl-run', '--params', params, '-p', 'seed', '7', '--out', out)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1] == str(out)
    for nb in SERIES:  # every executed notebook, with its injected parameters
        cells = nbformat.read(out/nb, as_version=4).cells
        assert any('injected-parameters' in c.metadata.get('tags', []) for c in cells), nb
    assert yaml.safe_load((out/'params.yaml').read_text())['seed'] == 7
    runs = [Path(p) for p in json.loads((out/'runs.json').read_text())]
    assert [p.name for p in runs] == ['resnet18-block-32px', 'efficientnet_b0-block-32px'] and all(p.parent == out for p in runs)
    assert {p.name for p in out.iterdir() if p.is_dir()} == {'lr_find', *(p.name for p in runs)}  # nothing but the series' own runs
    for run in runs:
        assert all((run/f).exists() for f in RUN_FILES), run
        assert json.loads((run/'metrics.json').read_text())['seed'] == 7
        evals = list(run.glob('eval-*/report.json'))
        assert len(evals) == 1 and json.loads(evals[0].read_text())['n_images'] == 29*10
    for arch in ('resnet18', 'efficientnet_b0'):
        assert json.loads((out/'lr_find'/arch/'lr_find.json').read_text())['lr'] > 0
    assert (runs[0]/'gradcam.png').exists()

def test_unknown_arch_fails_before_running(tmp_path):
    r = run_cli('asl-run', '-p', 'archs', '[resnet18, resnet1000]', '--out', tmp_path/'s')
    assert r.returncode == 1 and "Unknown architecture 'resnet1000'" in r.stderr
    assert not list((tmp_path/'s').glob('*.ipynb'))

def test_failing_cell_names_notebook_and_keeps_it(tmp_path):
    r = run_cli('asl-run', '-p', 'data', str(tmp_path/'no-such-data'), '--out', tmp_path/'s')
    assert r.returncode == 1
    assert '00_data.ipynb failed in cell' in r.stderr and 'no-such-data' in r.stderr
    assert (tmp_path/'s/00_data.ipynb').exists() and not (tmp_path/'s/03_train.ipynb').exists()
