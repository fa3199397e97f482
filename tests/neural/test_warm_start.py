"""NeuralRecommender.warm_start_from: parameters copied by raw id into grown vocabularies, for
tables with and without a padding row and for item axes of dense layers (Mult-VAE)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zenrec._errors import ConfigError
from zenrec.data import Dataset, synthetic_dataset
from zenrec.models import create_model
from zenrec.models.neural.warm import copy_weights


def grown(ds: Dataset) -> Dataset:
    """``ds`` plus a new user "u-new" and two new items, "i-new1" and "i-new2"."""
    u = ds.user_vocab.decode(ds.users).astype(str)
    i = ds.item_vocab.decode(ds.items).astype(str)
    extra_u = ["u-new", "u-new", str(u[0]), str(u[1])]
    extra_i = ["i-new1", str(i[0]), "i-new2", "i-new1"]
    return Dataset.from_raw(np.concatenate([u, extra_u]), np.concatenate([i, extra_i]), name="g")


@pytest.mark.parametrize(
    ("name", "params", "expect"),
    [
        ("lightgcn", {"dim": 8}, {"user.weight": "user axis 0", "item.weight": "item axis 0"}),
        ("multvae", {"hidden": 16, "latent": 8}, None),
    ],
)
def test_copy_weights_moves_rows_by_id_and_starts_new_rows_at_the_mean(name, params, expect):
    ds = synthetic_dataset(n_users=60, n_items=30, interactions_per_user=6, seed=1)
    old = create_model(name, epochs=1, progress=False, **params).fit(ds)
    new = create_model(name, epochs=1, progress=False, **params)
    new.user_vocab, new.item_vocab = grown(ds).user_vocab, grown(ds).item_vocab
    module = new._new_module()
    rec = copy_weights(module, old, new)
    assert rec["new_users"] == 1 and rec["new_items"] == 2 and not rec["reinitialised"]
    if expect is not None:
        assert {k: v.split(":")[0] for k, v in rec["grown"].items()} == expect
    assert rec["grown"]  # every model here has a table or layer that grew with the catalog
    src, dst = old.module_.state_dict(), module.state_dict()
    i_pos = torch.as_tensor(new.item_vocab.encode(old.item_vocab.ids))
    i_new = torch.as_tensor(new.item_vocab.encode(np.asarray(["i-new1", "i-new2"])))
    for key, how in rec["grown"].items():
        if not how.startswith("item"):
            continue
        axis = int(how.split("axis ")[1].split(":")[0])
        off = dst[key].shape[axis] - len(new.item_vocab)
        a, b = src[key].movedim(axis, 0), dst[key].movedim(axis, 0)
        torch.testing.assert_close(b[i_pos + off], a[off:])  # old items keep their weights
        torch.testing.assert_close(b[i_new + off], a[off:].mean(0).expand_as(b[i_new + off]))
    for key in src.keys() - rec["grown"].keys():
        torch.testing.assert_close(dst[key], src[key])  # the rest is copied as it is


def test_warm_start_needs_a_fitted_model_of_the_same_class():
    ds = synthetic_dataset(n_users=30, n_items=20, interactions_per_user=5, seed=1)
    old = create_model("gmf", factors=4, epochs=1, progress=False).fit(ds)
    with pytest.raises(ConfigError, match="warm start needs a fitted BPRMF"):
        create_model("bprmf", factors=4).warm_start_from(old)
