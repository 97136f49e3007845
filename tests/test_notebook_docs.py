"The notebooks are the documentation: their example outputs are committed, made on generated images, and public text speaks to users"
import ast, json, re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted((ROOT/'nbs').glob('*.ipynb'))
IMAGE_TYPES = ('image/png', 'image/jpeg', 'image/svg+xml')
# What a cell that reads real photographs says: only cells that say none of it may show an image
REAL = re.compile(r'real_data\(|ASL_REAL_DATA|shared/data|danrasband/|grassknoted/|external-desk')

def cells(nb:Path)->list: return json.loads(nb.read_text())['cells']
def src(cell)->str: return ''.join(cell['source'])
def directives(cell)->set: return {l[3:].split()[0] for l in src(cell).splitlines() if l.startswith('#| ') and l[3:].split()}

@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.name)
def test_examples_have_saved_outputs(nb):
    "A reader on GitHub or the docs site sees what the examples produce"
    shown = [c for c in cells(nb) if c['cell_type'] == 'code' and 'hide' not in directives(c) and c.get('outputs')]
    assert shown, f'{nb.name}: no example cell has a saved output (run `nbdev-test {nb.relative_to(ROOT)} --save`)'

@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.name)
def test_no_real_photograph_in_outputs(nb):
    "Images in outputs come only from cells on generated data; slow cells (real data, long training) keep no outputs"
    for c in cells(nb):
        if c['cell_type'] != 'code': continue
        outs = c.get('outputs', [])
        if 'slow' in directives(c): assert not outs, f'{nb.name}: a #| slow cell has saved outputs:\n{src(c)[:300]}'
        has_image = any(k in o.get('data', {}) for o in outs for k in IMAGE_TYPES)
        if has_image: assert not REAL.search(src(c)), f'{nb.name}: a cell that may read real photos shows an image:\n{src(c)[:300]}'

def _parameters(nb:Path)->dict|None:
    cell = next((c for c in cells(nb) if 'parameters' in c.get('metadata', {}).get('tags', [])), None)
    if cell is None: return None
    return {t.id: n.value.value for n in ast.parse(src(cell)).body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
            for t in n.targets if isinstance(t, ast.Name)}

@pytest.mark.parametrize('nb', [nb for nb in NBS if _parameters(nb) is not None], ids=lambda p: p.name)
def test_parameters_default_to_generated_data(nb):
    "Run as is, a notebook reads generated images, so its saved outputs never come from someone's photos"
    params = _parameters(nb)
    for k in ('data', 'test_data'):
        if k in params: assert params[k] is None, f'{nb.name}: parameter {k} defaults to {params[k]!r}, not None (generated data)'

def _public_texts():
    yield ROOT/'README.md', (ROOT/'README.md').read_text()
    for p in sorted((ROOT/'examples').glob('*')): yield p, p.read_text()
    for p in sorted((ROOT/'asl_lib').glob('*.py')): yield p, p.read_text()
    for nb in NBS: yield nb, '\n'.join(src(c) for c in cells(nb) if c['cell_type'] == 'markdown')

def test_public_text_names_no_ci_layout():
    "Users do not have this project's `../shared/data`: public files name a Kaggle handle, `PATH` or `$ASL_REAL_DATA`"
    bad = [str(p.relative_to(ROOT)) for p, text in _public_texts() if '../shared' in text]
    assert not bad, f'these public files name the CI folder ../shared: {bad}'

def test_notebooks_stay_small():
    "Saved outputs are examples, not data dumps"
    big = {nb.name: nb.stat().st_size for nb in NBS if nb.stat().st_size > 3_000_000}
    assert not big, f'notebooks over 3 MB: {big}'
