"""Write README.md from nbs/index.ipynb (what `nbdev-readme` does, without quarto, which cannot be installed offline).

Markdown cells are copied, code cells become fenced Python with their text output below; `#| hide` cells are left out.
Run it after editing nbs/index.ipynb; CI checks that README.md is what it produces."""
from pathlib import Path
import json

root = Path(__file__).resolve().parents[1]

def _directives(src): return [l for l in src.splitlines() if l.startswith('#|')]

def cell_md(cell):
    "The Markdown for one notebook cell, or '' when it is hidden"
    src = ''.join(cell['source'])
    if cell['cell_type'] == 'markdown': return src
    if any('hide' in d for d in _directives(src)): return ''
    code = '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip()
    out = ''.join(''.join(o.get('text', '')) for o in cell.get('outputs', []) if o.get('output_type') == 'stream')
    return f'```python\n{code}\n```' + (f'\n\n```\n{out.rstrip()}\n```' if out.strip() else '')

def make_readme():
    nb = json.loads((root/'nbs/index.ipynb').read_text())
    parts = [cell_md(c) for c in nb['cells']]
    md = '\n\n'.join(p for p in parts if p.strip())
    (root/'README.md').write_text('<!-- WARNING: generated from nbs/index.ipynb by tools/make_readme.py; edit the notebook. -->\n\n' + md + '\n')

if __name__ == '__main__': make_readme()
