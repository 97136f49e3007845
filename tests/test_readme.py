"""The README is a test: every command of its ```sh blocks runs verbatim, in README order, from one fresh working folder.

Only two things are added, both through documented means: the data sources are swapped for the simulated Kaggle (generated zips
served for the two Kaggle handles; downloads under a temporary `ASL_DATA`; made-up hands in the generated images for the hand
commands), and sizes are kept tiny by APPENDING documented flags
(argparse and `-p` let a later value override an earlier one). Pretrained weights come from caches seeded in temporary folders
(`TORCH_HOME`, `HF_HOME`), so `pretrained` commands run without a network. Files the README assumes the user has (`photo.jpg`,
`~/Downloads/asl-alphabet-test.zip`, a folder of their own photos) are generated in the fresh folder (and a temporary `HOME`).
The parser is generic: when the README changes, this test follows it; what each command must produce is keyed by its name below.
"""
import json, os, re, shlex, shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import BIN, GRASSKNOTED, DANRASBAND, SIGN_MNIST, free_port, kaggle_env
from asl_lib.hands import DETECTOR_ENV
from asl_lib.testing import FAKE_HANDS, LocalHub

ROOT = Path(__file__).resolve().parents[1]
# Install and test commands are what CI itself runs (.ci/run installs exactly this way, then runs the test command); run from here
# they would reinstall the environment under test or run this suite inside itself.
SKIP = ('python3 -m venv', 'pip ', '.venv/bin/', 'nbdev-test', 'pytest')
IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')

def tiny_flags(name:str, args:list)->list:
    "Flags appended to a README command of `name`: the simulated Kaggle's handles as data sources (Sign-MNIST's kept), tiny sizes"
    sign_mnist = SIGN_MNIST in args
    if name == 'asl-train':
        flags = ['--data', SIGN_MNIST if sign_mnist else GRASSKNOTED, '--size', '32', '--epochs', '1', '--bs', '16', '--per-class', '4', '--lr', '1e-2',
                 '--lr-num-it', '5', '--workers', '0']
        # keep the run folder's name what the README's own arguments give, so the README's later commands find it
        if '--name' not in args: flags += ['--name', default_run_name(args)]
        return flags
    if name == 'asl-evaluate': return ['--test', SIGN_MNIST if sign_mnist else DANRASBAND, '--bs', '16']
    if name == 'asl-tune':
        return ['--data', GRASSKNOTED, '--trials', '2', *[x for k, v in dict(arch='resnet18', size=32, epochs=1, bs=16, per_class=4,
                pretrained='false', crop='false', workers=0).items() for x in ('-p', k, str(v))]]
    if name == 'asl-run':
        return [x for k, v in dict(data=GRASSKNOTED, test_data=DANRASBAND, size=32, epochs=1, bs=16, per_class=4, lr=0.01).items()
                for x in ('-p', k, str(v))]
    return []

def default_run_name(args:list)->str:
    "The run folder name `asl-train` gives for the README's `args` (`asl_lib.train.default_run_name` of their config)"
    from asl_lib.train import TrainConfig, default_run_name as run_name
    d = TrainConfig()
    def opt(flag, default): return args[args.index(flag)+1] if flag in args[:-1] else default
    return run_name(TrainConfig(arch=opt('--arch', d.arch), split=opt('--split', d.split), size=int(opt('--size', d.size)),
                                crop='--crop' in args, flip='--flip' in args))

def sh_commands(md:str)->list:
    "Every command line of the ```sh blocks of `md`, in order (continuation lines joined, comment lines left out)"
    cmds = []
    for block in re.findall(r'^```(?:sh|bash|shell|console)[ \t]*\n(.*?)^```', md, re.M | re.S):
        for cmd in re.sub(r'\\\n', ' ', block).splitlines():
            cmd = cmd.strip().removeprefix('$ ')
            if cmd and not cmd.startswith('#'): cmds.append(cmd)
    return cmds

def asl_segment(cmd:str)->tuple|None:
    "(start, end, name) of the `asl-*` command inside the shell line `cmd`: where its arguments end (a pipe, `)`, `;`, `&`, a redirect or a comment)"
    m = re.search(r'(?:^|[\s($;&|])(asl-[a-z]+)\b', cmd)
    if not m: return None
    i, quote = m.start(1), None
    while i < len(cmd):
        c = cmd[i]
        if quote:
            if c == quote: quote = None
        elif c in '\'"': quote = c
        elif c in '|;&)<>' or (c == '#' and cmd[i-1].isspace()): break
        i += 1
    return m.start(1), len(cmd[:i].rstrip()), m.group(1)

