"""Hand landmarks (asl_lib.hands): "no hand" on generated images, cached per dataset; one-line messages when the extra is missing or
broken; on real photos (when `$ASL_REAL_DATA` has them) hands found, some only by the retry, and a mirrored photo giving the mirrored
features with the other handedness.

The measurements behind the thresholds (external-desk-29, mediapipe 0.10.21, protobuf 6.33.6): the 20 photos of `test_real_photos`
gave 20 hands, 2 of them on a retry, all landmarks within [11, 221] px of the 224 px photos. Mirroring 10 photos: the median absolute
difference between `mirror_features(original)` and the mirrored photo's features was 0.012-0.043, and the mean over the x coordinates
0.006-0.051; without `mirror_features` that x difference is 0.35-0.94."""
import importlib.util, sys, types

import numpy as np
import pytest
from PIL import Image, ImageOps

from asl_lib.core import ExtraError
from asl_lib.data import get_inventory
from asl_lib.testing import real_data, synthetic_data
import asl_lib.hands as hands
from asl_lib.hands import (INSTALL_HANDS, N_FEATURES, N_LANDMARKS, HandDetector, has_mediapipe, hand_table, landmark_features,
                           mediapipe_hands, mirror_features)

try: _have_mp = importlib.util.find_spec('mediapipe') is not None
except ValueError: _have_mp = 'mediapipe' in sys.modules and sys.modules['mediapipe'] is not None
# Skip only where mediapipe is genuinely absent; installed but broken (protobuf 7, a 1.x wheel) fails with its one-line message.
needs_mediapipe = pytest.mark.skipif(not _have_mp or sys.version_info >= (3, 13),
                                     reason=f'mediapipe is not installed (Python 3.10-3.12: {INSTALL_HANDS})')
NEW_PYTHON = pytest.mark.skipif(sys.version_info >= (3, 13), reason='Python 3.13+: asl_lib.hands says "use Python 3.10-3.12" first')

@pytest.fixture(scope='module')
def detector():
    "One detector for the module (each confidence level builds its MediaPipe graph once)"
    return HandDetector()

@pytest.fixture
def cache(tmp_path, monkeypatch):
    "A fresh `ASL_CACHE` for this test"
    monkeypatch.setenv('ASL_CACHE', str(tmp_path/'cache'))
    return tmp_path/'cache'

def count_detections(monkeypatch)->list:
    "Record each call of `asl_lib.hands._detect_files` (the work `hand_table` does when it has no cached answer)"
    calls, real = [], hands._detect_files
    def counted(files): calls.append(len(files)); return real(files)
    monkeypatch.setattr(hands, '_detect_files', counted)
    return calls

# --- generated images: no hand, cleanly; computed once, then read from the cache

@needs_mediapipe
def test_no_hand_in_generated_images(detector, cache, monkeypatch):
    noise = np.random.default_rng(0).integers(0, 256, (160, 200, 3), dtype=np.uint8)
    assert detector(noise) is None
    assert detector(Image.fromarray(noise)) is None
    assert (landmark_features(None) == 0).all() and landmark_features(None).shape == (N_FEATURES,)

    inv = get_inventory(synthetic_data('test', n_per_class=2, size=64))
    items = sorted(inv.items)[:24]
    calls = count_detections(monkeypatch)
    t = hand_table(inv, workers=1, items=items)
    assert sum(calls) == len(items), calls  # every image detected once
    assert len(t.hands) == len(items) and not t.found.any()
    rep = t.report()
    assert rep.loc['all', 'images'] == len(items) and rep.loc['all', 'hands'] == 0 and rep.loc['all', 'rate'] == 0
    assert (t.features() == 0).all() and t.features().shape == (len(items), N_FEATURES)
    assert len(list((cache/'hands').glob('*.npz'))) == 1  # beside our other caches, never inside the dataset
    assert not list(inv.root.rglob('*.npz'))

    n = len(calls)
    t2 = hand_table(inv, workers=1, items=items)  # read from the cache: no detection at all
    assert len(calls) == n, calls
    assert t2.items == t.items and t2.labels == t.labels and t2.keys == t.keys and t2.hands == [None]*len(items)

# --- the extra missing or broken: one line naming the fix

@pytest.fixture
def protobuf6(monkeypatch):
    "A protobuf that mediapipe 0.10.21 accepts (whatever this environment has), so each test reaches the check it is about"
    pb = pytest.importorskip('google.protobuf', reason=f'protobuf is not installed ({INSTALL_HANDS})')
    monkeypatch.setattr(pb, '__version__', '6.33.6')
    return pb

