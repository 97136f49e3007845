"`asl-bench` prints every number, including the comparison with the plain PyTorch loop (numbers are not asserted: speed is the machine's)."
import json, os, re
from conftest import run_cli

SMALL = ('--size', '32', '--bs', '16', '--loaders', '0', '--pipeline-size', '48', '--pipeline-images', '32')

def _env(tmp_path): return {**os.environ, 'ASL_CACHE': str(tmp_path/'cache')}  # the resized cache stays out of the home folder

def test_bench_prints_plain_and_ratio(synth, tmp_path):
    r = run_cli('asl-bench', '--data', synth['grassknoted'], '--arch', 'resnet18', *SMALL, env=_env(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    plain = [l for l in lines if l.startswith('plain train:')]
    ratio = [l for l in lines if l.startswith('ratio fastai/plain:')]
    assert len(plain) == 1 and len(ratio) == 1
    assert float(re.search(r'ratio fastai/plain: ([\d.]+)', ratio[0]).group(1)) > 0
    for key in ('fastai train:', 'fastai valid:', 'cpu latency: median', 'resized cache:', 'peak memory:', 'loading with 0 workers:',
                'precision: ', 'item pipeline per loader worker at 48px'):
        assert any(l.startswith(key) for l in lines), key
    pipe = next(l for l in lines if l.startswith('item pipeline'))
    assert re.search(r'(\d+) img/s with the per-item CPU resize \(before\), (\d+) img/s with the batch resize on the device \(after\): ([\d.]+)x', pipe), pipe

def test_bench_json(synth, tmp_path):
    r = run_cli('asl-bench', '--data', synth['grassknoted'], *SMALL, '--json', env=_env(tmp_path))
    res = json.loads(r.stdout)
    assert {'train_img_s', 'plain_img_s', 'ratio', 'valid_img_s', 'cpu_latency_median_ms', 'cpu_latency_p90_ms', 'peak_memory_mb',
            'cache_speedup', 'loading_img_s', 'precision', 'pipeline_img_s'} <= set(res) and all(v > 0 for v in res['loading_img_s'].values())
    p = res['pipeline_img_s']
    assert p['size'] == 48 and p['before'] > 0 and p['after'] > 0 and p['ratio'] > 0

def test_bench_usage_errors(synth):
    for args, msg in ((('--loaders', 'a,b'), '--loaders must be'), (('--size', '0'), '--size must be'), (('--pipeline-images', '0'), '--pipeline-images must be')):
        r = run_cli('asl-bench', '--data', synth['grassknoted'], *args)
        assert r.returncode == 1 and f'error: {msg}' in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]
