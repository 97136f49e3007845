"Sign-MNIST end to end: CSVs in Kaggle's exact format through the inventory, `asl-train`, `asl-evaluate`, `predict` and `compare_runs`."
import json
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from asl_lib.data import CLASSES, SIGN_MNIST_CLASSES, get_inventory
from asl_lib.testing import assert_beats_chance, make_sign_mnist, make_synthetic, tree_hash
from asl_lib.runs import check_run
from conftest import run_cli

@pytest.fixture(scope='module')
def sm(tmp_path_factory):
    "A generated Sign-MNIST download: both CSVs at the top and in their own folders, 20 training and 8 test rows per letter"
    return make_sign_mnist(tmp_path_factory.mktemp('kaggle')/'sign-language-mnist', n_per_class=20, n_test=8, kaggle_folders=True)

@pytest.fixture(scope='module')
def run(sm, tmp_path_factory):
    "One epoch of a ResNet18 from scratch, through the real `asl-train` command (its inputs checked unchanged)"
    before = tree_hash(sm)
    out = tmp_path_factory.mktemp('runs')
    r = run_cli('asl-train', '--data', sm, '--no-pretrained', '--epochs', '1', '--size', '32', '--bs', '16', '--lr', '3e-3',
                '--workers', '0', '--out', out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert tree_hash(sm) == before
    return Path(r.stdout.strip().splitlines()[-1])

def test_inventory(sm):
    inv = get_inventory(sm)
    assert (inv.root, inv.layout, inv.missing) == (sm/'sign_mnist_train.csv', 'sign-mnist', [])
    assert list(inv.counts) == SIGN_MNIST_CLASSES and set(inv.counts.values()) == {20}
    assert inv.items[0].pixels.shape == (28, 28) and inv.items[0].image().size == (28, 28)
    r = run_cli('asl-data', sm/'sign_mnist_test', '--part', 'test', '--json')
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d['layout'], d['n_images'], d['root']) == ('sign-mnist', 24*8, str(sm/'sign_mnist_test/sign_mnist_test.csv'))

def _edited(sm, dest, line, col, value):
    "A copy of the training CSV with field `col` of line `line` (1: the header) set to `value`"
    lines = (sm/'sign_mnist_train.csv').read_text().splitlines()
    fields = lines[line-1].split(',')
    if value is None: del fields[col]
    else: fields[col] = value
    lines[line-1] = ','.join(fields)
    dest.write_text('\n'.join(lines) + '\n')
    return dest

@pytest.mark.parametrize('line,col,value,msg', [(1, 0, 'class', 'is not a Sign-MNIST CSV: its header is class,pixel1,pixel2,...'),
                                                (4, 0, '9', 'row 3 (line 4): label 9 is J'),
                                                (6, 100, None, 'row 5 (line 6): 783 pixel values, expected 784'),
                                                (3, 5, 'x', "row 2 (line 3): pixel5 is 'x', not a whole number")])
def test_bad_csv_is_one_line(sm, tmp_path, line, col, value, msg):
    f = _edited(sm, tmp_path/'sign_mnist_train.csv', line, col, value)
    before = tree_hash(f)
    r = run_cli('asl-data', f)
    assert r.returncode == 1 and r.stdout == '', r.stderr
    assert r.stderr.strip() == r.stderr.strip().splitlines()[0] and msg in r.stderr and str(f) in r.stderr, r.stderr
    assert tree_hash(f) == before

def test_train(run, sm):
    m = check_run(run)
    assert (m['split'], m['size'], m['n_train'], m['n_valid']) == ('block', 32, 24*20, 24*8)
    assert m['train_classes'] == SIGN_MNIST_CLASSES and m['vocab'] == CLASSES
    assert str(sm/'sign_mnist_test.csv') in m['validation'] and m['data'] == str(sm/'sign_mnist_train.csv')
    spec = json.loads((run/'model.json').read_text())
    assert (spec['size'], spec['resize']['method'], spec['train_classes'], spec['vocab']) == (32, 'squish', SIGN_MNIST_CLASSES, CLASSES)
    assert_beats_chance(m['valid_accuracy'], m['n_valid'], n_classes=24)

