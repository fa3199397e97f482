"""Search-space TOML files: the shipped ones validate; bad ones fail naming file, key and fix."""

from __future__ import annotations

import pytest

from zenrec._errors import ConfigError
from zenrec.models.registry import model_names
from zenrec.tuning.space import load_space, parse_space, shipped_spaces


def test_every_classic_model_has_a_valid_shipped_space():
    shipped = shipped_spaces()
    for name in ("pop", "itemknn", "userknn", "ease", "ials", "biasedmf"):
        assert name in shipped
    # written out by hand: only the rating model's space minimises (its metric is rmse)
    expected = {
        "pop": "maximize",
        "itemknn": "maximize",
        "userknn": "maximize",
        "ease": "maximize",
        "ials": "maximize",
        "biasedmf": "minimize",
        "bprmf": "maximize",
        "gmf": "maximize",
        "ncf-mlp": "maximize",
        "neumf": "maximize",
        "mlpranker": "maximize",
        "twotower": "maximize",
        "rp3beta": "maximize",
        "edlae": "maximize",
        "slim": "maximize",
        "multvae": "maximize",
        "lightgcn": "maximize",
        "ensemble": "maximize",
        "sasrec": "maximize",
        "vsknn": "maximize",
        "transition": "maximize",
        "din": "maximize",
        "mmoe": "minimize",
        "sharedbottom": "minimize",
    }
    for name in shipped:
        if name in model_names():
            s = load_space(model=name)
            assert s.model == name
            assert s.direction == expected[name], name


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("ndcg@10", "maximize"),
        ("recall@20", "maximize"),
        ("precision@5", "maximize"),
        ("hit@10", "maximize"),
        ("mrr@10", "maximize"),
        ("map@10", "maximize"),
        ("rmse", "minimize"),
        ("mae", "minimize"),
    ],
)
def test_space_direction_follows_the_metric(metric, direction):
    s = parse_space(
        {
            "model": "biasedmf" if metric in ("rmse", "mae") else "ease",
            "metric": metric,
            "params": {},
        }
    )
    assert s.direction == direction


def test_defaults_inside_space_and_suggest_types():
    import optuna

    s = load_space(model="ials")
    # factors and regularization default to "auto" (resolved from the data), so only these
    assert s.defaults_in_space() == {"alpha": 5.0, "iterations": 15}
    assert s.auto_defaults() == ["factors", "regularization"]
    assert s.defaults_outside_space() == {"factors": "auto", "regularization": "auto"}
    # a default the range cannot draw (weight decay 0 under a log scale) is kept as it is
    gmf = load_space(model="gmf")
    assert (
        gmf.defaults_outside_space()["weight_decay"] == 0.0
        and "weight_decay" not in gmf.defaults_in_space()
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    params = s.suggest(study.ask())
    assert (
        params["seed"] == 0 and isinstance(params["factors"], int) and params["factors"] % 16 == 0
    )
    assert 0.01 <= params["regularization"] <= 1000


def _write(tmp_path, text):
    p = tmp_path / "space.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            'model = "ease"\n[params]\nl2 = { type = "float", low = 10.0, high = 1.0 }\n',
            ["params.l2", "'low' must be smaller than 'high'", "swap"],
        ),
        (
            'model = "ease"\n[params]\n'
            'l2 = { type = "float", low = 0.0, high = 10.0, log = true }\n',
            ["params.l2", "log-scale range needs low > 0"],
        ),
        (
            'model = "ease"\n[params]\nlambda = { type = "float", low = 1.0, high = 10.0 }\n',
            ["params.lambda", "ease has no parameter 'lambda'", "l2"],
        ),
        (
            'model = "ease"\n[params]\n'
            'l2 = { type = "float", low = 1.0, high = 10.0, lg = true }\n',
            ["unknown key 'params.l2.lg'", "allowed keys"],
        ),
        (
            'model = "ease"\n[params]\nl2 = { type = "double", low = 1.0, high = 10.0 }\n',
            ["params.l2", 'type = "float", "int" or "categorical"'],
        ),
        (
            'model = "ease"\nmetrik = "ndcg@10"\n',
            ["unknown key 'metrik'", "model, metric, fixed, params"],
        ),
        ('model = "eaze"\n', ["key 'model'", "unknown model 'eaze'"]),
        ('model = "ease"\nmetric = "ndcg10"\n', ["'metric'", "NAME@K"]),
        (
            'model = "itemknn"\n[params]\nk = { type = "int", low = 0, high = 100 }\n',
            ["params.k", "value 0 is rejected by itemknn", "narrow the range"],
        ),
        (
            'model = "ials"\n[fixed]\nfactors = 8\n[params]\n'
            'factors = { type = "int", low = 8, high = 64 }\n',
            ["'factors' is both in [fixed] and [params]"],
        ),
        (
            'model = "ials"\n[params]\nfactors = { type = "categorical", choices = [] }\n',
            ["params.factors.choices"],
        ),
        ('model = "ease"\n[params\n', ["not valid TOML"]),
    ],
)
def test_invalid_space_errors_name_file_key_and_fix(tmp_path, body, expected):
    p = _write(tmp_path, body)
    with pytest.raises(ConfigError) as exc:
        load_space(p)
    msg = str(exc.value)
    assert str(p) in msg and "\n" not in msg
    for part in expected:
        assert part in msg, (part, msg)


def test_space_for_another_model_is_refused(tmp_path):
    p = _write(
        tmp_path, 'model = "ease"\n[params]\nl2 = { type = "float", low = 1.0, high = 9.0 }\n'
    )
    with pytest.raises(ConfigError, match="tuned model is 'ials'"):
        load_space(p, model="ials")
    with pytest.raises(ConfigError, match="not found"):
        load_space(tmp_path / "missing.toml")


def test_parse_space_from_dict_and_categorical():
    s = parse_space(
        {
            "model": "ials",
            "metric": "recall@20",
            "params": {"factors": {"type": "categorical", "choices": [16, 32]}},
        }
    )
    assert s.params["factors"].choices == [16, 32] and s.direction == "maximize"