def one_line_error()->str:
    with pytest.raises(ExtraError) as e: mediapipe_hands()
    msg = str(e.value)
    assert '\n' not in msg, msg
    return msg

@NEW_PYTHON
def test_missing_mediapipe(protobuf6, monkeypatch):
    monkeypatch.setitem(sys.modules, 'mediapipe', None)  # `import mediapipe` raises ImportError
    msg = one_line_error()
    assert 'pip install --no-deps mediapipe==0.10.21' in msg and 'asl_lib[hands]' in msg, msg
    assert not has_mediapipe()

@NEW_PYTHON
@pytest.mark.parametrize('kind', ['no solutions (mediapipe 1.x)', 'no bundled hand model'])
def test_mediapipe_without_hand_model(kind, protobuf6, monkeypatch, tmp_path):
    mp = types.ModuleType('mediapipe'); mp.__file__, mp.__version__ = str(tmp_path/'mediapipe'/'__init__.py'), '0.10.30'
    if kind == 'no bundled hand model': mp.solutions = types.SimpleNamespace(hands=types.SimpleNamespace())
    monkeypatch.setitem(sys.modules, 'mediapipe', mp)
    assert 'pip install --no-deps mediapipe==0.10.21' in one_line_error()

@NEW_PYTHON
def test_protobuf_7(protobuf6, monkeypatch):
    monkeypatch.setattr(protobuf6, '__version__', '7.36.2')
    msg = one_line_error()
    assert 'protobuf<6' in msg and '7.36.2' in msg, msg

# --- real photos (only where $ASL_REAL_DATA has them)

@pytest.fixture(scope='module')
def desk():
    "external-desk-29's inventory; skips without it"
    root = real_data('external-desk-29')
    if root is None: pytest.skip('no real photos: set ASL_REAL_DATA to a folder holding external-desk-29/')
    return get_inventory(root)

@needs_mediapipe
def test_real_photos(desk, cache, monkeypatch):
    "Hands on real photos of someone else: found, 21 points inside the photo, and the retry finds some the first pass missed"
    items = sorted(desk.items)[::29][:20]  # 20 photos, from 20 classes
    calls = count_detections(monkeypatch)
    t = hand_table(desk, workers=1, items=items)
    assert sum(calls) == len(items)
    found = [(p, h) for p, h in zip(items, t.hands) if h is not None]
    assert len(found) >= 15, t.report()
    assert any(h.attempt > 0 for _, h in found), 'no hand needed the retry: the retry path went untested'
    for p, h in found:
        w, hgt = Image.open(p).size
        margin = 0.1 * max(w, hgt)
        assert h.landmarks.shape == (N_LANDMARKS, 3) and np.isfinite(h.landmarks).all()
        assert (h.landmarks[:, 0] > -margin).all() and (h.landmarks[:, 0] < w + margin).all(), (p.name, h.landmarks[:, 0])
        assert (h.landmarks[:, 1] > -margin).all() and (h.landmarks[:, 1] < hgt + margin).all(), (p.name, h.landmarks[:, 1])
        assert h.handedness in ('Left', 'Right') and 0 <= h.score <= 1
    rep = t.report()
    assert rep.loc['all', 'hands'] == len(found) and rep.loc['all', 'by_retry'] >= 1
    n = len(calls)
    hand_table(desk, workers=1, items=items)
    assert len(calls) == n  # the second call read the cache

@needs_mediapipe
def test_mirrored_photo(desk, detector):
    "A left-right mirrored photo gives the mirrored features (`mirror_features`) and the other hand"
    xs = slice(0, 3*N_LANDMARKS, 3)
    checked = 0
    for p in sorted(desk.items)[::29*6]:
        im = Image.open(p).convert('RGB')
        h = detector(im)
        if h is None: continue
        hm = detector(ImageOps.mirror(im))
        assert hm is not None, f'{p.name}: a hand, but none in its mirror image'
        f, fm = landmark_features(h), landmark_features(hm)
        d = np.abs(mirror_features(f) - fm)
        assert np.median(d) < 0.1, (p.name, np.median(d))  # measured 0.012-0.043
        assert d[xs].mean() < 0.15, (p.name, d[xs].mean())  # measured 0.006-0.051; 0.35-0.94 without mirror_features
        assert {h.handedness, hm.handedness} == {'Left', 'Right'}, (p.name, h.handedness, hm.handedness)
        checked += 1
        if checked == 5: break
    assert checked == 5, f'only {checked} photos with a hand'
