"""The notebooks' first use: opened and run in JupyterLab, in a real browser, as a reader does (slow: a server, a kernel, Chromium)."""
import json, os, re, secrets, shutil, subprocess, time, urllib.request
from pathlib import Path
from urllib.parse import urlparse
import pytest
from conftest import BIN, free_port
from test_demo import _chromium

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = '01_datablock.ipynb'

def start_jupyterlab(root:Path, folder:Path)->tuple:
    "`jupyter lab` serving `root` on 127.0.0.1 with a token and settings of its own: (process, base address, token)"
    settings = folder/'settings'/'@jupyterlab'
    (settings/'notebook-extension').mkdir(parents=True)
    (settings/'apputils-extension').mkdir(parents=True)
    # every cell in the page (JupyterLab 4 renders only the cells on screen by default), and no news to ask about
    (settings/'notebook-extension'/'tracker.jupyterlab-settings').write_text(json.dumps({'windowingMode': 'none'}))
    (settings/'apputils-extension'/'notification.jupyterlab-settings').write_text(json.dumps({'fetchNews': 'false', 'checkForUpdates': False}))
    port, token = free_port(), secrets.token_hex(16)
    # a reader's environment: inline figures (no MPLBACKEND=Agg), generated images (no ASL_REAL_DATA), Jupyter's files in `folder`
    env = {k: v for k, v in os.environ.items() if k not in ('MPLBACKEND', 'ASL_REAL_DATA')}
    env |= dict(JUPYTER_CONFIG_DIR=str(folder/'config'), JUPYTER_RUNTIME_DIR=str(folder/'runtime'), OMP_NUM_THREADS='2')
    proc = subprocess.Popen([str(BIN/'jupyter'), 'lab', '--no-browser', '--ServerApp.ip=127.0.0.1', f'--ServerApp.port={port}',
                             f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={root}', f'--LabApp.user_settings_dir={folder/"settings"}',
                             f'--LabApp.workspaces_dir={folder/"workspaces"}', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
                             *(['--allow-root'] if os.geteuid() == 0 else [])],  # CI machines run as root
                            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=open(folder/'jupyter.log', 'w'), start_new_session=True)
    base, start = f'http://127.0.0.1:{port}', time.time()
    while True:
        assert proc.poll() is None, (folder/'jupyter.log').read_text()[-3000:]
        assert time.time() - start < 120, 'jupyter lab did not answer in 120 s'
        try:
            with urllib.request.urlopen(f'{base}/api/status?token={token}', timeout=5) as r:
                if r.status == 200: return proc, base, token
        except OSError: time.sleep(1)

ALL_RAN = """() => {
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
  const idle = document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status === 'idle';
  return idle && prompts.length > 0 && !prompts.some(p => p.includes('*')) && /\\[\\d+\\]/.test(prompts[prompts.length - 1]);
}"""

@pytest.mark.slow
def test_datablock_notebook_runs_in_jupyterlab(tmp_path):
    "Open 01_datablock in JupyterLab 4: no kernel dialog; Run > Run All Cells; no error, the batch pictures shown, the kernel idle"
    sync_api = pytest.importorskip('playwright.sync_api', reason='playwright is not installed: pip install playwright')
    exe, root = _chromium(), tmp_path/'nbs'
    root.mkdir(); shutil.copy(ROOT/'nbs'/NOTEBOOK, root)
    proc, base, token = start_jupyterlab(root, tmp_path)
    shot, outside, t0 = tmp_path/'jupyterlab.png', [], time.time()
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, headless=True)
            ctx = browser.new_context(viewport=dict(width=1400, height=1000))
            ctx.on('request', lambda r: urlparse(r.url).hostname not in (None, '127.0.0.1', 'localhost') and outside.append(r.url))
            ctx.set_default_timeout(120_000)
            page = ctx.new_page()
            page.goto(f'{base}/lab/tree/{NOTEBOOK}?token={token}')
            page.locator('.jp-Notebook .jp-CodeCell').nth(5).wait_for()  # the notebook is open; then its kernel starts, or a dialog asks which
            page.locator('.jp-Dialog').or_(page.get_by_text('Python 3 (ipykernel) | Idle')).first.wait_for()
            dialogs = page.locator('.jp-Dialog').all_inner_texts()
            page.locator('.lm-MenuBar-itemLabel', has_text=re.compile(r'^Run$')).click()
            page.locator('.lm-Menu-itemLabel', has_text=re.compile(r'^Run All Cells$')).click()
            page.wait_for_function(ALL_RAN, timeout=300_000, polling=1000)
            pictures = page.locator('.jp-OutputArea-output img').count()
            page.keyboard.press('Control+s')
            page.locator('.jp-mod-dirty').first.wait_for(state='detached')  # saved: the tab no longer marks unsaved changes
            page.screenshot(path=str(shot), full_page=False)
            status = page.locator('.jp-Notebook-ExecutionIndicator').get_attribute('data-status')
            browser.close()
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
    print(f'JupyterLab test: {time.time() - t0:.1f} s wall; screenshot {shot}')
    assert dialogs == [], f'a dialog greeted the reader: {dialogs}'
    nb = json.loads((root/NOTEBOOK).read_text())
    code = [c for c in nb['cells'] if c['cell_type'] == 'code']
    errors = [o for c in code for o in c.get('outputs', []) if o['output_type'] == 'error']
    assert not errors, [f"{o['ename']}: {o['evalue']}" for o in errors]
    assert all(c['execution_count'] for c in code), [c['source'][:1] for c in code if not c['execution_count']]
    batch = [c for c in code if 'show_batch' in ''.join(c['source'])]
    assert batch and all(any(k.startswith('image/') for o in c['outputs'] for k in o.get('data', {})) for c in batch), 'show_batch drew no picture'
    assert pictures >= len(batch) and status == 'idle' and shot.stat().st_size > 20_000
    assert not outside, f'the page fetched from outside this machine: {outside[:5]}'
