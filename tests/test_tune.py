"Hyperparameter search: a tiny study with a pruned trial ends in a complete run folder; workers share one journal; Optuna stays optional."
import sys, threading
from pathlib import Path
from unittest import mock
import pytest
from asl_lib.core import ExtraError, run_cli
from asl_lib.testing import prune_trials
from asl_lib.runs import check_run
from asl_lib import tune as T

def test_tiny_study_with_a_pruned_trial(synth, tmp_path, capsys, monkeypatch):
    "`asl-tune`: 4 trials (trial 1 pruned), a YAML space, fixed parameters; the best trial's run folder is printed and complete"
    (tmp_path/'space.yaml').write_text('lr: {low: 3e-3, high: 3e-2, log: true}\nflip: {choices: [false, true]}\n')
    monkeypatch.setattr(T, 'default_pruner', lambda: prune_trials(1))
    out = tmp_path/'tune'
    code = run_cli(T.asl_tune, ['--data', str(synth['grassknoted']), '--trials', '4', '--out', str(out), '--space', str(tmp_path/'space.yaml'),
                                '--sampler-seed', '0', '-p', 'arch', 'resnet18', '-p', 'epochs', '1', '-p', 'size', '32', '-p', 'bs', '32',
                                '-p', 'pretrained', 'false', '-p', 'workers', '0'])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    best = Path(captured.out.strip().splitlines()[-1])
    m = check_run(best)
    study = T.open_study('asl_lib', out/'optuna.journal')  # the default storage: a journal file in the tune folder
    states = [t.state.name for t in study.trials]
    assert states.count('PRUNED') == 1 and states.count('COMPLETE') == 3, states
    assert best == Path(study.best_trial.user_attrs['run']) and m['valid_accuracy'] == study.best_value
    assert (m['split'], m['arch'], m['epochs'], m['size']) == ('block', 'resnet18', 1, 32)  # scored on the leak-free blocks
    assert set(study.best_params) == {'lr', 'flip'} and m['lr'] == study.best_params['lr']
    assert sorted(p.name for p in (out/'asl_lib').iterdir()) == ['trial-0', 'trial-2', 'trial-3']  # a pruned trial leaves nothing
    assert 'best #' in captured.err

def test_two_workers_share_one_journal(tmp_path):
    "Two workers, each with its own storage object on one journal file, see every trial of both"
    space, journal = T.check_space(T.SPACE), tmp_path/'shared.journal'
    def worker(seed): T.open_study('shared', journal, sampler_seed=seed).optimize(lambda t: T.suggest(t, space)['lr'], n_trials=3)
    threads = [threading.Thread(target=worker, args=(s,)) for s in (1, 2)]
    for t in threads: t.start()
    for t in threads: t.join()
    trials = T.open_study('shared', journal).trials
    assert len(trials) == 6 and {t.state.name for t in trials} == {'COMPLETE'}
    assert sorted(t.number for t in trials) == list(range(6))

def test_bad_space_is_named(synth, tmp_path, capsys):
    (tmp_path/'space.yaml').write_text('size: {low: 0, high: 64}\n')
    code = run_cli(T.asl_tune, ['--data', str(synth['grassknoted']), '--out', str(tmp_path/'tune'), '--space', str(tmp_path/'space.yaml')])
    err = capsys.readouterr().err
    assert code == 1 and 'size must be a whole number' in err and 'Traceback' not in err
    assert not (tmp_path/'tune').exists()  # nothing written before the checks pass

@pytest.mark.parametrize('missing', ['optuna', 'optuna_integration'])
def test_missing_optuna_is_one_line(synth, tmp_path, missing):
    with mock.patch.dict(sys.modules, {missing: None}):
        with pytest.raises(ExtraError) as e: T.tune(synth['grassknoted'], trials=1, out=tmp_path/'tune', space=dict(flip=dict(choices=[True])))
    assert 'pip install "asl_lib[tune]"' in str(e.value) and len(str(e.value).splitlines()) == 1
    assert not (tmp_path/'tune').exists()
