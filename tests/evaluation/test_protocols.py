"""Protocol presets: temporal presets and their options, and Python/CLI parity on every preset."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import zenrec
from zenrec import ConfigError, ProtocolError
from zenrec.data import Dataset, read_interactions, synthetic_dataset
from zenrec.evaluation import PROTOCOLS, get_protocol, prepare_dataset, run_protocol
from zenrec.runs import evaluate_model
from zenrec.splits import time_fraction_split, to_unix_seconds

# ---------------------------------------------------------------- temporal presets


def test_time_fraction_split_has_exact_sizes_and_breaks_ties_by_file_order():
    # ten rows at two timestamps: a quantile cut could not give 1 test row; counts can
    ds = Dataset.from_raw(np.arange(10), np.arange(10), timestamps=[5] * 5 + [9] * 5)
    s = time_fraction_split(ds, test_fraction=0.1, valid_fraction=0.2)
    assert s.sizes() == (7, 2, 1)
    # ties at t=9 are ordered by file order: the last row tests, the two before it validate
    assert s.test.user_vocab.decode(s.test.users).tolist() == [9]
    assert sorted(s.valid.user_vocab.decode(s.valid.users).tolist()) == [7, 8]
    no_valid = time_fraction_split(ds, test_fraction=0.3, valid_fraction=0.0)
    assert no_valid.valid is None and no_valid.sizes() == (7, 0, 3)


def test_temporal_preset_default_is_last_ten_percent_then_ten_before(synthetic):
    p = get_protocol("temporal")
    (s,) = p.splits(synthetic, seed=0)
    n = len(synthetic)
    assert s.sizes() == (n - 2 * round(0.1 * n), round(0.1 * n), round(0.1 * n))
    assert s.train.timestamps.max() <= s.valid.timestamps.min()
    assert s.valid.timestamps.max() <= s.test.timestamps.min()
    assert p.summary()["split_params"] == {"test_fraction": 0.1, "valid_fraction": 0.1}


def test_temporal_options_fractions_and_dates(synthetic):
    p = get_protocol("temporal", test_fraction=0.2, valid_fraction=0.05)
    (s,) = p.splits(synthetic, seed=0)
    assert len(s.test) == round(0.2 * len(synthetic)) and len(s.valid) == round(
        0.05 * len(synthetic)
    )
    t = np.sort(synthetic.timestamps)
    test_start, valid_start = int(t[int(0.7 * t.size)]), int(t[int(0.5 * t.size)])
    d = get_protocol("temporal", test_start=str(test_start), valid_start=valid_start)
    assert d.split_params == {"test_start": test_start, "valid_start": valid_start}
    (s,) = d.splits(synthetic, seed=0)
    assert s.test.timestamps.min() >= test_start > s.valid.timestamps.max()
    assert s.valid.timestamps.min() >= valid_start > s.train.timestamps.max()
    assert to_unix_seconds("1998-03-01") == 888710400
    assert to_unix_seconds("1998-03-01T00:00:10Z") == 888710410
    assert get_protocol("temporal", test_start="1998-03-01").split_params["test_start"] == 888710400


@pytest.mark.parametrize(
    "options, needle",
    [
        ({"test_fraction": 0.1, "test_start": 5}, "not both"),
        ({"valid_start": 5}, "valid_start needs test_start"),
        ({"test_start": 5, "valid_start": 9}, "after test_start"),
        ({"test_fraction": 0.6, "valid_fraction": 0.5}, "test_fraction \\+ valid_fraction < 1"),
        ({"test_start": "next tuesday"}, "ISO 8601 date such as 1998-01-01"),
        ({"ratios": (0.8, 0.2)}, "its options are test_fraction"),
    ],
)
def test_bad_temporal_options_fail_with_the_fix(options, needle):
    with pytest.raises(ConfigError, match=needle):
        get_protocol("temporal", **options)


def test_split_options_of_other_presets_are_refused():
    with pytest.raises(ConfigError, match="protocol 'msrec' has no split option 'test_fraction'"):
        get_protocol("msrec", test_fraction=0.2)


def test_temporal_user_is_chronological_per_user(synthetic):
    (s,) = get_protocol("temporal-user").splits(synthetic, seed=0)
    for u in range(0, synthetic.n_users, 7):
        tr = s.train.timestamps[s.train.users == u]
        va = s.valid.timestamps[s.valid.users == u]
        te = s.test.timestamps[s.test.users == u]
        assert tr.max() <= va.min() <= va.max() <= te.min()
    assert s.sizes() == zenrec.splits.user_temporal_split(synthetic).sizes()


@pytest.mark.parametrize("name", ["temporal", "temporal-user"])
def test_temporal_presets_on_data_without_time_name_the_column_and_fix(name):
    ds = Dataset.from_raw([1, 1, 2], [1, 2, 1], name="shop")
    with pytest.raises(
        ProtocolError, match=r"'shop' has no timestamp column; read it with time_col="
    ):
        run_protocol(lambda: zenrec.create_model("pop"), ds, name)


def test_filters_apply_to_the_whole_log_before_a_temporal_split(synthetic):
    data = prepare_dataset(synthetic, get_protocol("temporal"), {"min_user_count": 20})
    assert data.user_counts().min() >= 20
    run = run_protocol(
        lambda: zenrec.create_model("pop"), synthetic, "temporal", filters={"min_user_count": 20}
    )
    assert run.data is not None and run.data.fingerprint() == data.fingerprint()
    assert sum(run.splits[0].sizes()) == len(data)


def test_reproduce_command_carries_the_split_options(synthetic):
    p = get_protocol("temporal", test_fraction=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", zenrec.ColdStartWarning)
        record, _ = evaluate_model(synthetic, p, "pop")
    assert record.command is None  # synthetic data cannot be re-read
    from zenrec.data.spec import DataSpec
    from zenrec.runs.record import reproduce_command

    cmd = reproduce_command(DataSpec(source="ml-100k"), p.name, "pop", {}, 0, p.split_options())
    assert cmd.endswith("--protocol temporal --model pop --seed 0 --test-fraction 0.2")
    assert record.protocol["split_params"]["test_fraction"] == 0.2
    ratios = get_protocol("temporal-user", ratios=(0.7, 0.2, 0.1))
    cmd = reproduce_command(
        DataSpec(source="ml-100k"), ratios.name, "pop", {}, 0, ratios.split_options()
    )
    assert cmd.endswith("--split-ratios 0.7,0.2,0.1")


# ---------------------------------------------------------------- Python and CLI agree

MODELS = {
    "surprise-cv5": ("biasedmf", {"iterations": 2}),
    "multitask": ("biasedmf", {"iterations": 2}),
    "ctr": ("ease", {"l2": 10.0}),
}


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    """A log with timestamps and ratings; some users and items under 5 interactions."""
    ds = synthetic_dataset(
        n_users=300, n_items=160, interactions_per_user=8, popularity_skew=0.3, seed=11
    )
    p = tmp_path_factory.mktemp("parity") / "log.csv"
    users = ds.user_vocab.decode(ds.users)
    items = ds.item_vocab.decode(ds.items)
    rows = [f"{u},{i},{r:g},{t}" for u, i, r, t in zip(users, items, ds.ratings, ds.timestamps)]
    p.write_text("uid,iid,stars,when\n" + "\n".join(rows) + "\n")
    return p


def test_every_preset_gives_the_same_numbers_in_python_and_the_cli(log_file, tmp_path):
    reader = {"user_col": "uid", "item_col": "iid", "rating_col": "stars", "time_col": "when"}
    ds = read_interactions(log_file, **reader)
    env = {**os.environ, "ZENREC_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in reader.items()]
    assert set(PROTOCOLS) >= {"loo-full", "temporal", "temporal-user"}
    for name in PROTOCOLS:
        model, params = MODELS.get(name, ("itemknn", {}))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", zenrec.ColdStartWarning)
            run = run_protocol(lambda m=model, p=params: zenrec.create_model(m, **p), ds, name)
        out = tmp_path / f"{name}.json"
        sets = [f"--set={k}={v}" for k, v in params.items()]
        r = subprocess.run(
            [sys.executable, "-m", "zenrec", "evaluate", "--dataset", str(log_file), *flags]
            + ["--protocol", name, "--model", model, *sets, "--output", str(out)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        rec = json.loads(out.read_text())
        assert rec["metrics"].keys() == run.metrics.keys(), name
        for k, v in run.metrics.items():
            assert rec["metrics"][k] == pytest.approx(v, abs=1e-9, rel=0), (name, k)
        for group in ("metrics_warm", "metrics_cold"):
            want = getattr(run, group)
            assert rec[group].keys() == want.keys(), (name, group)
            for k, v in want.items():
                assert rec[group][k] == pytest.approx(v, abs=1e-9, rel=0), (name, group, k)
        assert rec["test_coverage"] == run.test_coverage, name
        if run.test_coverage:
            assert "warm users" in r.stdout, name  # the line under the table
    # the 5-core filter of loo-full is applied in Python too (it removes something here)
    assert len(run_protocol(lambda: zenrec.create_model("pop"), ds, "loo-full").data) < len(ds)
