"""Bundles refuse to load when their content was changed or their format is newer than zenrec."""

from __future__ import annotations

import json

import numpy as np
import pytest

from zenrec import BundleError
from zenrec.models import create_model, load_model
from zenrec.models.bundle import BUNDLE_VERSION


@pytest.fixture
def saved(tmp_path, synthetic):
    model = create_model("ease", l2=10.0).fit(synthetic)
    path = model.save(tmp_path / "bundle")
    users = synthetic.user_vocab.ids[:4]
    # the untouched bundle loads and scores exactly as the model it was saved from
    np.testing.assert_array_equal(load_model(path).score(users), model.score(users))
    return path


def test_changed_array_bytes_fail_the_content_hash(saved):
    f = saved / "arrays.safetensors"
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0x01  # one bit of the last weight: still a valid safetensors file
    f.write_bytes(bytes(raw))
    with pytest.raises(
        BundleError, match="content hash mismatch; the bundle was modified or is corrupt"
    ):
        load_model(saved)


def test_changed_vocabulary_fails_the_content_hash(saved):
    f = saved / "vocab.json"
    vocab = json.loads(f.read_text())
    ids = vocab["users"]["ids"]
    ids[0], ids[1] = ids[1], ids[0]  # two users swap their rows of the weights
    f.write_text(json.dumps(vocab))
    with pytest.raises(BundleError, match="content hash mismatch"):
        load_model(saved)


def test_newer_format_version_is_refused_with_upgrade_hint(saved):
    f = saved / "bundle.json"
    meta = json.loads(f.read_text())
    meta["format_version"] = BUNDLE_VERSION + 1
    f.write_text(json.dumps(meta))
    with pytest.raises(
        BundleError,
        match=rf"bundle format {BUNDLE_VERSION + 1} is newer than this "
        rf"zenrec \({BUNDLE_VERSION}\); upgrade zenrec",
    ):
        load_model(saved)


def test_missing_file_is_reported(saved):
    (saved / "vocab.json").unlink()
    with pytest.raises(BundleError, match=r"bundle files missing: \['vocab.json'\]"):
        load_model(saved)


def test_memory_mapped_bundle_equals_the_read_one(tmp_path, synthetic):
    """``mmap=True`` maps the arrays from the file (shared between processes) and gives the
    same model: the same arrays bit for bit, the same lists."""
    from zenrec.models.bundle import mmap_safetensors, read_bundle

    for name, params in (("ease", {"l2": 10.0}), ("bprmf", {"epochs": 1, "progress": False})):
        path = create_model(name, **params).fit(synthetic).save(tmp_path / name)
        _, read, _, _ = read_bundle(path)
        mapped = mmap_safetensors(path / "arrays.safetensors")
        assert set(mapped) == set(read)
        for key, arr in read.items():
            assert isinstance(mapped[key], np.memmap) or mapped[key].size == 0, key
            assert mapped[key].dtype == arr.dtype, key
            np.testing.assert_array_equal(mapped[key], arr)
        users = synthetic.user_vocab.ids[:20]
        plain, shared = load_model(path), load_model(path, mmap=True)
        a, b = plain.recommend(users, k=10), shared.recommend(users, k=10)
        for x, y in zip(a.item_lists + a.score_lists, b.item_lists + b.score_lists):
            np.testing.assert_array_equal(x, y)
    before = (tmp_path / "ease" / "arrays.safetensors").read_bytes()
    mapped = mmap_safetensors(tmp_path / "ease" / "arrays.safetensors")
    mapped["state.B"][0, 0] += 1.0  # copy-on-write: the process's own page, never the file
    assert (tmp_path / "ease" / "arrays.safetensors").read_bytes() == before
