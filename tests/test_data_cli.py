"`asl-data` end to end, as a user runs it: exit codes, messages, JSON, and an untouched input folder."
import json, os, shutil, zipfile
import pytest
from asl_lib.core import MARKER
from asl_lib.data import CLASSES
from asl_lib.testing import simulated_kaggle_env, downloads, tree_hash
from conftest import run_cli

HANDLE = 'someone/asl-simulated'

def _zip(synth, folder, name='asl'):
    "A zip of the synthetic danrasband set in `folder`"
    folder.mkdir(parents=True, exist_ok=True)
    return folder/shutil.make_archive(str(folder/name), 'zip', synth['danrasband']).rsplit('/', 1)[1]

def _env(tmp_path, datasets, honour=True, sim='sim'):
    "A subprocess environment with a simulated Kaggle (None: no network) and an empty kagglehub cache"
    env = simulated_kaggle_env(tmp_path/sim, datasets, honour)
    env['KAGGLEHUB_CACHE'] = str(tmp_path/sim/'empty-cache')
    return env

def _failed(r, *words):
    "Assert a clean failure: exit 1, a message holding `words`, no traceback"
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert 'Traceback' not in r.stderr and '\nerror: ' in '\n' + r.stderr, r.stderr
    for w in words: assert w in r.stderr, r.stderr

def test_folder_json_inventory(synth):
    before = tree_hash(synth['grassknoted'])
    r = run_cli('asl-data', synth['grassknoted'], '--json')
    assert r.returncode == 0, r.stderr
    inv = json.loads(r.stdout)
    assert inv['layout'] == 'folders' and inv['n_images'] == 29*4
    assert inv['root'].endswith('asl_alphabet_train/asl_alphabet_train')
    assert list(inv['counts']) == CLASSES and inv['missing'] == []
    assert tree_hash(synth['grassknoted']) == before

def test_table_ends_with_root(synth):
    r = run_cli('asl-data', synth['grassknoted-test'])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-1].endswith('asl_alphabet_test/asl_alphabet_test')
    assert 'missing classes: del' in r.stdout

def test_bad_files_reported_and_untouched(synth, tmp_path):
    d = shutil.copytree(synth['danrasband'], tmp_path/'messy')
    (d/'A/A0001_test.jpg').write_bytes((d/'A/A0001_test.jpg').read_bytes()[:100])
    (d/'A/readme.txt').write_text('hi')
    shutil.rmtree(d/'space')
    before = tree_hash(d)
    r = run_cli('asl-data', d, '--json')
    assert r.returncode == 0, r.stderr
    inv = json.loads(r.stdout)
    assert sorted(k.rsplit('/', 1)[1] for k in inv['bad']) == ['A0001_test.jpg', 'readme.txt']
    assert 'unreadable' in inv['bad'][str(d/'A/A0001_test.jpg')]
    assert inv['missing'] == ['space'] and inv['counts']['A'] == 3
    assert tree_hash(d) == before

def test_zip_extracted_beside_it(synth, tmp_path):
    zp = shutil.make_archive(str(tmp_path/'asl'), 'zip', synth['danrasband'])
    r = run_cli('asl-data', zp)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == str(tmp_path/'asl')
    assert (tmp_path/'asl.zip').exists() and len(list((tmp_path/'asl').rglob('*.jpg'))) == 29*4

def test_errors_name_the_problem(tmp_path):
    r = run_cli('asl-data', tmp_path/'nope')
    assert r.returncode == 1 and 'does not exist' in r.stderr and 'Traceback' not in r.stderr
    (tmp_path/'empty').mkdir()
    r = run_cli('asl-data', tmp_path/'empty')
    assert r.returncode == 1 and 'No ASL alphabet images' in r.stderr

def test_offline_download_lists_options(tmp_path):
    r = run_cli('asl-data', 'danrasband/asl-alphabet-test', '--dest', tmp_path/'dl', env=_env(tmp_path, None))
    _failed(r, 'KAGGLE_USERNAME', 'kaggle datasets download', 'folder or the .zip',
            '`asl-data danrasband/asl-alphabet-test --method kaggle`, then pass the folder it prints')
    assert '--method kaggle` (asl-data' not in r.stderr
    assert not (tmp_path/'dl').exists()

