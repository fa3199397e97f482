"""zenrec refresh: new events -> challenger with new users/items, compared with the champion on
the newest events, lineage recorded, nothing refreshed twice."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from zenrec._errors import DataError
from zenrec.events import Event, EventStore
from zenrec.runs.refresh import RefreshConfig, refresh_bundle


@pytest.fixture
def champion(tmp_path):
    from zenrec.data import synthetic_dataset
    from zenrec.models import create_model

    ds = synthetic_dataset(n_users=120, n_items=50, interactions_per_user=10, seed=5)
    model = create_model("ease", l2=5.0).fit(ds)
    return model, model.save(tmp_path / "champion")


def planted_events(model) -> list[Event]:
    """Users 0-29 take new-a then new-b early; users 30-59 take new-a early and new-b last
    (the newest events: the holdout). Only a model that learnt new-a -> new-b predicts them."""
    users = [str(u) for u in model.user_vocab.ids[:60]]
    out = []
    for j, u in enumerate(users):
        out.append(Event(f"a{j}", u, "new-a", "click", 1.0, 100.0 + j))
        late = j >= 30
        out.append(Event(f"b{j}", u, "new-b", "purchase", 1.0, (10_000.0 if late else 200.0) + j))
    out.append(Event("v0", "visitor-7", "new-a", "view", 1.0, 300.0))  # a new user
    return out


def test_refresh_learns_new_items_and_beats_the_champion(champion, tmp_path):
    model, bundle = champion
    url = f"sqlite:///{tmp_path}/ev.db"
    store = EventStore(url)
    store.insert(planted_events(model))
    res = refresh_bundle(bundle, url, tmp_path / "r1", RefreshConfig(holdout=0.2))
    ch, champ = res.metrics["challenger"]["ndcg@10"], res.metrics["champion"]["ndcg@10"]
    assert ch > 0.3 and champ == 0.0 and res.metrics["champion_session"]["ndcg@10"] == 0.0
    assert res.decision["promote"] is True
    assert res.data["new_items"] == 2 and res.data["new_users"] == 1
    assert res.events["feedback"] == 121 and res.events["holdout"] == 24
    saved = json.loads((tmp_path / "r1" / "refresh.json").read_text())
    assert saved["metrics"] == res.metrics
    from zenrec.models.registry import load_model

    fresh = load_model(tmp_path / "r1")
    lineage = fresh.bundle_meta["lineage"]
    assert lineage["parent"] == json.loads((bundle / "bundle.json").read_text())["content_sha256"]
    assert lineage["events"]["received_until"] == store.time_range()[2]
    # the written bundle was refitted on every event: user 30 has new-b in its history
    assert "new-b" in fresh.recommend_from_items(["new-a"], k=3).item_lists[0].tolist()
    assert set(map(str, fresh.item_vocab.ids)) >= {"new-a", "new-b"}
    # Nothing new since the refresh: refused, the events are not counted twice.
    with pytest.raises(DataError, match="0 new feedback events"):
        refresh_bundle(tmp_path / "r1", url, tmp_path / "r2")
    store.insert([Event("c1", "visitor-7", "new-b", "click", 1.0, 20_000.0)])
    res2 = refresh_bundle(tmp_path / "r1", url, tmp_path / "r2", RefreshConfig(holdout=0.5))
    assert res2.events["feedback"] == 1 and res2.data["interactions_before"] == (fresh.seen_.nnz)
    assert load_model(tmp_path / "r2").bundle_meta["lineage"]["chain"] == [
        lineage["parent"],
        fresh.bundle_meta["content_sha256"],
    ]
    store.close()


def test_event_type_mapping(champion, tmp_path):
    model, bundle = champion
    url = f"sqlite:///{tmp_path}/ev.db"
    store = EventStore(url)
    store.insert(planted_events(model) + [Event("r1", "u9", "new-c", "rating", 2.0, 50.0)])
    store.close()
    res = refresh_bundle(
        bundle, url, tmp_path / "p", RefreshConfig(feedback_types=("purchase", "rating"),
                                                   min_rating=4.0)
    )  # fmt: skip
    assert res.events["feedback"] == 60  # purchases only: clicks, views and the low rating not
    assert res.data["new_items"] == 1 and res.data["new_users"] == 0
    with pytest.raises(DataError, match="new feedback events"):
        refresh_bundle(bundle, url, tmp_path / "q", RefreshConfig(feedback_types=("add",)))


def test_cli_refresh_prints_the_comparison(champion, tmp_path):
    model, bundle = champion
    url = f"sqlite:///{tmp_path}/ev.db"
    store = EventStore(url)
    store.insert(planted_events(model))
    store.close()
    out = tmp_path / "cli"
    r = subprocess.run(
        [sys.executable, "-m", "zenrec", "refresh", "--bundle", str(bundle), "--events", url,
         "--output", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "challenger" in r.stdout and "decision: promote" in r.stdout
    assert (out / "refresh.json").is_file()
    r = subprocess.run(
        [sys.executable, "-m", "zenrec", "refresh", "--bundle", str(bundle), "--events", url,
         "--output", str(out), "--holdout", "1.5"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 2 and "--holdout" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "zenrec", "refresh", "--bundle", str(bundle), "--events", url,
         "--output", str(out), "--warm-epochs", "0"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 2 and "--warm-epochs" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "zenrec", "refresh", "--bundle", str(bundle), "--events", url,
         "--output", str(out), "--promote", "http://127.0.0.1:9"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 2 and "--api-key-env" in r.stderr
    assert np.isfinite(json.loads((out / "refresh.json").read_text())["seconds"]["total"])


def test_ials_is_updated_incrementally_from_the_bundle(tmp_path):
    from zenrec.data import synthetic_dataset
    from zenrec.models import create_model
    from zenrec.models.registry import load_model

    ds = synthetic_dataset(n_users=120, n_items=50, interactions_per_user=10, seed=5)
    model = create_model("ials", factors=8, iterations=10).fit(ds)
    bundle = model.save(tmp_path / "ials")
    url = f"sqlite:///{tmp_path}/ev.db"
    store = EventStore(url)
    store.insert(planted_events(model))
    store.close()
    res = refresh_bundle(bundle, url, tmp_path / "warm")
    assert res.method.startswith("incremental")
    assert res.metrics["challenger"]["ndcg@10"] > res.metrics["champion"]["ndcg@10"]
    fresh = load_model(tmp_path / "warm")
    champ = load_model(bundle)
    touched = {str(u) for u in model.user_vocab.ids[:60]} | {"visitor-7"}
    keep = [u for u in champ.user_vocab.ids if str(u) not in touched]
    old = champ.user_factors_[champ.user_vocab.encode(keep)]
    new = fresh.user_factors_[fresh.user_vocab.encode(np.asarray([str(u) for u in keep]))]
    np.testing.assert_array_equal(new, old)  # users without events keep their factors
    moved = fresh.user_factors_[fresh.user_vocab.encode(np.asarray(["1000"]))]
    assert not np.array_equal(moved, champ.user_factors_[champ.user_vocab.encode([1000])])
    new_items = fresh.item_vocab.encode(np.asarray(["new-a", "new-b"]))
    assert np.abs(fresh.item_factors_[new_items]).sum(axis=1).min() > 0  # solved, not zero
    full = refresh_bundle(bundle, url, tmp_path / "full", RefreshConfig(warm=False))
    assert full.method.startswith("full")


def test_bprmf_is_warm_started_from_the_bundle(tmp_path, monkeypatch):
    from zenrec.data import synthetic_dataset
    from zenrec.models import create_model
    from zenrec.models.neural.trainer import Trainer
    from zenrec.models.registry import load_model

    ds = synthetic_dataset(n_users=120, n_items=50, interactions_per_user=10, seed=5)
    model = create_model("bprmf", factors=8, epochs=30, progress=False).fit(ds)
    bundle = model.save(tmp_path / "bprmf")
    url = f"sqlite:///{tmp_path}/ev.db"
    store = EventStore(url)
    store.insert(planted_events(model))
    store.close()
    runs: list[tuple[dict, int]] = []  # (weights as each training run starts, epochs it ran)
    original = Trainer.fit

    def spy(self, task, *args, **kwargs):
        start = {k: v.detach().clone() for k, v in task.module.state_dict().items()}
        result = original(self, task, *args, **kwargs)
        runs.append((start, len(result.history)))
        return result

    monkeypatch.setattr(Trainer, "fit", spy)
    res = refresh_bundle(bundle, url, tmp_path / "warm", RefreshConfig(warm_epochs=4))
    warm_runs = list(runs)
    assert res.method.startswith("warm start")
    saved = json.loads((tmp_path / "warm" / "refresh.json").read_text())["warm_start"]
    assert saved["max_epochs"] == 4 and saved["new_rows"].startswith("mean")
    out = saved["output"]
    assert out["grown"].keys() == {"user.weight", "item.weight"} and not out["reinitialised"]
    assert out["new_users"] == 1 and out["new_items"] == 2 and out["seconds"] > 0
    ch = saved["challenger"]
    assert 1 <= ch["epochs"] <= 4 and 1 <= ch["holdout_epochs"] <= 4
    # the output trains the epoch count the challenger chose, with no held-out run of its own
    assert out["epochs"] == ch["epochs"] and out["holdout_epochs"] is None
    # every training run of the refresh starts from the bundle's rows, moved to their new
    # positions; the new user's and items' rows start at the mean of the old rows
    fresh = load_model(tmp_path / "warm")
    old_u = model.module_.user.weight.detach()
    old_i = model.module_.item.weight.detach()
    u_pos = torch_index(fresh.user_vocab.encode(model.user_vocab.ids))
    i_pos = torch_index(fresh.item_vocab.encode(model.item_vocab.ids))
    new_i = torch_index(fresh.item_vocab.encode(np.asarray(["new-a", "new-b"])))
    new_u = torch_index(fresh.user_vocab.encode(np.asarray(["visitor-7"])))
    # (the challenger's and the output's vocabularies are the same here: the held-out events
    # add no id): the challenger's run on held-out new pairs, its fit, the output's fit
    assert [n for _, n in warm_runs][1:] == [ch["epochs"], ch["epochs"]]
    for start, _ in warm_runs:
        np.testing.assert_array_equal(start["user.weight"][u_pos + 1], old_u[1:])
        np.testing.assert_array_equal(start["item.weight"][i_pos + 1], old_i[1:])
        np.testing.assert_allclose(start["item.weight"][new_i + 1], old_i[1:].mean(0).expand(2, -1))
        np.testing.assert_allclose(start["user.weight"][new_u + 1], old_u[1:].mean(0)[None])
        assert not start["item.weight"][0].any()  # the padding row stays zero
    # the refreshed bundle recommends for the new user, from what it learnt
    rec = fresh.recommend(["visitor-7"], k=3).item_lists[0]
    assert rec.size == 3 and "new-a" not in rec.tolist()
    # a full refit trains from scratch for many more epochs
    runs.clear()
    full = refresh_bundle(bundle, url, tmp_path / "full", RefreshConfig(warm=False))
    assert full.warm_start is None and full.method.startswith("full")
    assert sum(n for _, n in warm_runs) <= 12 < sum(n for _, n in runs)


def torch_index(pos: np.ndarray):
    import torch

    assert (pos >= 0).all()
    return torch.as_tensor(pos, dtype=torch.int64)
