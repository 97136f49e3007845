"""The CUDA paths, on a CUDA machine: `pytest -m gpu` (skipped without a GPU; never part of the default run). What a GPU instance
does: the whole series on real images, Grad-CAM and ONNX export of a CUDA-trained run, every GPU in one run, and `asl-bench`.
On a machine without registry access, `tools/gpu_bundle.py` packs what this needs (see its docstring)."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest, torch
from conftest import run_cli
from asl_lib.runner import SERIES
from asl_lib.testing import real_data

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')]

def _has_mediapipe():
    try: import mediapipe  # noqa: F401
    except ImportError: return False
    return True

@pytest.fixture(scope='module')
def subset(tmp_path_factory):
    "A small real training set (10 frames per class of `$ASL_REAL_DATA/asl-alphabet`, grassknoted's layout) and the real external test set"
    src, test = real_data('asl-alphabet'), real_data('external-desk-29')
    if src is None or test is None: pytest.skip('no real images: set ASL_REAL_DATA (tools/gpu_bundle.py packs a subset)')
    dst = tmp_path_factory.mktemp('real')/'asl-alphabet'/'asl_alphabet_train'/'asl_alphabet_train'
    for cls in sorted(p for p in src.rglob('*') if p.is_dir() and p.parent.name == 'asl_alphabet_train' and p.parent.parent.name == 'asl_alphabet_train'):
        (dst/cls.name).mkdir(parents=True)
        for f in sorted(cls.glob('*.jpg'))[:10]: shutil.copy(f, dst/cls.name/f.name)
    return dst.parents[1], test

@pytest.fixture(scope='module')
def cuda_run(subset, tmp_path_factory):
    "An EfficientNet-B0 run folder trained on the GPU (from scratch: no weights download)"
    out = tmp_path_factory.mktemp('runs')
    r = run_cli('asl-train', '--data', subset[0], '--arch', 'efficientnet_b0', '--epochs', 1, '--size', 64, '--bs', 32,
                '--no-pretrained', '--lr', 1e-3, '--out', out)
    assert r.returncode == 0, r.stderr[-3000:]
    return Path(r.stdout.strip().splitlines()[-1])

def test_series_on_cuda(subset, tmp_path):
    "Every notebook of the series, each architecture (landmarks when MediaPipe is installed), on real images at 64 px on the GPU"
    archs = ['resnet18', 'efficientnet_b0'] + ['landmarks']*_has_mediapipe()
    r = run_cli('asl-run', '-p', 'data', subset[0], '-p', 'test_data', subset[1], '-p', 'archs', json.dumps(archs), '-p', 'size', 64,
                '-p', 'bs', 32, '-p', 'epochs', 1, '-p', 'lr', 'null', '--out', tmp_path/'series')
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert all((tmp_path/'series'/nb).exists() for nb in SERIES)
    runs = [Path(p) for p in json.loads((tmp_path/'series'/'runs.json').read_text())]
    assert len(runs) == len(archs)
    for run in runs:
        m = json.loads((run/'metrics.json').read_text())
        assert m['device'].startswith('cuda'), m['device']
        assert m['precision'] == ('bf16' if torch.cuda.is_bf16_supported() else 'fp16'), m['precision']
        assert m['lr_source'] == 'given'  # notebook 02's lr_find, read by 03 (lr_find runs once per architecture)
        assert 0 <= m['valid_accuracy'] <= 1

def test_grad_cam_and_export_of_a_cuda_run(cuda_run, subset, tmp_path):
    "A run trained on the GPU: Grad-CAM on the GPU and on the CPU agree, and its ONNX export matches torch (asl-export checks to 1e-4)"
    from asl_lib.inference import grad_cam, load_model
    img = sorted(subset[1].rglob('*.jpg'))[0]
    cams = [grad_cam(load_model(cuda_run, device=d), img)[0] for d in ('cuda', 'cpu')]
    assert cams[0].shape == cams[1].shape and abs(cams[0] - cams[1]).max() < 0.05
    r = run_cli('asl-export', cuda_run, '--out', tmp_path/'onnx')
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path/'onnx'/'model.onnx').exists()

@pytest.mark.skipif(torch.cuda.device_count() < 2, reason='needs 2 or more GPUs')
def test_every_gpu_in_one_run(subset, tmp_path):
    "`--nproc` = the GPUs: one run folder, the global batch recorded, the rate scaled by sqrt(ranks)"
    n = torch.cuda.device_count()
    r = run_cli('asl-train', '--data', subset[0], '--arch', 'resnet18', '--epochs', 1, '--size', 64, '--bs', 16, '--no-pretrained',
                '--nproc', n, '--out', tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((Path(r.stdout.strip().splitlines()[-1])/'metrics.json').read_text())
    assert (m['nproc'], m['global_bs']) == (n, 16*n)
    assert abs(m['lr'] - m['lr_found'] * n**0.5) < 1e-9 * m['lr']

@pytest.mark.parametrize('arch', ['resnet18', 'efficientnet_b0'])
def test_bench_on_cuda(subset, arch):
    "`asl-bench` on the GPU at 224 px: training, the loader beside it, the plain loop in the same precision; printed, not judged"
    r = run_cli('asl-bench', '--data', subset[0], '--arch', arch, '--size', 224, '--bs', 128, '--loaders', '8', '--pipeline-images', 128)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'on cuda' in r.stdout and 'mixed precision' in r.stdout and 'projected epoch' in r.stdout
    print(r.stdout)
