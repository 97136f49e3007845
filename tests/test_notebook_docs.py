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

def test_readme_names_every_notebook():
    "The README's notebook table is the map of the docs: every notebook, and the module it exports"
    readme = (ROOT/'README.md').read_text()
    table = readme[readme.index('## The notebooks'):].split('\n## ')[0]
    missing = [nb.stem for nb in sorted((ROOT/'nbs').glob('*.ipynb')) if nb.stem != 'index' and f'| `{nb.stem}` |' not in table]
    assert not missing, f'the README table does not name {missing}'

@pytest.mark.parametrize('nb', [nb for nb in NBS if _parameters(nb) is not None], ids=lambda p: p.name)
def test_parameters_come_from_the_series_defaults(nb):
    "A notebook of the series run on its own does what a bare `asl-run` does: its `parameters` cell holds `asl_lib.runner.PARAMS` (TrainConfig's defaults but for the quick run's)"
    from asl_lib.runner import PARAMS, SERIES
    if nb.name not in SERIES: pytest.skip(f'{nb.name} is not part of the series: its parameters are its own')
    cell = next(c for c in cells(nb) if 'parameters' in c.get('metadata', {}).get('tags', []))
    values = {t.id: ast.literal_eval(n.value) for n in ast.parse(src(cell)).body if isinstance(n, ast.Assign) for t in n.targets}
    wrong = {k: (v, PARAMS[k]) for k, v in values.items() if k in PARAMS and v != PARAMS[k]}
    assert not wrong, f'{nb.name}: parameters that differ from asl_lib.runner.PARAMS (notebook, PARAMS): {wrong}'

_EVENTS = ('before_', 'after_')
def _documented_methods():
    "(notebook, 'Class.method') for every public method of an exported class, events of callbacks and transforms' encodes aside"
    for py in sorted((ROOT/'asl_lib').glob('*.py')):
        if py.stem.startswith('_') or py.stem == 'testing': continue
        tree = ast.parse(py.read_text())
        nb = re.search(r'File to edit: \.\./nbs/(\S+\.ipynb)', py.read_text()).group(1)
        names = next((ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign) and any(getattr(t, 'id', '') == '__all__' for t in n.targets)), [])
        for c in tree.body:
            if not (isinstance(c, ast.ClassDef) and c.name in names): continue
            bases = {getattr(b, 'id', getattr(b, 'attr', '')) for b in c.bases}
            for m in c.body:
                if (isinstance(m, ast.FunctionDef) and not m.name.startswith('_') and not m.name.startswith(_EVENTS)
                    and m.name not in ('encodes', 'forward') and not (bases & {'OptimWrapper'})):
                    yield nb, f'{c.name}.{m.name}'

def test_every_public_method_has_a_doc_entry():
    "Functions get theirs from their export cell; methods need `show_doc`, as in fastai's notebooks"
    missing = [f'{nb}: {m}' for nb, m in _documented_methods() if f'show_doc({m})' not in (ROOT/'nbs'/nb).read_text()]
    assert not missing, f'no show_doc for {missing}'

@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.name)
def test_outputs_show_no_local_install(nb):
    "A saved output is for readers: no warning quoting this machine's virtual environment or site-packages"
    bad = [i for i, c in enumerate(cells(nb)) for o in c.get('outputs', []) if re.search(r'\.venv|site-packages', json.dumps(o))]
    assert not bad, f'{nb.name}: cells {bad} show local install paths'

@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.name)
def test_every_notebook_names_its_kernel(nb):
    "JupyterLab, Kaggle and Colab open a notebook without asking for a kernel when its metadata names one"
    ks = json.loads(nb.read_text())['metadata'].get('kernelspec', {})
    assert ks.get('name') == 'python3' and ks.get('language') == 'python', f'{nb.name}: kernelspec {ks}'