def with_tiny_flags(cmd:str)->tuple:
    "`cmd` with `tiny_flags` appended to its `asl-*` command; also its name and its own arguments"
    seg = asl_segment(cmd)
    if seg is None: return cmd, None, []
    start, end, name = seg
    args = shlex.split(cmd[start:end])[1:]
    flags = ' '.join(map(shlex.quote, tiny_flags(name, args)))
    return (cmd[:end] + (' ' + flags if flags else '') + cmd[end:]), name, args

def provide_assumed_files(name:str, args:list, cwd:Path, home:Path, zips:dict):
    "Generate the files a README command assumes the user has: photos for `asl-predict`, a downloaded zip for `asl-data`"
    from PIL import Image
    import numpy as np
    if name == 'asl-calibrate' and len(args) > 1 and not (cwd/args[1]).exists():  # the user's own photos in class folders
        from asl_lib.testing import make_synthetic
        make_synthetic(cwd/args[1], 'danrasband', n_per_class=2, size=64, signer=1)
    for a in args:
        if a.startswith('-') or '$' in a: continue
        p = Path(a.replace('~', str(home), 1) if a.startswith('~') else a)
        p = p if p.is_absolute() else cwd/p
        if p.exists(): continue
        if p.suffix.lower() in IMAGE_EXTS:
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(p)
        elif p.suffix.lower() in ('.mp4', '.avi', '.y4m'):  # a recorded video of fingerspelling: generated frames of two letters
            from asl_lib.testing import make_synthetic, spelling_frames, write_video
            src, by = make_synthetic(home/'video-frames', 'danrasband', n_per_class=3, size=64), {}
            for f in sorted(src.rglob('*.jpg')): by.setdefault(f.parent.name, []).append(f)
            p.parent.mkdir(parents=True, exist_ok=True)
            write_video(spelling_frames('AB', by), p)
        elif p.suffix.lower() == '.zip':
            p.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(zips[DANRASBAND if 'test' in p.name else GRASSKNOTED], p)

def last_line(out:str)->str:
    lines = out.strip().splitlines()
    assert lines, 'nothing on stdout'
    return lines[-1].strip()

def expect_hub(name:str, args:list, line:str, r, world:dict):
    "What a README command that pushes to the (stand-in) Hub, or loads from it, must have done"
    if name == 'asl-push':  # the address last; the repository holds the weights, model.json and the card, and nothing to unpickle
        address = last_line(r.stdout)
        assert address == f'hf://{args[1]}', r.stdout
        assert sorted(world['hub'].files(args[1])) == ['README.md', 'model.json', 'model.safetensors'], world['hub'].files(args[1]).keys()
        assert f'asl-predict {address} photo.jpg' in world['hub'].files(args[1])['README.md'].decode()
        world['pushed'][address] = args[0]
    elif name == 'asl-predict':  # exactly what the run folder it came from predicts
        address = next(a for a in args if a.startswith('hf://'))
        local = subprocess.run(['bash', '-c', line.replace(address, world['pushed'][address])], cwd=world['cwd'], env=world['env'],
                               capture_output=True, text=True, timeout=600)
        assert r.stdout == local.stdout, (r.stdout, local.stdout)

def expect(name:str, args:list, r, cwd:Path):
    "Check that a README command of `name` produced what the README says"
    if name == 'asl-train':  # prints the run folder last
        from asl_lib.runs import check_run
        run = cwd/last_line(r.stdout)
        assert run.is_dir(), f'the last line is not a run folder: {last_line(r.stdout)!r}'
        check_run(run)
        from huggingface_hub import ModelCard  # its model card, as the Hub reads it
        assert ModelCard.load(run/'README.md').data.library_name == 'fastai'
    elif name == 'asl-evaluate':  # accuracy and the report folder
        assert 'accuracy' in r.stdout.lower(), r.stdout
        assert any((cwd/w.strip(':,')).is_dir() for w in r.stdout.split()), f'no report folder named in {r.stdout!r}'
        run = cwd/args[0]
        if (run/'metrics.json').is_file():  # a run folder: its model card now lists this test set (the flags appended name the one scored)
            assert f'| {tiny_flags(name, args)[1]} |' in (run/'README.md').read_text(), (run/'README.md').read_text()[-1500:]
    elif name == 'asl-predict':  # one line per image
        images = [a for a in args if Path(a).suffix.lower() in IMAGE_EXTS]
        assert len(r.stdout.strip().splitlines()) == len(images), r.stdout
    elif name == 'asl-run':  # the series folder last, holding the executed notebooks, the run folders and their reports
        check_series(cwd/last_line(r.stdout))
    elif name == 'asl-tune':  # the best trial's run folder last
        from asl_lib.runs import check_run
        check_run(cwd/last_line(r.stdout))
    elif name == 'asl-export':  # the export folder last: the model and what its preprocessing is
        folder = cwd/last_line(r.stdout)
        assert (folder/'model.onnx').is_file() and json.loads((folder/'model.onnx.json').read_text())['vocab'], r.stdout
    elif name == 'asl-calibrate':  # the calibrated run folder last, marked as calibrated
        run = cwd/last_line(r.stdout)
        assert (run/'model.json').is_file() and json.loads((run/'calibration.json').read_text())['k_per_class'], r.stdout
    elif name == 'asl-spell':  # one line: the text the video spells (what a one-epoch model reads in generated frames is its business)
        assert len(r.stdout.splitlines()) == 1, r.stdout
    elif name == 'asl-bench' and '--live' in args:  # the live figures
        assert 'frames/s' in r.stdout and 'p95' in r.stdout, r.stdout
    elif name == 'asl-hands':  # the detection report, its total last
        assert re.match(r'\d+ hands in \d+ images of ', last_line(r.stdout)), r.stdout
    elif name == 'asl-data':  # the image root (Sign-MNIST: the CSV) last, or JSON
        if '--json' in args: json.loads(r.stdout)
        else: assert (cwd/last_line(r.stdout)).exists(), r.stdout

