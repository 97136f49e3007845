"""No code or test assumes the CPU: tensors go through `.cpu()` before `.numpy()`, and `torch.equal` compares on the CPU.

A grep-level check over the notebooks (the source, with their tests) and the test files: on a GPU, `.numpy()` on a CUDA tensor
raises and `torch.equal` across devices raises, so code that passes here on CPU would fail on the machines users train on."""
import json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

def code_lines():
    "(file, line) for every line of code in the notebooks' code cells and the test files"
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        for cell in json.loads(nb.read_text())['cells']:
            if cell['cell_type'] == 'code': yield from ((nb.name, l) for l in ''.join(cell['source']).splitlines())
    for f in sorted((ROOT/'tests').glob('*.py')):
        if f.name != Path(__file__).name: yield from ((f.name, l) for l in f.read_text().splitlines())

_COMPARE = ('test_close(', 'test_eq(', 'torch.allclose(', '==')
_BATCH = re.compile(r'one_batch\(\)(\[\d\])?(?!(\[\d\])?\.(cpu\(\)|shape))')  # a batch lives on the default device: the GPU when there is one

def device_problems(lines)->list:
    "Lines that call `.numpy()` without `.cpu()` first, `torch.equal` with no `.cpu()` on the line, or compare a batch not moved to the CPU"
    bad = []
    for f, l in lines:
        if re.search(r'(?<!\.cpu\(\))\.numpy\(\)', l): bad.append(f'{f}: {l.strip()}')
        elif 'torch.equal(' in l and '.cpu()' not in l: bad.append(f'{f}: {l.strip()}')
        elif _BATCH.search(l) and any(c in l for c in _COMPARE): bad.append(f'{f}: {l.strip()}')
    return bad

def test_the_check_finds_problems():
    assert len(device_problems([('x', 'y = out.numpy()'), ('x', 'torch.equal(a, b)'), ('x', 'out.cpu().numpy()'),
                                 ('x', 'torch.equal(a.cpu(), b)')])) == 2
    # issue 22: a batch (on the GPU there) compared with load_learner's (on the CPU): the check that stopped 01_datablock on CUDA
    assert len(device_problems([('x', "test_close(load_learner(f).dls.test_dl([o]).one_batch()[0], grey)"), ('x', "test_close(dls.one_batch()[0], grey)"),
                                 ('x', "test_close(dls.one_batch()[0].cpu(), grey)"), ('x', "test_eq(dls.one_batch()[0].shape, (1, 3))"),
                                 ('x', "xb, yb = dls.one_batch()")])) == 2

def test_no_cpu_only_tensor_code():
    assert device_problems(code_lines()) == []