def test_download_honouring_output_dir(synth, tmp_path):
    zp = _zip(synth, tmp_path/'src')
    before, env = tree_hash(zp), _env(tmp_path, {HANDLE: zp}, honour=True)
    for _ in range(2):
        r = run_cli('asl-data', HANDLE, '--dest', tmp_path/'dl', env=env)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().splitlines()[-1] == str(tmp_path/'dl'/HANDLE)
    assert downloads(tmp_path/'sim') == [HANDLE]  # the second run found it on disk
    assert (tmp_path/'dl'/HANDLE/MARKER).exists() and len(list((tmp_path/'dl'/HANDLE).rglob('*.jpg'))) == 29*4
    assert sorted(o.name for o in (tmp_path/'dl/someone').iterdir()) == ['asl-simulated']
    assert tree_hash(zp) == before

def test_download_ignoring_output_dir(synth, tmp_path):
    "Kaggle notebooks and Colab: kagglehub returns its own folder; it is used as is and nothing lands in --dest"
    zp = _zip(synth, tmp_path/'src')
    before, env = tree_hash(zp), _env(tmp_path, {HANDLE: zp}, honour=False)
    r = run_cli('asl-data', HANDLE, '--dest', tmp_path/'dl', env=env)
    assert r.returncode == 0, r.stderr
    root = r.stdout.strip().splitlines()[-1]
    assert root == str(tmp_path/'sim/kagglehub/datasets'/HANDLE/'versions/1')
    theirs = tree_hash(root)
    r = run_cli('asl-data', HANDLE, '--dest', tmp_path/'dl', env=env)
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == root, r.stderr
    assert tree_hash(root) == theirs and not (tmp_path/'dl').exists()
    assert tree_hash(zp) == before

def test_user_partial_folder_is_kept(synth, tmp_path):
    zp = _zip(synth, tmp_path/'src')
    mine = tmp_path/'dl'/(HANDLE + '.partial')
    mine.mkdir(parents=True); (mine/'thesis.txt').write_text('mine')
    before = tree_hash(tmp_path/'dl')
    r = run_cli('asl-data', HANDLE, '--dest', tmp_path/'dl', env=_env(tmp_path, {HANDLE: zp}))
    _failed(r, str(mine))
    assert tree_hash(tmp_path/'dl') == before and (mine/'thesis.txt').read_text() == 'mine'
    assert downloads(tmp_path/'sim') == []

def test_touched_zip_is_reused(synth, tmp_path):
    zp = _zip(synth, tmp_path)
    assert run_cli('asl-data', zp).returncode == 0
    marker, before = (tmp_path/'asl'/MARKER).stat().st_mtime_ns, tree_hash(zp)
    os.utime(zp, (1_000_000_000, 1_000_000_000))
    r = run_cli('asl-data', zp)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == str(tmp_path/'asl')
    assert (tmp_path/'asl'/MARKER).stat().st_mtime_ns == marker and tree_hash(zp) == before

def _damage(zp):
    "Flip a byte of the last member's compressed data: the zip's directory stays valid, that member fails its CRC"
    data, info = bytearray(zp.read_bytes()), zipfile.ZipFile(zp).infolist()[-1]
    o = info.header_offset
    n, m = (int.from_bytes(data[o+i:o+i+2], 'little') for i in (26, 28))
    data[o+30+n+m+10] ^= 0xFF
    zp.write_bytes(bytes(data))

def test_corrupt_zip_member(synth, tmp_path):
    zp = _zip(synth, tmp_path)
    _damage(zp)
    before = tree_hash(tmp_path)
    r = run_cli('asl-data', zp)
    _failed(r, 'is damaged', 'download it again')
    assert tree_hash(tmp_path) == before  # no extraction or partial folder left

