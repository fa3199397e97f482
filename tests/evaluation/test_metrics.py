import json
import math

import numpy as np
import polars as pl
import pytest

from datahelp import data_dir
from zenrec.evaluation import metrics as M


def test_ranking_metrics_by_hand():
    # user A: hits at ranks 1 and 3 of 4, 3 relevant items; user B: no hits, 2 relevant
    hits = np.array([[1, 0, 1, 0], [0, 0, 0, 0]], dtype=bool)
    n_rel = np.array([3, 2])
    k = 4
    assert M.hit(hits, n_rel, k).tolist() == [1.0, 0.0]
    assert M.precision(hits, n_rel, k).tolist() == [0.5, 0.0]
    assert M.recall(hits, n_rel, k).tolist() == pytest.approx([2 / 3, 0.0])
    assert M.mrr(hits, n_rel, k).tolist() == [1.0, 0.0]
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert M.ndcg(hits, n_rel, k)[0] == pytest.approx(dcg / idcg)
    assert M.map_(hits, n_rel, k)[0] == pytest.approx((1 / 1 + 2 / 3) / 3)
    # cut-off smaller than the list
    assert M.precision(hits, n_rel, 2)[0] == 0.5
    assert M.ndcg(hits, n_rel, 1)[0] == 1.0
    assert M.mrr(np.array([[0, 1]], bool), np.array([1]), 2)[0] == 0.5


def test_rating_and_ctr_metrics_by_hand():
    assert M.rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert M.mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    # 2 positives, 2 negatives; one inversion of 4 pairs -> 0.75
    assert M.auc([0.9, 0.4, 0.6, 0.1], [1, 1, 0, 0]) == pytest.approx(0.75)
    assert M.auc([0.5, 0.5], [1, 0]) == pytest.approx(0.5)
    assert math.isnan(M.auc([0.1, 0.2], [1, 1]))
    # group a: auc 1 (2 rows); group b: auc 0 (2 rows); group c single-class ignored
    g = M.gauc([0.9, 0.1, 0.1, 0.9, 0.5], [1, 0, 1, 0, 1], ["a", "a", "b", "b", "c"])
    assert g == pytest.approx(0.5)
    assert M.logloss([0.8, 0.3], [1, 0]) == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)


def test_gini_index():
    assert M.gini_index(np.array([5, 5, 5, 5])) == pytest.approx(0.0)
    assert M.gini_index(np.array([0, 0, 0, 10])) == pytest.approx(0.75)


def test_metrics_equal_recbole_golden_values():
    """RecBole's EASE rankings on its own ML-100K split give exactly its printed metrics."""
    g = data_dir("golden/ml-100k-recbole-split")
    ranks = pl.read_csv(g / "rankings.tsv", separator="\t").sort(["user_id", "rank"])
    test = pl.read_csv(g / "test.tsv", separator="\t")
    expected = json.loads((g / "expected_metrics.json").read_text())["metrics"]
    rel = {}
    for u, i in test.select("user_id", "item_id").iter_rows():
        rel.setdefault(u, set()).add(i)
    lists = {}
    for u, i in ranks.select("user_id", "item_id").iter_rows():
        lists.setdefault(u, []).append(i)
    users = sorted(rel)
    hits = np.array([[i in rel[u] for i in lists[u]] for u in users])
    n_rel = np.array([len(rel[u]) for u in users])
    for key, value in expected.items():
        name, k = key.split("@")
        got = M.RANKING_METRICS[name](hits, n_rel, int(k)).mean()
        assert got == pytest.approx(value, abs=1e-9), key
