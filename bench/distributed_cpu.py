"""Training throughput with 1 and 2 processes on CPU (gloo): proves the distributed path works; 2 cores give no speed-up here.

    .venv/bin/python bench/distributed_cpu.py [--epochs 2] [--size 32]
"""
import json, tempfile
from pathlib import Path
from fastcore.script import call_parse
from asl_lib.testing import synthetic_data
from asl_lib.train import train

@call_parse
def main(epochs:int=2, # Epochs per run
         size:int=32, # Image size
         bs:int=32, # Batch size (per process)
         n_per_class:int=100, # Generated images per class
        ):
    "Print training images/second of ResNet18 for 1 and 2 processes"
    data, out = synthetic_data('train', n_per_class=n_per_class), Path(tempfile.mkdtemp())
    for nproc in (1, 2):
        run = train(data, 'resnet18', epochs=epochs, size=size, bs=bs, lr=1e-2, pretrained=False, out=out, name=f'p{nproc}', workers=0, nproc=nproc)
        m = json.loads((run/'metrics.json').read_text())
        print(f"nproc={nproc}: {m['n_train']*epochs/m['train_seconds']:.1f} training images/s "
              f"({m['train_seconds']:.1f}s for {epochs} epochs of {m['n_train']} images at {size}px, valid accuracy {m['valid_accuracy']:.3f})", flush=True)
