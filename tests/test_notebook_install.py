"""Each notebook opens alone on Kaggle or Colab: its first cell installs asl_lib when the kernel cannot import it, and only when a
person runs it: not under papermill or nbdev, not in a checkout of this repository. Run in a fresh Jupyter kernel, as a front end does."""
import json, tempfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = [p for p in sorted((ROOT/'nbs').glob('*.ipynb')) if p.stem != 'index']

def install_cell(nb:Path)->str:
    "The first code cell after the title, where a reader opening the notebook alone meets it"
    cells = json.loads(nb.read_text())['cells']
    assert cells[0]['cell_type'] == 'markdown' and cells[0]['source'][0].startswith('# '), f'{nb.name}: the title comes first'
    return ''.join(next(c for c in cells[1:] if c['cell_type'] == 'code')['source'])

def test_every_notebook_starts_with_the_same_install_cell():
    cells = {nb.name: install_cell(nb) for nb in NBS}
    assert len(set(cells.values())) == 1 and '%pip install' in cells[NBS[0].name], cells

# Recorded instead of installing: `%pip` becomes a magic that notes its arguments; `find_spec` can be told that asl_lib is missing
SETUP = """
calls, hide = [], False
get_ipython().register_magic_function(lambda line: calls.append(line), 'line', 'pip')
import importlib.util, os
_find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a, **k: None if hide and name == 'asl_lib' else _find_spec(name, *a, **k)
"""

@pytest.fixture(scope='module')
def kernel():
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name='python3', cwd=tempfile.mkdtemp())
    try:
        run(kc, SETUP)
        yield kc
    finally:
        kc.stop_channels(); km.shutdown_kernel(now=True)

def run(kc, code:str, allow_stdin:bool=False)->dict:
    errors = []
    def hook(msg):
        if msg['msg_type'] == 'error': errors.append('\n'.join(msg['content']['traceback']))
    reply = kc.execute_interactive(code, allow_stdin=allow_stdin, output_hook=hook, timeout=120)
    assert reply['content']['status'] == 'ok' and not errors, errors
    return reply

def pip_calls(kc, cell:str, hidden:bool, allow_stdin:bool, cwd:Path)->list:
    "The arguments of each `%pip` the cell ran, in the kernel's state given"
    run(kc, f"calls.clear(); hide = {hidden}; os.chdir({str(cwd)!r})")
    run(kc, cell, allow_stdin=allow_stdin)
    reply = kc.execute_interactive('', user_expressions={'calls': 'calls'}, timeout=60)
    return eval(reply['content']['user_expressions']['calls']['data']['text/plain'])

@pytest.mark.parametrize('hidden,allow_stdin,where,installs', [
    (False, True, 'elsewhere', False),   # asl_lib importable (the test kernel has it): nothing to do
    (True, True, 'elsewhere', True),     # opened alone on Kaggle or Colab by a person: install
    (True, False, 'elsewhere', False),   # papermill (nbclient sends allow_stdin=False): never installs behind a batch run
    (True, True, 'checkout', False),     # in this repository's nbs/: the README's install, not this one
], ids=['installed', 'kaggle-or-colab', 'papermill', 'checkout'])
def test_install_cell_in_a_fresh_kernel(kernel, hidden, allow_stdin, where, installs):
    cwd = ROOT/'nbs' if where == 'checkout' else Path(tempfile.mkdtemp())
    calls = pip_calls(kernel, install_cell(NBS[0]), hidden, allow_stdin, cwd)
    if installs:
        assert calls == ['install -q "asl_lib[hands] @ git+https://github.com/asl-lib/asl_lib"', 'install -q --no-deps mediapipe==0.10.21'], calls
    else: assert calls == [], calls
