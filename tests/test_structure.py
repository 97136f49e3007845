"""The package's shape: modules depend in one direction (DEVELOPERS.md draws the layers), test support stays out of production,
and nothing forwards names of a package that was never released."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = {p.stem: p for p in (ROOT/'asl_lib').glob('*.py') if not p.stem.startswith('_')}

def imports(path:Path)->set:
    "The asl_lib modules `path` imports anywhere in it: at the top, inside functions (lazily) or under conditions"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if node.level == 1: found |= {mod.split('.')[0]} if mod else {a.name for a in node.names}
            elif mod.startswith('asl_lib.'): found.add(mod.split('.')[1])
            elif mod == 'asl_lib': found |= {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split('.')[1] for a in node.names if a.name.startswith('asl_lib.')}
    return (found & set(MODULES)) - {path.stem}

GRAPH = {m: imports(p) for m, p in MODULES.items()}

def test_no_import_circle():
    def path_back(start):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for d in sorted(GRAPH[node]):
                if d == start: return path + [start]
                if d not in path: stack.append((d, path + [d]))
    circles = [c for m in sorted(GRAPH) if (c := path_back(m))]
    assert not circles, f'import circles (lazy imports counted): {circles[:3]}'

def test_production_never_imports_testing():
    assert [m for m, deps in GRAPH.items() if 'testing' in deps and m != 'testing'] == []

def test_the_run_folder_is_read_without_the_trainer():
    "Readers of run folders (tracking, tuning, inference) import `runs`, not `train`'s internals"
    assert 'train' not in GRAPH['track'] and 'train' not in GRAPH['inference'] and 'runs' in GRAPH['track']

def test_no_module_getattr_forwards():
    "No module forwards old names through a module-level `__getattr__`"
    assert [m for m, p in MODULES.items() if any(isinstance(n, ast.FunctionDef) and n.name == '__getattr__'
                                                 for n in ast.parse(p.read_text()).body)] == []
