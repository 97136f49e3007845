"Sharing through the Hugging Face Hub as a user does it, against the local stand-in (`asl_lib.testing.LocalHub`): push, load by address, offline, errors."
import json, os
from pathlib import Path
import pytest
from conftest import run_cli
from asl_lib.testing import LocalHub, tree_hash

@pytest.fixture(scope='module')
def hub(small_run, synth, tmp_path_factory):
    "The stand-in Hub holding `small_run` as me/asl (pushed with asl-push), and the environment that reaches it"
    base = tmp_path_factory.mktemp('hub')
    with LocalHub() as h:
        env = h.env(base/'hf-cache', {**os.environ, 'HF_HOME': str(base/'hf-home')})  # no token saved in this HF_HOME
        r = run_cli('asl-push', small_run, 'me/asl', env=env)
        assert r.returncode == 0, r.stderr[-3000:]
        yield dict(hub=h, env=env, base=base, push=r, photos=sorted(synth['danrasband'].rglob('*.jpg'))[:5])

def test_push_uploads_the_model_and_no_pickle(hub, small_run):
    assert hub['push'].stdout.strip().splitlines()[-1] == 'hf://me/asl'
    files = hub['hub'].files('me/asl')
    assert sorted(files) == ['README.md', 'model.json', 'model.safetensors']
    assert files['model.safetensors'] == (small_run/'model.safetensors').read_bytes()
    assert json.loads(files['model.json'])['weights'] == 'model.safetensors'
    assert 'asl-predict hf://me/asl photo.jpg' in files['README.md'].decode() and str(small_run.parent) not in files['README.md'].decode()

def test_loaded_by_address_it_predicts_what_the_run_folder_predicts(hub, small_run):
    local = run_cli('asl-predict', small_run, *hub['photos'], '--json', env=hub['env'])
    remote = run_cli('asl-predict', 'hf://me/asl', *hub['photos'], '--json', env=hub['env'])
    assert local.returncode == remote.returncode == 0, remote.stderr[-3000:]
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    offline = {**hub['env'], 'HF_HUB_OFFLINE': '1', 'HF_ENDPOINT': 'http://127.0.0.1:9'}  # no network: the cache serves it
    again = run_cli('asl-predict', 'hf://me/asl', *hub['photos'], '--json', env=offline)
    assert again.returncode == 0 and json.loads(again.stdout) == json.loads(local.stdout), again.stderr[-3000:]

def test_evaluate_writes_here_never_into_the_cache(hub, synth, tmp_path):
    cache = hub['base']/'hf-cache'
    before = tree_hash(cache)
    r = run_cli('asl-evaluate', 'hf://me/asl', '--test', synth['danrasband'], '--bs', 16, env=hub['env'], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path/'eval-asl-danrasband'/'report.json').is_file() and tree_hash(cache) == before

# A refused token, a name that is not a repository, a repository without a model: in 01d_hub, in-process (the same one-line errors)
@pytest.mark.parametrize('args,env,says', [
    (['asl-push', '{run}', 'me/other'], {'HF_TOKEN': None}, 'No Hugging Face token: log in with `hf auth login`, or set HF_TOKEN'),
    (['asl-predict', 'hf://me/nobody', '{photo}'], {'HF_ENDPOINT': 'http://127.0.0.1:9'}, 'Cannot reach the Hugging Face Hub at http://127.0.0.1:9'),
    (['asl-export', 'hf://me/asl'], {}, 'is a model on the Hub: pass --out'),
], ids=['no-token', 'no-network', 'export-needs-out'])
def test_each_problem_is_one_line(hub, small_run, args, env, says):
    env = {k: v for k, v in {**hub['env'], **env}.items() if v is not None}
    args = [a.format(run=small_run, photo=hub['photos'][0]) for a in args]
    r = run_cli(*args, env=env)
    assert r.returncode == 1 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr[-3000:]
    assert 'me/other' not in hub['hub'].repos
