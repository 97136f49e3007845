"`asl-evaluate` and `asl-predict` as a user runs them."
import json, os, shutil
from pathlib import Path
import pandas as pd
import pytest
from conftest import run_cli

@pytest.fixture(scope='module')
def run(small_run):
    "The trained run folder, with model.json + model.safetensors (written here for a run folder from before `train` wrote them)"
    if not (small_run/'model.json').exists():
        from asl_lib.inference import load_model
        from asl_lib.runs import export_portable
        export_portable(load_model(small_run/'model.pkl', trust_pickle=True), small_run)
    return small_run

def test_evaluate_json_agrees_with_predictions(run, synth):
    r = run_cli('asl-evaluate', run, '--test', synth['danrasband'], '--json')
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout)
    assert rep['n_images'] == 29*4 and set(rep['per_class']) == set(pd.read_csv(run/'confusion_matrix.csv', index_col=0).index)
    df = pd.read_csv(Path(rep['report_dir'])/'predictions.csv')
    assert abs(rep['accuracy'] - (df.actual == df.predicted).mean()) < 1e-9
    for c, v in rep['per_class'].items():
        assert v['support'] == (df.actual == c).sum() and abs(v['recall'] - (df[df.actual == c].predicted == c).mean()) < 1e-9
    assert Path(rep['report_dir']) == run/f"eval-{synth['danrasband'].name}"

def test_evaluate_partial_and_unknown_classes(run, synth, tmp_path):
    d = shutil.copytree(synth['danrasband'], tmp_path/'partial')
    shutil.rmtree(d/'del'); shutil.rmtree(d/'B'); shutil.copytree(d/'A', d/'peace')
    r = run_cli('asl-evaluate', run/'model.pkl', '--trust-pickle', '--test', d, '--out', tmp_path/'report', '--json')
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout)
    assert rep['missing_classes'] == ['B', 'del'] and rep['unknown_classes'] == {'peace': 4}
    assert rep['n_images'] == 27*4 and 'B, del' in rep['note']
    assert (tmp_path/'report/report.json').exists()
    r = run_cli('asl-evaluate', run, '--test', synth['grassknoted-test'])
    assert r.returncode == 0 and 'accuracy' in r.stdout.splitlines()[0] and 'no images of del' in r.stdout

def test_predict_lines_and_errors(run, synth, tmp_path):
    img = sorted(synth['danrasband'].rglob('*.jpg'))[0]
    (tmp_path/'bad.jpg').write_bytes(b'\xff\xd8 not really')
    r = run_cli('asl-predict', run, img, tmp_path/'missing.jpg', tmp_path/'bad.jpg', '--topk', '2')
    assert r.returncode == 1
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3
    path, label, prob, top = lines[0].split('\t')
    assert path == str(img) and 0 <= float(prob) <= 1 and len(top.split()) == 2 and top.split()[0].startswith(label + ':')
    assert 'missing.jpg' in lines[1] and 'no such file' in lines[1] and 'bad.jpg' in lines[2] and 'unreadable' in lines[2]
    r = run_cli('asl-predict', run, img, '--json')
    assert r.returncode == 0 and json.loads(r.stdout)[0]['label'] == label

def test_predict_rejects_foreign_model(synth, tmp_path):
    (tmp_path/'model.pkl').write_text('hello')
    img = sorted(synth['danrasband'].rglob('*.jpg'))[0]
    r = run_cli('asl-predict', tmp_path, img)
    assert r.returncode == 1 and 'older asl_lib' in r.stderr and '--trust-pickle' in r.stderr and 'Traceback' not in r.stderr
    r = run_cli('asl-predict', tmp_path, img, '--trust-pickle')
    assert r.returncode == 1 and 'model.pkl is not a fastai export' in r.stderr and 'Traceback' not in r.stderr

def _tree(p:Path)->dict: return {str(o.relative_to(p)): o.read_bytes() if o.is_file() else None for o in sorted(p.rglob('*'))}

def test_evaluate_never_replaces_a_user_folder(run, synth, tmp_path):
    test = shutil.copytree(synth['danrasband'], tmp_path/'w'/'test')
    mine = tmp_path/'w'/'mine'; (mine/'sub').mkdir(parents=True)
    (mine/'thesis.txt').write_text('years of work'); (mine/'sub'/'data.csv').write_text('1,2')
    before = {p: _tree(p) for p in (tmp_path/'w', test, mine)}
    for out in (mine, test, '..', '.'):
        r = run_cli('asl-evaluate', run, '--test', test, '--out', out, cwd=mine/'sub')
        assert r.returncode == 1 and 'Traceback' not in r.stderr and 'error: ' in r.stderr, (out, r.stderr[-2000:])
    r = run_cli('asl-evaluate', run, '--test', test, '--bs', '0')
    assert r.returncode == 1 and 'bs must be' in r.stderr
    assert {p: _tree(p) for p in before} == before

def test_evaluate_reports_per_test_folder(run, synth, tmp_path):
    a = shutil.copytree(synth['danrasband'], tmp_path/'a'/'photos')
    b = shutil.copytree(synth['danrasband'], tmp_path/'b'/'photos')
    dirs = [json.loads(run_cli('asl-evaluate', run, '--test', t, '--json').stdout)['report_dir'] for t in (a, b, a)]
    assert Path(dirs[0]).name == 'eval-photos' and Path(dirs[1]).name == 'eval-photos-2' and dirs[2] == dirs[0]
    for d, t in zip(dirs, (a, b)): assert Path(json.loads((Path(d)/'report.json').read_text())['test_root']).resolve() == t.resolve()

@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only folders')
def test_evaluate_read_only_output(run, synth, tmp_path):
    ro = tmp_path/'ro'; ro.mkdir(); ro.chmod(0o555)
    try: r = run_cli('asl-evaluate', run, '--test', synth['danrasband'], '--out', ro/'report')
    finally: ro.chmod(0o755)
    assert r.returncode == 1 and 'Cannot create' in r.stderr and 'Traceback' not in r.stderr
