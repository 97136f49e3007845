"`asl-bench` prints every number, including the comparison with the plain PyTorch loop (numbers are not asserted: speed is the machine's)."
import json, re
from conftest import run_cli

def test_bench_prints_plain_and_ratio(synth):
    r = run_cli('asl-bench', '--data', synth['grassknoted'], '--arch', 'resnet18', '--size', '32', '--bs', '16', '--loaders', '0')
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    plain = [l for l in lines if l.startswith('plain train:')]
    ratio = [l for l in lines if l.startswith('ratio fastai/plain:')]
    assert len(plain) == 1 and len(ratio) == 1
    assert float(re.search(r'ratio fastai/plain: ([\d.]+)', ratio[0]).group(1)) > 0
    for key in ('fastai train:', 'fastai valid:', 'cpu latency: median', 'resized cache:', 'peak memory:', 'loading with 0 workers:'):
        assert any(l.startswith(key) for l in lines), key

def test_bench_json(synth):
    r = run_cli('asl-bench', '--data', synth['grassknoted'], '--size', '32', '--bs', '16', '--loaders', '0', '--json')
    res = json.loads(r.stdout)
    assert {'train_img_s', 'plain_img_s', 'ratio', 'valid_img_s', 'cpu_latency_median_ms', 'cpu_latency_p90_ms', 'peak_memory_mb',
            'cache_speedup', 'loading_img_s'} <= set(res) and all(v > 0 for v in res['loading_img_s'].values())
