"The landmark model and hand-crop models through the same commands as the image models: generated hands (`fake_hands_env`) for the fast tests, real photos for the slow one."
import json
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageOps
from conftest import run_cli
from asl_lib.hands import DETECTOR_ENV
from asl_lib.testing import assert_beats_chance, assert_better, fake_hands_env, make_synthetic
from asl_lib.runs import check_run

@pytest.fixture(scope='module')
def fake(tmp_path_factory):
    "Generated training and test sets, and an environment in which commands find generated hands in them"
    base = tmp_path_factory.mktemp('fake-hands')
    return dict(env=dict(fake_hands_env(base/'env'), MPLBACKEND='Agg'), train=make_synthetic(base/'train', n_per_class=12, size=48),
                test=make_synthetic(base/'test', 'danrasband', n_per_class=4, size=48), runs=base/'runs')

@pytest.fixture(scope='module')
def landmarks_run(fake):
    r = run_cli('asl-train', '--data', fake['train'], '--arch', 'landmarks', '--epochs', 8, '--lr', '1e-2', '--out', fake['runs'],
                '--workers', 0, env=fake['env'])
    assert r.returncode == 0, r.stderr[-3000:]
    return Path(r.stdout.strip().splitlines()[-1])

def test_landmarks_trains_and_exports_like_an_image_model(landmarks_run):
    m = check_run(landmarks_run)
    assert (m['arch'], m['input'], m['pretrained'], landmarks_run.name) == ('landmarks', 'landmarks', False, 'landmarks-block')
    assert_beats_chance(m['valid_accuracy'], m['n_valid'])
    cfg = json.loads((landmarks_run/'model.json').read_text())
    assert (cfg['input'], cfg['size'], cfg['normalize']) == ('landmarks', None, None)

def test_landmarks_evaluate_and_predict_agree(landmarks_run, fake):
    r = run_cli('asl-evaluate', landmarks_run, '--test', fake['test'], '--json', env=fake['env'])
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads(r.stdout)
    assert (rep['view'], rep['detection_rate'], rep['n_images']) == ('landmarks', 1.0, 29*4)
    assert_beats_chance(rep['accuracy'], rep['n_images'])
    preds = pd.read_csv(Path(rep['report_dir'])/'predictions.csv').set_index('file')
    imgs = sorted(fake['test'].rglob('*.jpg'))[::9]
    r = run_cli('asl-predict', landmarks_run, *imgs, '--json', env=fake['env'])
    assert r.returncode == 0, r.stderr[-3000:]
    assert [p['label'] for p in json.loads(r.stdout)] == [preds.loc[str(p), 'predicted'] for p in imgs]

def test_crop_and_flip_run(fake):
    r = run_cli('asl-train', '--data', fake['train'], '--crop', '--flip', '--no-pretrained', '--epochs', 1, '--size', 32, '--lr', '1e-2',
                '--out', fake['runs'], '--workers', 0, env=fake['env'])
    assert r.returncode == 0, r.stderr[-3000:]
    run = Path(r.stdout.strip().splitlines()[-1])
    m = check_run(run)
    assert (run.name, m['crop'], m['flip']) == ('resnet18-block-32px-hand-flip', True, True)
    assert json.loads((run/'model.json').read_text())['hand_crop'] == dict(pad=0.25)
    img = sorted(fake['test'].rglob('*.jpg'))[0]
    r = run_cli('asl-predict', run, img, '--json', env=fake['env'])
    assert r.returncode == 0 and json.loads(r.stdout)[0]['label'], r.stderr[-3000:]

def test_landmarks_without_mediapipe_is_one_line(fake, tmp_path):
    "Without MediaPipe, `--arch landmarks` says how to install it, before any work"
    (tmp_path/'mediapipe').mkdir(); (tmp_path/'mediapipe'/'__init__.py').write_text("raise ImportError('no mediapipe here')")
    env = dict(fake['env']); env.pop(DETECTOR_ENV); env['PYTHONPATH'] = str(tmp_path)
    r = run_cli('asl-train', '--data', fake['train'], '--arch', 'landmarks', '--out', tmp_path/'runs', env=env)
    assert r.returncode == 1 and 'pip install --no-deps mediapipe==0.10.21' in r.stderr and 'Traceback' not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2 and not (tmp_path/'runs').exists()

@pytest.mark.slow
def test_landmarks_on_real_photos_mirror(real, tmp_path):
    "Trained on real grassknoted frames, the landmark model reads other people's hands, a mirrored photo gets the same letter, and 3 photos a letter calibrate it to that person"
    from asl_lib.evaluate import evaluate
    from asl_lib.inference import load_model, predict
    from asl_lib.train import train
    run = train(real/'asl-alphabet', 'landmarks', epochs=30, lr=3e-3, per_class=40, out=tmp_path, workers=0)
    m = check_run(run)
    assert_beats_chance(m['valid_accuracy'], m['n_valid'])
    photos = sorted((real/'external-desk-29').glob('*/*.jpg'))[::29]
    rep = evaluate(run, real/'external-desk-29')
    assert_beats_chance(rep['accuracy'], rep['n_images'])
    learn = load_model(run)
    orig = predict(learn, photos)
    flipped = predict(learn, [np.asarray(ImageOps.mirror(Image.open(p).convert('RGB'))) for p in photos])
    same = np.mean([a['label'] == b['label'] for a, b in zip(orig, flipped)])
    print(f"external accuracy {rep['accuracy']:.3f} (detection {rep['detection_rate']:.3f}); mirrored photos, same letter: {same:.3f}")
    assert same >= 0.85
    from asl_lib.calibrate import calibration_curve  # the protocol: shots are each letter's earliest frames, tests 10+ frames later
    curve = calibration_curve(run, real/'external-desk-29', ks=(0, 3), out=tmp_path/'calibrated').set_index('k')
    print(curve)
    n = int(curve.n_test[0])
    assert_better(curve.accuracy[3], n, curve.accuracy[0], n)
    assert curve.valid_accuracy[3] >= curve.valid_accuracy[0] - 0.03  # the letters of the base data are kept
