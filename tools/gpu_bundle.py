#!/usr/bin/env python
"""Prepare a GPU machine that has no registry access for `pytest -m gpu` and `asl-bench` on CUDA: one folder, one command there.

The machine this project is lent (one H200) runs Python 3.12 with torch 2.11, torchvision, timm, onnx, onnxruntime, safetensors,
matplotlib, seaborn, pandas, scikit-learn and OpenCV, but not fastai and its family, papermill's Jupyter stack, kagglehub or
execnb, reaches no registry and takes at most 64 MiB. Here (with the registry) this writes `gpu-bundle/`:

- `wheels/`: Python 3.12 Linux wheels of what that machine lacks (the closure of `ROOTS` over this environment's installed
  metadata, stopping at what the machine has, `ON_DEVICE`), at the versions installed here, and asl_lib's own wheel;
- `data/`: a small real subset (`--per-class` images per class of `$ASL_REAL_DATA`'s asl-alphabet and external-desk-29);
- `run.sh`: installs the wheels there (`pip install --no-deps --no-index --target`) and runs the `gpu` tests and `asl-bench`.

    python tools/gpu_bundle.py                 # here, from the repository root: about 15 MB without MediaPipe
    bash gpu-bundle/run.sh                     # there, from the repository root (the repository and gpu-bundle/ copied over)

`--mediapipe` adds MediaPipe 0.10.21 and its runtime needs (about 36 MB more), so the series trains the landmark model too."""
import argparse, json, os, re, shutil, subprocess, sys, tempfile
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOTS = ['fastai', 'nbdev', 'fastcore', 'fastprogress', 'fastdownload', 'fasttransform', 'plum-dispatch', 'accelerate', 'papermill',
         'ipykernel', 'nbclient', 'kagglehub', 'kaggle', 'execnb', 'pytest', 'pyyaml']
ON_DEVICE = {'torch', 'torchvision', 'timm', 'onnx', 'onnxruntime', 'safetensors', 'matplotlib', 'seaborn', 'pandas', 'scikit-learn',
             'opencv-python', 'opencv-python-headless', 'numpy', 'pillow', 'scipy', 'huggingface-hub', 'spacy', 'triton', 'sympy',
             'networkx', 'jinja2', 'markupsafe', 'filelock', 'fsspec', 'typing-extensions', 'setuptools', 'pip', 'wheel'}
MEDIAPIPE = ['mediapipe==0.10.21', 'absl-py', 'attrs', 'flatbuffers', 'protobuf']
TARGET = dict(python='3.12', platforms=['manylinux_2_28_x86_64', 'manylinux_2_17_x86_64', 'manylinux2014_x86_64', 'linux_x86_64'])

def norm(name): return re.sub(r'[-_.]+', '-', name).lower()

def closure(roots:list)->dict:
    "name -> installed version of `roots` and everything they need on Python 3.12 Linux, except what the GPU machine has"
    env = {**default_environment(), 'python_version': TARGET['python'], 'python_full_version': TARGET['python'] + '.0',
           'sys_platform': 'linux', 'platform_system': 'Linux', 'platform_machine': 'x86_64'}
    todo, found = [norm(r) for r in roots], {}
    while todo:
        name = todo.pop()
        if name in found or name in ON_DEVICE: continue
        try: dist = metadata.distribution(name)
        except metadata.PackageNotFoundError: sys.exit(f'{name} is not installed here: install the [dev] extra first (see the README).')
        found[name] = dist.version
        for r in dist.requires or []:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate({**env, 'extra': ''}): todo.append(norm(req.name))
    return found

def download(pins:list, dest:Path):
    "Wheels of `pins` for the GPU machine's Python and platform (no dependencies: the pins are the closure)"
    plat = [a for p in TARGET['platforms'] for a in ('--platform', p)]
    subprocess.run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '--only-binary=:all:', '--python-version', TARGET['python'],
                    *plat, '-d', dest, *pins], check=True)

def build_wheel(root:Path, dest:Path)->Path:
    "asl_lib's wheel from the checkout `root`, built in a temporary copy of what goes into it (the checkout gets no build/ folder)"
    with tempfile.TemporaryDirectory(prefix='asl_lib-wheel-') as tmp:
        src = Path(tmp)/'src'
        shutil.copytree(root/'asl_lib', src/'asl_lib', ignore=shutil.ignore_patterns('__pycache__'))
        (src/'nbs').mkdir()
        for nb in (root/'nbs').glob('*.ipynb'): shutil.copy2(nb, src/'nbs'/nb.name)
        for f in ('pyproject.toml', 'README.md'): shutil.copy2(root/f, src/f)
        subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w', dest, src], check=True)
    return max(Path(dest).glob('asl_lib-*.whl'), key=lambda p: p.stat().st_mtime)

def subset(src:Path, dst:Path, per_class:int):
    "The first `per_class` images of each class folder under `src`, in the same layout"
    n = 0
    for cls in sorted({p.parent for p in src.rglob('*.jpg')}):
        out = dst/cls.relative_to(src.parent)
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(cls.glob('*.jpg'))[:per_class]: shutil.copy2(f, out/f.name); n += 1
    return n

RUN = '''#!/usr/bin/env bash
# On the GPU machine, from the repository root: bash gpu-bundle/run.sh   (made by tools/gpu_bundle.py)
set -euo pipefail
B="$(cd "$(dirname "$0")" && pwd)"; T="${ASL_SITE:-/tmp/asl-site}"
python3 -m pip install -q --upgrade --no-deps --no-index --target "$T" "$B"/wheels/*.whl
export PYTHONPATH="$T" PATH="$T/bin:$PATH" ASL_BIN="$T/bin" ASL_REAL_DATA="$B/data" MPLBACKEND=Agg PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
python3 -m pytest -m gpu -p no:cacheprovider -rA -s --durations=10 tests/test_gpu.py "$@"
'''

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default='gpu-bundle'); ap.add_argument('--per-class', type=int, default=10)
    ap.add_argument('--mediapipe', action='store_true', help='add MediaPipe (about 36 MB): the landmark model trains there too')
    a = ap.parse_args()
    root, out = Path(__file__).resolve().parents[1], Path(a.out).absolute()
    if out.exists():
        if not (out/'run.sh').exists(): sys.exit(f'{out} exists and is not a bundle this script made: pass another --out.')
        shutil.rmtree(out)
    (out/'wheels').mkdir(parents=True)
    pins = closure(ROOTS)
    download([f'{n}=={v}' for n, v in sorted(pins.items())] + (MEDIAPIPE if a.mediapipe else []), out/'wheels')
    build_wheel(root, out/'wheels')
    data = os.environ.get('ASL_REAL_DATA') or (root.parent/'shared'/'data')
    n = sum(subset(Path(data)/name, out/'data', a.per_class) for name in ('asl-alphabet', 'external-desk-29') if (Path(data)/name).exists())
    (out/'run.sh').write_text(RUN); (out/'run.sh').chmod(0o755)
    (out/'bundle.json').write_text(json.dumps(dict(python=TARGET['python'], packages=pins, mediapipe=a.mediapipe, images=n), indent=1))
    mb = sum(f.stat().st_size for f in out.rglob('*') if f.is_file()) / 2**20
    print(f'{out}: {len(pins)} packages, {n} real images, {mb:.1f} MB; there, from the repository root: bash {out.name}/run.sh')

if __name__ == '__main__': main()