def test_evaluate_predict_compare(run, sm, tmp_path):
    from asl_lib.evaluate import compare_runs, evaluate
    from asl_lib.inference import load_model, predict
    test = sm/'sign_mnist_test.csv'
    r = run_cli('asl-evaluate', run, '--test', test, '--json')
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout)
    assert (rep['n_images'], rep['test_root'], rep['untrained_classes']) == (24*8, str(test), {})
    assert_beats_chance(rep['accuracy'], rep['n_images'], n_classes=24)
    first = pd.read_csv(Path(rep['report_dir'])/'predictions.csv').iloc[0]
    assert first.file == f'{test}, row 1'
    # the same row as a PNG file predicts the same through `predict`
    row = (sm/'sign_mnist_test.csv').read_text().splitlines()[1].split(',')
    png = tmp_path/'row1.png'
    Image.fromarray(np.array(row[1:], dtype=np.uint8).reshape(28, 28)).save(png)
    assert predict(load_model(run), [png])[0]['label'] == first.predicted
    # a folder of photos holding classes it never trained on: scored, and said so
    photos = make_synthetic(tmp_path/'photos', 'danrasband', n_per_class=1, size=32)
    ext = evaluate(run, photos)
    assert ext['n_images'] == 29 and ext['untrained_classes'] == {c: 1 for c in ('J', 'Z', 'del', 'nothing', 'space')}
    assert 'never trained on J, Z, del, nothing, space' in ext['note']
    df = compare_runs([run], [test, photos])
    assert df.external_accuracy.tolist() == [rep['accuracy'], ext['accuracy']] and (df.cpu_ms_per_image > 0).all()

def test_grey_model_reads_colour_photos_in_grey(run, tmp_path):
    "A model trained on grey rows answers for a colour photo as for that photo in grey: portable, pickled and ONNX alike"
    import shutil
    from asl_lib.export import export_onnx
    from asl_lib.inference import load_model, predict
    from asl_lib.onnx_runtime import OnnxModel
    assert json.loads((run/'model.json').read_text())['channels'] == 'grey'
    px = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    colour, grey = tmp_path/'colour.png', tmp_path/'grey.png'
    Image.fromarray(px).save(colour); Image.fromarray(px).convert('L').save(grey)
    def probs(preds): return [dict(p['topk']) for p in preds]
    def same(a, b, tol=1e-5):  # onnxruntime agrees with torch to about 1e-5, so 1e-4 there
        assert [p['label'] for p in a] == [p['label'] for p in b]
        for x, y in zip(probs(a), probs(b)): assert x == pytest.approx(y, abs=tol)
    learn = load_model(run)
    want = predict(learn, [grey])
    same(predict(learn, [colour, Image.fromarray(px)]), want*2)
    pickled = load_model(run/'model.pkl', trust_pickle=True)
    same(predict(pickled, [colour]), predict(pickled, [grey]))  # its own pipeline (batch resize on the device), greying too
    assert np.allclose(pickled.predict(colour)[2].cpu().numpy(), pickled.predict(grey)[2].cpu().numpy(), atol=1e-5)
    onnx = OnnxModel(export_onnx(run, out=tmp_path/'onnx'))
    assert onnx.meta['channels'] == 'grey' and onnx.info['channels'] == 'grey'
    same(onnx.predict([colour, colour.read_bytes()]), want*2, 1e-4)
    # the check has teeth: the same weights reading colour (a model.json from before `channels`) answer otherwise
    old = tmp_path/'old'; old.mkdir()
    for f in ('model.json', 'model.safetensors'): shutil.copy(run/f, old/f)
    cfg = json.loads((old/'model.json').read_text()); del cfg['channels']; (old/'model.json').write_text(json.dumps(cfg))
    assert probs(predict(load_model(old), [colour]))[0] != pytest.approx(probs(want)[0], abs=1e-5)