def check_series(out:Path):
    "The series folder `out` holds every executed notebook (with its injected parameters), the runs, their reports, nothing else"
    import nbformat, yaml
    from asl_lib.core import is_owned
    from asl_lib.runner import SERIES
    from asl_lib.runs import RUN_FILES
    assert out.is_dir() and is_owned(out), out
    for nb in SERIES:
        cells = nbformat.read(out/nb, as_version=4).cells
        assert any('injected-parameters' in c.metadata.get('tags', []) for c in cells), nb
    params = yaml.safe_load((out/'params.yaml').read_text())
    runs = [Path(p) for p in json.loads((out/'runs.json').read_text())]
    assert [p.name for p in runs] == [f"{a}-{params['split']}-{params['size']}px" for a in params['archs']] and all(p.parent == out for p in runs)
    assert {p.name for p in out.iterdir() if p.is_dir()} == {'lr_find', *(p.name for p in runs)}  # nothing but the series' own runs
    for run in runs:
        assert all((run/f).exists() for f in RUN_FILES), run
        assert json.loads((run/'metrics.json').read_text())['seed'] == params['seed']
        evals = list(run.glob('eval-*/report.json'))
        assert len(evals) == 1 and json.loads(evals[0].read_text())['n_images'] == 29*10  # the simulated danrasband set
    for arch in params['archs']: assert json.loads((out/'lr_find'/arch/'lr_find.json').read_text())['lr'] > 0
    assert (runs[0]/'gradcam.png').exists()
    assert not any(out.rglob('*.partial'))

README_CMDS = [c for c in sh_commands((ROOT/'README.md').read_text()) if not c.startswith(SKIP)]

@pytest.fixture(scope='module')
def world(tmp_path_factory, kaggle_zips):
    "A fresh working folder with examples/ (as a user who cloned has it), a simulated Kaggle, seeded weight caches, a temporary HOME"
    base = tmp_path_factory.mktemp('readme')
    cwd, home = base/'work', base/'home'
    shutil.copytree(ROOT/'examples', cwd/'examples')
    home.mkdir()
    # kagglehub ignoring `output_dir` and serving its own folder, as on Kaggle notebooks and Colab: the more dangerous mode
    env = kaggle_env(base, kaggle_zips, honour_output_dir=False, HOME=str(home), TORCH_HOME=str(base/'torch'),
                     HF_HOME=str(base/'hf'), HF_HUB_CACHE=str(base/'hf'/'hub'), HF_HUB_OFFLINE='1', PYTHONUNBUFFERED='1',
                     **{DETECTOR_ENV: FAKE_HANDS})  # generated images hold no hands: made-up ones (asl_lib.testing.FakeHandDetector), chosen the public way
    env['PATH'] = os.pathsep.join([str(BIN), env.get('PATH', '')])
    seed = ("import torch, torchvision, timm\nfrom asl_lib.testing import seed_weights_cache\n"
            "seed_weights_cache('resnet18', torchvision.models.resnet18().state_dict())\n"
            "seed_weights_cache('efficientnet_b0', timm.create_model('efficientnet_b0').state_dict())\n")
    subprocess.run([sys.executable, '-c', seed], env=env, check=True, capture_output=True)
    with LocalHub() as hub:  # the Hugging Face Hub, for the commands that push or load hf:// (the others stay offline)
        yield dict(cwd=cwd, home=home, env=env, zips=kaggle_zips, hub=hub, hub_env=hub.env(base/'hf-hub', env), pushed={})

