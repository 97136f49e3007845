"Experiment tracking: a tracked run, read back through MLflow's client, matches its run folder; MLflow stays optional."
import json, os, sys
from pathlib import Path
from unittest import mock
import pandas as pd
import pytest
from asl_lib.core import ExtraError, run_cli
from asl_lib.runs import check_run
from asl_lib.train import asl_train, train

os.environ['MLFLOW_DISABLE_TELEMETRY'] = 'true'

@pytest.fixture
def no_uri(monkeypatch):
    "The default store: no `MLFLOW_TRACKING_URI` or experiment name from the environment"
    for k in ('MLFLOW_TRACKING_URI', 'MLFLOW_EXPERIMENT_NAME'): monkeypatch.delenv(k, raising=False)

def _artifacts(client, run_id, path=None)->set:
    "Every file of an MLflow run's artifacts, as paths relative to its root"
    res = set()
    for f in client.list_artifacts(run_id, path):
        res |= _artifacts(client, run_id, f.path) if f.is_dir else {f.path}
    return res

def test_tracked_run_matches_its_folder(synth, tmp_path, capsys, no_uri):
    "`asl-train --track` with the default store: an MLflow run in OUT/mlflow.db whose params, epochs and files are the run folder's"
    from mlflow.tracking import MlflowClient
    from asl_lib.track import RESULTS, run_params
    out = tmp_path/'runs'
    code = run_cli(asl_train, ['--data', str(synth['grassknoted']), '--no-pretrained', '--epochs', '1', '--size', '32', '--bs', '32',
                               '--lr', '1e-2', '--workers', '0', '--out', str(out), '--track'])
    assert code == 0, capsys.readouterr().err[-2000:]
    run = Path(capsys.readouterr().out.strip().splitlines()[-1])
    m = check_run(run)
    assert m['config']['track'] is True
    assert sorted(p.name for p in out.iterdir()) == ['mlartifacts', 'mlflow.db', run.name]  # the default store lands inside --out
    client = MlflowClient(f'sqlite:///{out}/mlflow.db')
    exp = client.get_experiment_by_name('asl_lib')
    assert exp.artifact_location == (out/'mlartifacts').as_uri()
    [logged] = client.search_runs([exp.experiment_id])
    rid = logged.info.run_id
    assert (logged.info.run_name, logged.info.status, logged.data.tags['asl_lib.run_folder']) == (run.name, 'FINISHED', str(run))
    assert logged.data.params == run_params(m)
    assert (logged.data.params['arch'], float(logged.data.params['lr']), logged.data.params['split']) == ('resnet18', 1e-2, 'block')
    assert {k: logged.data.metrics[k] for k in RESULTS} == {k: float(m[k]) for k in RESULTS}
    hist = pd.read_csv(run/'history.csv')
    for col in ['train_loss', 'valid_loss', 'accuracy', 'seconds']:
        logged_epochs = sorted((x.step, x.value) for x in client.get_metric_history(rid, f'history/{col}'))
        assert logged_epochs == [(int(e), float(v)) for e, v in zip(hist['epoch'], hist[col])], col
    assert _artifacts(client, rid) == {str(p.relative_to(run)) for p in run.rglob('*') if p.is_file()}
    # an `asl-evaluate` report folder inside the run is logged as a metric (its files are artifacts of the run folder anyway)
    rep = run/'eval-test'; rep.mkdir(); (rep/'report.json').write_text(json.dumps(dict(accuracy=0.25, n_images=8)))
    from asl_lib.track import log_run
    again = client.get_run(log_run(run))
    assert (again.data.metrics['eval/eval-test/accuracy'], again.data.metrics['eval/eval-test/n_images']) == (0.25, 8.0)
    assert 'eval-test/report.json' in _artifacts(client, again.info.run_id)

def test_callback_logs_epochs_on_rank_zero_only(tmp_path, no_uri):
    "`MLflowCallback`: params once, every epoch's recorder values at step = epoch, nothing from other ranks"
    from fastai.test_utils import synth_learner
    from mlflow.tracking import MlflowClient
    from asl_lib.track import MLflowCallback
    learn = synth_learner()
    cb = MLflowCallback(tmp_path, params=dict(arch='synth', lr=0.1), run_name='synth')
    with learn.no_bar(), learn.no_logging():
        learn.fit(2, 0.1, cbs=cb)
        learn.fit(1, 0.1, cbs=cb)  # a second fit continues the same MLflow run
    client = MlflowClient(f'sqlite:///{tmp_path}/mlflow.db')
    logged = client.get_run(cb.run_id)
    assert (logged.data.params['arch'], logged.data.params['lr'], logged.info.status) == ('synth', '0.1', 'FINISHED')
    assert sorted(x.step for x in client.get_metric_history(cb.run_id, 'history/train_loss')) == [0, 1, 2]
    assert sorted(x.step for x in client.get_metric_history(cb.run_id, 'history/valid_loss')) == [0, 1, 2]
    other = MLflowCallback(tmp_path, run_name='rank1')
    with mock.patch('asl_lib.track.rank_distrib', return_value=1), learn.no_bar(), learn.no_logging(): learn.fit(1, 0.1, cbs=other)
    assert other.run_id is None and len(client.search_runs([logged.info.experiment_id])) == 1

def test_missing_mlflow_is_one_line(synth, tmp_path):
    "Without the extra: `train(track=True)` stops with one line naming the install, before any work"
    with mock.patch.dict(sys.modules, {'mlflow': None}):
        with pytest.raises(ExtraError) as e: train(synth['grassknoted'], epochs=1, size=32, pretrained=False, out=tmp_path, track=True)
    assert 'pip install "asl_lib[track]"' in str(e.value) and len(str(e.value).splitlines()) == 1
    assert not any(tmp_path.iterdir())

def test_tracking_failure_says_the_run_is_complete(tmp_path, monkeypatch):
    "MLflow failing after training (a server down) is one line that says the run folder is complete and how to log it later"
    import asl_lib.track
    from asl_lib.core import OutputError
    from asl_lib.train import _track
    def down(run): raise ConnectionError('tracking server down\nmore detail')
    monkeypatch.setattr(asl_lib.track, 'log_run', down)
    with pytest.raises(OutputError, match='is complete, but logging it to MLflow') as e: _track(tmp_path/'resnet18-block-32px')
    assert 'ConnectionError: tracking server down.' in str(e.value) and "log_run('" in str(e.value) and '\n' not in str(e.value)
