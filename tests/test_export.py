"ONNX export end to end: both image architectures give onnxruntime the top-1 of `inference.predict`, on generated photos and on real ones when present."
import io, json
from contextlib import redirect_stdout
import numpy as np
import pytest
import torch
from PIL import Image
from asl_lib.core import run_cli
from asl_lib.export import asl_export, export_onnx
from asl_lib.inference import load_model, predict
from asl_lib.onnx_runtime import OnnxModel, read_image
from asl_lib.testing import make_synthetic, real_data

torch.set_num_threads(1)

@pytest.fixture(scope='module')
def b0_run(tmp_path_factory):
    "An EfficientNet-B0 run, one epoch from scratch on a few generated images"
    from asl_lib.train import train
    base = tmp_path_factory.mktemp('b0')
    return train(make_synthetic(base/'g', n_per_class=4, size=32), 'efficientnet_b0', epochs=1, size=32, bs=32, lr=1e-2,
                 pretrained=False, out=base/'runs', workers=0)

@pytest.fixture(scope='module')
def exports(small_run, b0_run, tmp_path_factory):
    "{arch: (run, export folder)}: ResNet18 through the library function, EfficientNet-B0 through the command (in process)"
    r18 = export_onnx(small_run, out=tmp_path_factory.mktemp('r18')/'onnx')  # not into small_run: other tests read that folder
    with redirect_stdout(out := io.StringIO()): assert run_cli(asl_export, [str(b0_run), '--json']) == 0
    return dict(resnet18=(small_run, r18), efficientnet_b0=(b0_run, b0_run/'onnx'), printed=json.loads(out.getvalue()))

def photos(synth, source):
    "Generated test photos, or one real photo per class of external-desk-29 (skips without $ASL_REAL_DATA)"
    if source == 'generated': return sorted(synth['danrasband'].rglob('*.jpg'))[::3]
    desk = real_data('external-desk-29')
    if desk is None: pytest.skip('no real images: set ASL_REAL_DATA to a folder holding external-desk-29/')
    return [sorted(d.glob('*.jpg'))[0] for d in sorted(desk.iterdir()) if d.is_dir()]

@pytest.mark.parametrize('source', ['generated', 'real'])
@pytest.mark.parametrize('arch', ['resnet18', 'efficientnet_b0'])
def test_onnx_predicts_like_torch(exports, synth, arch, source):
    "The same input tensors, logits within 1e-4 (relative to the largest), the same top-1 and probabilities as `predict`"
    run, folder = exports[arch]
    meta = json.loads((folder/'model.onnx.json').read_text())
    assert (meta['arch'], meta['input'], meta['resize'], meta['external_data']) == (arch, 'image', dict(method='squish', interpolation='bilinear'), False)
    assert sorted(p.name for p in folder.iterdir()) == ['.asl_lib.json', 'model.onnx', 'model.onnx.json']  # one self-contained file
    learn, onnx = load_model(run), OnnxModel(folder)
    imgs = photos(synth, source)
    # the same input tensors: PIL + numpy here, fastai's pipeline there
    x_fastai = learn.dls.test_dl(imgs, bs=len(imgs)).one_batch()[0].cpu().numpy()
    x_numpy = np.stack([onnx.preprocess(read_image(p)) for p in imgs])
    assert np.abs(x_fastai - x_numpy).max() < 1e-5
    with torch.no_grad(): ref = learn.model(torch.from_numpy(x_numpy)).cpu().numpy()
    assert np.abs(onnx.logits(x_numpy) - ref).max() <= 1e-4 * max(1, np.abs(ref).max())
    got, want = onnx.predict(imgs, topk=3), predict(learn, imgs, topk=3)
    assert [p['label'] for p in got] == [p['label'] for p in want]
    assert np.allclose([p['prob'] for p in got], [p['prob'] for p in want], atol=1e-4)
    assert list(got[0]) == list(want[0]) == ['input', 'label', 'prob', 'topk']

def test_command_refuses_and_explains(exports, capsys, monkeypatch):
    run, folder = exports['efficientnet_b0']
    out = exports['printed']  # what the command in the fixture printed
    assert out['folder'] == str(folder) and out['check']['max_relative_diff'] <= 1e-4
    assert run_cli(asl_export, [str(run)]) == 1
    assert 'already exists' in capsys.readouterr().err
    assert run_cli(asl_export, [str(run/'model.pkl')]) == 1
    assert 'export loads no pickle' in capsys.readouterr().err
    monkeypatch.setitem(__import__('sys').modules, 'onnxscript', None)  # as if the extra were not installed
    assert run_cli(asl_export, [str(run), '--out', str(folder.parent/'other')]) == 1
    err = capsys.readouterr().err.strip()
    assert err == 'error: ONNX export needs onnxscript: pip install "asl_lib[export]"' and not (folder.parent/'other').exists()

def test_landmark_and_crop_models_are_refused_with_the_reason():
    "Models that need MediaPipe before their graph are not exported: the message says why"
    from asl_lib.export import check_exportable
    from asl_lib.hands import HandCrop, LandmarkFeatures
    class Learn:  # what `hand_view` reads of a learner
        def __init__(self, t): self.dls = type('D', (), dict(after_item=type('P', (), dict(fs=[t]))()))()
    with pytest.raises(Exception, match='landmarks model: it reads MediaPipe hand landmarks'): check_exportable(Learn(LandmarkFeatures()))
    with pytest.raises(Exception, match='crops the hand with MediaPipe'): check_exportable(Learn(HandCrop(0.25)))

def test_sideways_phone_photo_reads_upright(exports, synth, tmp_path):
    "A JPEG stored sideways with EXIF orientation 6: `predict`, ONNX (path and bytes) and the demo's reader answer as for the upright pixels"
    from asl_lib.demo import read_photo
    run, folder = exports['resnet18']
    learn, onnx = load_model(run), OnnxModel(folder)
    assert json.loads((run/'model.json').read_text())['channels'] == 'rgb' and onnx.meta['channels'] == 'rgb'  # no grey flag
    with Image.open(sorted(synth['danrasband'].rglob('*.jpg'))[0]) as im: photo = np.asarray(im.convert('RGB').resize((48, 32)))
    exif = Image.Exif(); exif[0x0112] = 6  # "turn 90 degrees clockwise to view"
    side = tmp_path/'side.jpg'
    Image.fromarray(np.rot90(photo).copy()).save(side, exif=exif)  # stored turned a quarter anticlockwise, as phones do
    with Image.open(side) as im: stored = np.asarray(im.convert('RGB'))
    upright = tmp_path/'upright.png'
    Image.fromarray(np.rot90(stored, -1).copy()).save(upright)  # the same decoded pixels, turned as the tag says
    want = predict(learn, [upright])[0]
    def check(preds, tol=1e-5):  # onnxruntime agrees with torch to about 1e-5, so 1e-4 there
        for p in preds: assert p['label'] == want['label'] and dict(p['topk']) == pytest.approx(dict(want['topk']), abs=tol)
    check(predict(learn, [side, Image.open(side), read_photo(side)]))
    check(onnx.predict([side, side.read_bytes()]), 1e-4)
    sideways = predict(learn, [stored])[0]  # the stored pixels without the tag: what was read before
    assert [round(v, 4) for _, v in sideways['topk']] != [round(v, 4) for _, v in want['topk']]
