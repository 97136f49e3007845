"`asl-data` end to end, as a user runs it: exit codes, messages, JSON, and an untouched input folder."
import json, shutil
from asl_lib.data import tree_hash, CLASSES
from conftest import run_cli

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

def test_offline_download_lists_options(tmp_path, monkeypatch):
    monkeypatch.setenv('KAGGLEHUB_CACHE', str(tmp_path/'cache'))
    r = run_cli('asl-data', 'danrasband/asl-alphabet-test', '--dest', tmp_path/'dl')
    assert r.returncode == 1, r.stdout
    for option in ('KAGGLE_USERNAME', 'kaggle datasets download', 'folder or the .zip'): assert option in r.stderr
    assert not (tmp_path/'dl/danrasband/asl-alphabet-test').exists()

def test_real_layouts(real):
    r = run_cli('asl-data', real/'asl-alphabet', '--json')
    inv = json.loads(r.stdout)
    assert (inv['n_images'], inv['missing'], inv['bad']) == (5800, [], {})
    r = run_cli('asl-data', real/'asl-alphabet', '--part', 'test', '--json')
    assert (json.loads(r.stdout)['layout'], json.loads(r.stdout)['missing']) == ('flat', ['del'])
    r = run_cli('asl-data', real/'external-desk-29', '--json')
    assert json.loads(r.stdout)['n_images'] == 870
