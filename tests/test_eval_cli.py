"`asl-evaluate` and `asl-predict` as a user runs them."
import json, shutil
from pathlib import Path
import pandas as pd
from conftest import run_cli

def test_evaluate_json_agrees_with_predictions(small_run, synth):
    r = run_cli('asl-evaluate', small_run, '--test', synth['danrasband'], '--json')
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout)
    assert rep['n_images'] == 29*4 and set(rep['per_class']) == set(pd.read_csv(small_run/'confusion_matrix.csv', index_col=0).index)
    df = pd.read_csv(Path(rep['report_dir'])/'predictions.csv')
    assert abs(rep['accuracy'] - (df.actual == df.predicted).mean()) < 1e-9
    for c, v in rep['per_class'].items():
        assert v['support'] == (df.actual == c).sum() and abs(v['recall'] - (df[df.actual == c].predicted == c).mean()) < 1e-9
    assert Path(rep['report_dir']) == small_run/f"eval-{synth['danrasband'].name}"

def test_evaluate_partial_and_unknown_classes(small_run, synth, tmp_path):
    d = shutil.copytree(synth['danrasband'], tmp_path/'partial')
    shutil.rmtree(d/'del'); shutil.rmtree(d/'B'); shutil.copytree(d/'A', d/'peace')
    r = run_cli('asl-evaluate', small_run/'model.pkl', '--test', d, '--out', tmp_path/'report', '--json')
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout)
    assert rep['missing_classes'] == ['B', 'del'] and rep['unknown_classes'] == {'peace': 4}
    assert rep['n_images'] == 27*4 and 'B, del' in rep['note']
    assert (tmp_path/'report/report.json').exists()
    r = run_cli('asl-evaluate', small_run, '--test', synth['grassknoted-test'])
    assert r.returncode == 0 and 'accuracy' in r.stdout.splitlines()[0] and 'no images of del' in r.stdout

def test_predict_lines_and_errors(small_run, synth, tmp_path):
    img = sorted(synth['danrasband'].rglob('*.jpg'))[0]
    (tmp_path/'bad.jpg').write_bytes(b'\xff\xd8 not really')
    r = run_cli('asl-predict', small_run, img, tmp_path/'missing.jpg', tmp_path/'bad.jpg', '--topk', '2')
    assert r.returncode == 1
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3
    path, label, prob, top = lines[0].split('\t')
    assert path == str(img) and 0 <= float(prob) <= 1 and len(top.split()) == 2 and top.split()[0].startswith(label + ':')
    assert 'missing.jpg' in lines[1] and 'no such file' in lines[1] and 'bad.jpg' in lines[2] and 'unreadable' in lines[2]
    r = run_cli('asl-predict', small_run, img, '--json')
    assert r.returncode == 0 and json.loads(r.stdout)[0]['label'] == label

def test_predict_rejects_foreign_model(synth, tmp_path):
    (tmp_path/'model.pkl').write_text('hello')
    r = run_cli('asl-predict', tmp_path, sorted(synth['danrasband'].rglob('*.jpg'))[0])
    assert r.returncode == 1 and 'model.pkl is not a model asl_lib can load' in r.stderr and 'Traceback' not in r.stderr