def test_camera_names_in_a_flat_folder(synth, tmp_path):
    d = tmp_path/'holiday'; d.mkdir()
    jpg = next(synth['danrasband'].rglob('*.jpg')).read_bytes()
    for i in range(1, 31): (d/f'P10100{i:02d}.JPG').write_bytes(jpg)
    before = tree_hash(d)
    r = run_cli('asl-data', d)
    _failed(r, 'P1010001.JPG', 'class folders (A/, B/')
    assert tree_hash(d) == before

def test_read_only_folder_beside_zip(synth, tmp_path):
    zp = _zip(synth, tmp_path/'ro')
    os.chmod(tmp_path/'ro', 0o555)
    try:
        if os.access(tmp_path/'ro', os.W_OK): pytest.skip('chmod does not stop this user (root) from writing')
        before = tree_hash(tmp_path/'ro')
        _failed(run_cli('asl-data', zp), 'Pass `dest`')
        assert tree_hash(tmp_path/'ro') == before
    finally: os.chmod(tmp_path/'ro', 0o755)

def test_dest_that_cannot_be_created(synth, tmp_path):
    "Works as root too: a folder below a regular file cannot be made"
    zp = _zip(synth, tmp_path/'src')
    (tmp_path/'a-file').write_text('not a folder')
    before = tree_hash(tmp_path)
    _failed(run_cli('asl-data', zp, '--dest', tmp_path/'a-file/sub'), 'Pass `dest`', 'a-file')
    assert tree_hash(tmp_path) == before
    r = run_cli('asl-data', zp, '--dest', tmp_path/'out')
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == str(tmp_path/'out/asl'), r.stderr

def test_real_layouts(real):
    r = run_cli('asl-data', real/'asl-alphabet', '--json')
    inv = json.loads(r.stdout)
    assert (inv['n_images'], inv['missing'], inv['bad']) == (5800, [], {})
    r = run_cli('asl-data', real/'asl-alphabet', '--part', 'test', '--json')
    assert (json.loads(r.stdout)['layout'], json.loads(r.stdout)['missing']) == ('flat', ['del'])
    r = run_cli('asl-data', real/'external-desk-29', '--json')
    assert json.loads(r.stdout)['n_images'] == 870

def test_scan_verifies_an_unchanged_tree_once(synth, tmp_path, monkeypatch):
    "Images are decoded once per unchanged tree (memo, then the record in `$ASL_CACHE`); any change checks them again"
    import asl_lib.data as data
    monkeypatch.setenv('ASL_CACHE', str(tmp_path/'cache'))
    d = shutil.copytree(synth['danrasband'], tmp_path/'d')
    decoded, scans, check, scan = [], [], data.check_image, data.scan
    monkeypatch.setattr(data, 'check_image', lambda p: decoded.append(p) or check(p))
    monkeypatch.setattr(data, 'scan', lambda *a, **k: scans.append(a) or scan(*a, **k))
    def n_decoded(new_process=False):
        if new_process: data._verified.clear()
        decoded.clear(); inv = scan(d)
        return len(decoded), len(inv.items), len(inv.bad)
    n = 29*4
    assert n_decoded() == (n, n, 0)
    assert n_decoded() == (0, n, 0)
    assert n_decoded(new_process=True) == (0, n, 0)  # from the record on disk
    assert list((tmp_path/'cache'/'scans').glob('d-*.json')) and not list(d.rglob('*.json'))
    (d/'A/A0001_test.jpg').write_bytes((d/'A/A0001_test.jpg').read_bytes()[:200])  # changed
    assert n_decoded(new_process=True) == (n, n-1, 1)
    shutil.copy(d/'B/B0001_test.jpg', d/'B/B0099_test.jpg')  # added
    assert n_decoded() == (n+1, n, 1)
    os.utime(d/'C/C0001_test.jpg', ns=(10**18, 10**18))  # same bytes, new time
    assert n_decoded() == (n+1, n, 1)
    (d/'A/A0001_test.jpg').unlink()  # removed
    assert n_decoded() == (n, n, 0)
    monkeypatch.setenv('ASL_CACHE', str(tmp_path/'cache2')); data._verified.clear(); decoded.clear(); scans.clear()
    data.asl_data(str(d), json=True)  # `asl-data` scans and decodes once
    assert (len(scans), len(decoded)) == (1, n)