def test_readme_has_commands():
    names = {with_tiny_flags(c)[1] for c in README_CMDS}
    assert {'asl-train', 'asl-evaluate', 'asl-predict', 'asl-run', 'asl-tune', 'asl-export'} <= names, names
    assert {server_of(c) for c in README_CMDS} >= set(SERVERS), 'every server the README documents starts in this test'

def test_parser():
    md = "x\n```sh\nasl-train --data a \\\n  --size 224   # prints it\n# a comment\n```\n```python\nasl-no\n```\n```sh\nrun=$(asl-train | tail -1)\n```\n"
    test_cmds = sh_commands(md)
    assert test_cmds == ['asl-train --data a    --size 224   # prints it', 'run=$(asl-train | tail -1)']
    cmd, name, args = with_tiny_flags(test_cmds[0])
    assert name == 'asl-train' and args == ['--data', 'a', '--size', '224'] and cmd.endswith('--name resnet18-block-224px   # prints it')
    assert with_tiny_flags(test_cmds[1])[0].startswith('run=$(asl-train --data ') and with_tiny_flags(test_cmds[1])[0].endswith('px | tail -1)')

# Every command runs in the fast suite, the README's two asl-run commands too (a series of six notebooks each, about 2.5 minutes with
# the tiny flags): the README is a contract, and the series is its main way in.
def _param(i, c):
    name = with_tiny_flags(c)[1]
    return pytest.param(c, id=f'{i}-{name or c.split()[0]}')

# Commands that start a server (until Ctrl-C) and the page that answers once it is up. The README test starts each one in the
# background on a free port (appended `--port`: the last value wins), waits for that page, then stops its process group.
SERVERS = {'asl-serve': '/health', 'asl-demo': '/', 'mlflow': '/', 'optuna-dashboard': '/'}

def server_of(cmd:str)->str|None:
    "The `SERVERS` key of the README line `cmd` when it starts a server"
    words = cmd.split()
    return next((k for k in SERVERS if words and words[0] == k), None)

def check_server(line:str, name:str, cwd:Path, env:dict, timeout:float=180):
    "Start the server command `line` on a free port, wait until its page answers 200, and stop it (its whole process group)"
    import signal, time, urllib.request
    port, line = free_port(), re.split(r'\s#', line, maxsplit=1)[0]  # the port goes before the README's comment
    p = subprocess.Popen(['bash', '-c', f'exec {line} --port {port}'], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, start_new_session=True)
    try:
        start, url = time.time(), f'http://127.0.0.1:{port}{SERVERS[name]}'
        while True:
            assert p.poll() is None, f'{line} stopped:\n{p.stdout.read()[-4000:]}'
            assert time.time() - start < timeout, f'{url} did not answer in {timeout}s'
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200: return
            except OSError: time.sleep(1)
    finally:
        if p.poll() is None: os.killpg(p.pid, signal.SIGTERM)
        try: p.wait(20)
        except subprocess.TimeoutExpired: os.killpg(p.pid, signal.SIGKILL); p.wait()
        p.stdout.close()

@pytest.mark.parametrize('cmd', [_param(i, c) for i, c in enumerate(README_CMDS)])
def test_readme_command(cmd, world):
    "One README command, verbatim plus tiny flags, run by bash in the shared fresh folder; README order is the test order"
    if name := server_of(cmd): return check_server(with_tiny_flags(cmd)[0], name, world['cwd'], world['env'])
    line, name, args = with_tiny_flags(cmd)
    if name: provide_assumed_files(name, args, world['cwd'], world['home'], world['zips'])
    env = world['hub_env'] if name == 'asl-push' or 'hf://' in line else world['env']
    if name == 'asl-run': env = {k: v for k, v in env.items() if k != DETECTOR_ENV}  # the series' notebooks check "no hand" on generated images
    r = subprocess.run(['bash', '-c', line], cwd=world['cwd'], env=env, capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, f'{line}\n--- stdout\n{r.stdout[-2000:]}\n--- stderr\n{r.stderr[-4000:]}'
    assert 'Traceback' not in r.stderr, r.stderr[-4000:]
    if name and not re.match(r'^\w+=', line): expect(name, args, r, world['cwd'])
    if name == 'asl-push' or 'hf://' in line: expect_hub(name, args, line, r, world)
    if name == 'asl-run':  # the series got both sets through the (simulated) Kaggle
        from asl_lib.testing import downloads
        assert {GRASSKNOTED, DANRASBAND} <= set(downloads(Path(world['env']['ASL_SIMULATED_KAGGLE']).parent))
