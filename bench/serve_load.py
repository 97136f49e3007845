"""Load on `asl-serve`: requests/s, latency p50/p99, errors and the service's peak memory, at 16 and 300 concurrent clients.

    .venv/bin/python bench/serve_load.py [--model EXPORT] [--seconds 15] [--clients 16 300]

Without --model it trains a 32 px ResNet18 for one epoch on generated images and exports it (as the README's figures were made).
Every client keeps one connection open and sends one 64x64 JPEG per request, again and again, for --seconds. Traffic goes to
127.0.0.1 only, and the run stops by itself.
"""
import http.client, io, os, signal, socket, subprocess, sys, tempfile, threading, time
from pathlib import Path
import numpy as np
from PIL import Image
from fastcore.script import call_parse

def _free_port()->int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _export()->Path:
    from asl_lib.export import export_onnx
    from asl_lib.testing import synthetic_data
    from asl_lib.train import train
    out = Path(tempfile.mkdtemp())
    run = train(synthetic_data('train', n_per_class=20), 'resnet18', epochs=1, size=32, bs=32, lr=1e-2, pretrained=False, out=out, workers=0)
    return export_onnx(run)

def _body(photo:bytes, boundary:str='asl-bench')->tuple:
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
            + photo + f'\r\n--{boundary}--\r\n'.encode())
    return body, {'Content-Type': f'multipart/form-data; boundary={boundary}'}

def _client(port:int, body:bytes, headers:dict, until:float, out:list):
    "Send requests on one connection until `until`; append (status, seconds) of each to `out`"
    conn = None
    while time.monotonic() < until:
        start = time.monotonic()
        try:
            conn = conn or http.client.HTTPConnection('127.0.0.1', port, timeout=60)
            conn.request('POST', '/predict', body, headers)
            r = conn.getresponse(); r.read()
            out.append((r.status, time.monotonic() - start))
            if r.getheader('connection', '').lower() == 'close': conn.close(); conn = None
        except OSError:
            out.append((0, time.monotonic() - start)); conn = None; time.sleep(0.05)

def _hwm_mb(pid:int)->float:
    return next(int(l.split()[1]) for l in Path(f'/proc/{pid}/status').read_text().splitlines() if l.startswith('VmHWM')) / 1024

@call_parse
def main(model:str=None, # An asl-export folder (default: train and export a 32 px ResNet18 on generated images)
         seconds:float=15, # How long each load lasts
         clients:int=None, # One number of concurrent clients (default: 16, then 300)
        ):
    "Print requests/s, p50/p99 latency, errors and peak memory of asl-serve under load"
    folder = Path(model) if model else _export()
    buf = io.BytesIO(); Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, 'JPEG')
    body, headers = _body(buf.getvalue())
    port = _free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent/'asl-serve'), str(folder), '--port', str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try: c = http.client.HTTPConnection('127.0.0.1', port, timeout=2); c.request('GET', '/health'); c.getresponse().read(); break
            except OSError: time.sleep(0.1)
        print(f"asl-serve {folder} on {os.cpu_count()} CPUs (default limits: --max-busy 4, --wait 10)", flush=True)
        for n in ([clients] if clients else [16, 300]):
            res, until = [], time.monotonic() + seconds
            threads = [threading.Thread(target=_client, args=(port, body, headers, until, res), daemon=True) for _ in range(n)]
            for t in threads: t.start()
            for t in threads: t.join(seconds + 120)
            ok = np.array([s for c, s in res if c == 200]) * 1000
            codes = {c: sum(1 for o, _ in res if o == c) for c in sorted({c for c, _ in res}) if c != 200}
            p50, p99 = (np.percentile(ok, 50), np.percentile(ok, 99)) if len(ok) else (float('nan'),) * 2
            print(f"{n:4d} clients: {len(ok)/seconds:7.1f} requests/s answered 200, p50 {p50:6.1f} ms, p99 {p99:7.1f} ms, "
                  f"other answers {codes or 'none'} (0 = connection failed), server peak memory {_hwm_mb(server.pid):.0f} MB", flush=True)
    finally:
        server.send_signal(signal.SIGINT)
        try: server.wait(30)
        except subprocess.TimeoutExpired: server.kill()
