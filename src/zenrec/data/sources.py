"""Built-in datasets: MovieLens 100K, 1M and latest-small in their original file layouts.

Resolution order (DESIGN.md): an explicit path; ``$ZENREC_DATA/<name>/``; the user cache
``~/.cache/zenrec/<name>/``; a download from GroupLens whose files are checked against known
hashes. When nothing works the error lists every place tried and what to do.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from zenrec._errors import DataError
from zenrec._io import atomic_dir
from zenrec.data.dataset import Dataset, Feature
from zenrec.data.readers import file_sha256, parse_ids, parse_numbers, parse_times, read_table
from zenrec.data.vocab import Vocabulary

__all__ = ["BUILTIN_DATASETS", "load_builtin", "resolve_builtin"]


@dataclass(frozen=True)
class _Source:
    name: str
    url: str
    zip_dir: str
    required: tuple[str, ...]
    # file -> ("sha256" | "gitblob", hex digest) of the official file, checked after download
    checks: dict[str, tuple[str, str]]
    loader: Callable[[Path], Dataset]
    # folder name under $ZENREC_DATA / the cache, when it differs from ``name``
    folder: str | None = None
    # file -> sha256 checked every time the dataset is loaded (a fixed subset of a release)
    load_checks: tuple[tuple[str, str], ...] = ()

    @property
    def dir_name(self) -> str:
        return self.folder or self.name


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "zenrec"


def _git_blob(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _check(path: Path, kind: str, digest: str) -> bool:
    if kind == "sha256":
        return file_sha256(path) == digest
    return _git_blob(path) == digest


def _has_files(d: Path, src: _Source) -> bool:
    return d.is_dir() and all((d / f).exists() for f in src.required)


def _download(src: _Source, dest: Path) -> None:
    """Download and unpack ``src`` into ``dest`` atomically, verifying known file hashes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(src.url, timeout=30) as resp:
        payload = resp.read()
    with atomic_dir(dest) as tmp, zipfile.ZipFile(io.BytesIO(payload)) as zf:
        for member in zf.namelist():
            rel = member.split("/", 1)[1] if "/" in member else member
            if not rel or rel.endswith("/") or ".." in rel.split("/"):
                continue
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(zf.read(member))
        for fname, (kind, digest) in src.checks.items():
            if not (tmp / fname).exists() or not _check(tmp / fname, kind, digest):
                raise DataError(
                    f"downloaded {src.url}: {fname} does not match its known {kind} hash; "
                    "the download is corrupt or the file changed upstream"
                )


def resolve_builtin(name: str, path: str | Path | None = None, *, download: bool = True) -> Path:
    """Find the directory of built-in dataset ``name``; see the module docstring for the order."""
    src = BUILTIN_DATASETS.get(name)
    if src is None:
        raise DataError(
            f"unknown dataset '{name}'; built-in names are {sorted(BUILTIN_DATASETS)}, "
            "or pass the path of a CSV/TSV/Parquet file"
        )
    tried: list[str] = []
    candidates: list[Path] = []
    if path is not None:
        candidates.append(Path(path))
    env = os.environ.get("ZENREC_DATA")
    if env:
        candidates.append(Path(env) / src.dir_name)
    else:
        tried.append("$ZENREC_DATA (not set)")
    cache = _cache_root() / src.dir_name
    candidates.append(cache)
    for c in candidates:
        if _has_files(c, src):
            return c
        tried.append(f"{c} (missing {', '.join(f for f in src.required if not (c / f).exists())})")
    if download and src.url:
        try:
            _download(src, cache)
            return cache
        except DataError:
            raise
        except Exception as exc:
            tried.append(f"download {src.url} ({type(exc).__name__}: {exc})")
    raise DataError(
        f"dataset '{name}' not found; tried: {'; '.join(tried)}. Set ZENREC_DATA to a folder "
        f"holding '{src.dir_name}/' in its original layout, or pass its path"
    )


def load_builtin(name: str, path: str | Path | None = None, *, download: bool = True) -> Dataset:
    """Load built-in dataset ``name`` with its features (titles, genres, demographics)."""
    d = resolve_builtin(name, path, download=download)
    src = BUILTIN_DATASETS[name]
    for fname, digest in src.load_checks:
        if file_sha256(d / fname) != digest:
            raise DataError(
                f"{d / fname}: sha256 differs from the known file ({digest[:12]}...); dataset "
                f"'{name}' is defined as exactly that file, so a changed copy is refused"
            )
    ds = src.loader(d)
    ds.name = name
    return ds


# ---------------------------------------------------------------------------- helpers
def _text_feature(name: str, vocab: Vocabulary, ids: np.ndarray, values: np.ndarray) -> Feature:
    out = np.full(len(vocab), "", dtype=object)
    idx = vocab.encode(ids)
    ok = idx >= 0
    out[idx[ok]] = values[ok]
    return Feature(name, "text", out.astype(str))


def _cat_feature(name: str, vocab: Vocabulary, ids: np.ndarray, values: np.ndarray) -> Feature:
    labels = sorted({str(v) for v in values})
    lookup = {v: i for i, v in enumerate(labels)}
    codes = np.full(len(vocab), -1, dtype=np.int64)
    idx = vocab.encode(ids)
    ok = idx >= 0
    codes[idx[ok]] = [lookup[str(v)] for v in values[ok]]
    return Feature(name, "categorical", codes, labels)


def _num_feature(name: str, vocab: Vocabulary, ids: np.ndarray, values: np.ndarray) -> Feature:
    out = np.full(len(vocab), np.nan, dtype=np.float32)
    idx = vocab.encode(ids)
    ok = idx >= 0
    out[idx[ok]] = values[ok]
    return Feature(name, "numeric", out)


def _multi_feature(
    name: str, vocab: Vocabulary, ids: np.ndarray, lists: list[list[str]]
) -> Feature:
    labels = sorted({g for row in lists for g in row})
    lookup = {g: i for i, g in enumerate(labels)}
    per_entity: list[list[int]] = [[] for _ in range(len(vocab))]
    for e, row in zip(vocab.encode(ids), lists):
        if e >= 0:
            per_entity[e] = [lookup[g] for g in row]
    lens = np.array([len(r) for r in per_entity], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    values = np.array([c for r in per_entity for c in r], dtype=np.int64)
    return Feature(name, "multi", values, labels, offsets)


_YEAR = re.compile(r"\((\d{4})\)\s*$")


def _years(titles: np.ndarray) -> np.ndarray:
    out = np.full(titles.size, np.nan, dtype=np.float32)
    for i, t in enumerate(titles):
        m = _YEAR.search(str(t))
        if m:
            out[i] = float(m.group(1))
    return out


def _interactions(df: pl.DataFrame, path: Path, first: int, name: str, sha: str) -> Dataset:
    users = parse_ids(df, "user", path, first, "user id")
    items = parse_ids(df, "item", path, first, "item id")
    ratings = parse_numbers(df, "rating", path, first, "rating")
    times = parse_times(df, "timestamp", path, first) if "timestamp" in df.columns else None
    return Dataset.from_raw(users, items, ratings, times, name=name, source_sha256=sha)


# ---------------------------------------------------------------------------- loaders
def _load_ml100k(d: Path) -> Dataset:
    f = d / "u.data"
    df, first = read_table(
        f, sep="\t", header=False, columns=["user", "item", "rating", "timestamp"]
    )
    ds = _interactions(df, f, first, "ml-100k", file_sha256(f))
    genres = [
        line.split("|")[0] for line in (d / "u.genre").read_text("latin-1").splitlines() if line
    ]
    items, _ = read_table(d / "u.item", sep="|", header=False, encoding="latin-1")
    iid = items["0"].cast(pl.Int64).to_numpy()
    titles = items["1"].fill_null("").to_numpy().astype(str)
    flags = np.stack([items[str(5 + j)].cast(pl.Int64).to_numpy() for j in range(len(genres))], 1)
    glists = [[genres[j] for j in np.flatnonzero(row)] for row in flags]
    dates = items["2"].fill_null("").to_numpy().astype(str)
    years = np.array([float(s[-4:]) if len(s) >= 4 and s[-4:].isdigit() else np.nan for s in dates])
    iv = ds.item_vocab
    ds.item_features = {
        "title": _text_feature("title", iv, iid, titles),
        "genres": _multi_feature("genres", iv, iid, glists),
        "year": _num_feature("year", iv, iid, years),
    }
    users, _ = read_table(d / "u.user", sep="|", header=False, encoding="latin-1")
    uid = users["0"].cast(pl.Int64).to_numpy()
    uv = ds.user_vocab
    ds.user_features = {
        "age": _num_feature("age", uv, uid, users["1"].cast(pl.Float64).to_numpy()),
        "gender": _cat_feature("gender", uv, uid, users["2"].to_numpy()),
        "occupation": _cat_feature("occupation", uv, uid, users["3"].to_numpy()),
        "zip_prefix": _cat_feature("zip_prefix", uv, uid, users["4"].str.slice(0, 1).to_numpy()),
    }
    return ds


def _load_ml1m(d: Path) -> Dataset:
    f = d / "ratings.dat"
    df, first = read_table(f, sep="::", header=False)
    names = ["user", "item", "rating", "timestamp"][: df.width]
    if df.width not in (3, 4):
        raise DataError(
            f"{f}: {df.width} fields per line; expected UserID::MovieID::Rating[::Timestamp]"
        )
    df = df.rename(dict(zip(df.columns, names)))
    ds = _interactions(df, f, first, "ml-1m", file_sha256(f))
    _ml1m_features(ds, d)
    return ds


def _ml1m_features(ds: Dataset, d: Path) -> None:
    """Attach movies.dat and users.dat features of an ML-1M folder to ``ds`` (in place)."""
    movies, _ = read_table(d / "movies.dat", sep="::", header=False, encoding="latin-1")
    iid = movies["0"].cast(pl.Int64).to_numpy()
    titles = movies["1"].to_numpy().astype(str)
    glists = [s.split("|") if s else [] for s in movies["2"].fill_null("").to_numpy().astype(str)]
    iv = ds.item_vocab
    ds.item_features = {
        "title": _text_feature("title", iv, iid, titles),
        "genres": _multi_feature("genres", iv, iid, glists),
        "year": _num_feature("year", iv, iid, _years(titles)),
    }
    users, _ = read_table(d / "users.dat", sep="::", header=False, encoding="latin-1")
    uid = users["0"].cast(pl.Int64).to_numpy()
    uv = ds.user_vocab
    ds.user_features = {
        "gender": _cat_feature("gender", uv, uid, users["1"].to_numpy()),
        "age": _cat_feature("age", uv, uid, users["2"].to_numpy()),
        "occupation": _cat_feature("occupation", uv, uid, users["3"].to_numpy()),
        "zip_prefix": _cat_feature("zip_prefix", uv, uid, users["4"].str.slice(0, 1).to_numpy()),
    }


ML1M_TS_FILE = "ratings.users1-2999.with-timestamps.dat.gz"


def _load_ml1m_ts(d: Path) -> Dataset:
    """ML-1M users 1-2999 with timestamps (the first 487,650 lines of the official ratings.dat).

    Features as for ``ml-1m`` (titles, genres, year; gender, age, occupation, zip prefix).
    Not "ML-1M": one block of user ids, timestamps from 2000-10-04.
    """
    f = d / ML1M_TS_FILE
    df, first = read_table(f, sep="::", header=False)
    if df.width != 4:
        raise DataError(
            f"{f}: {df.width} fields per line; expected UserID::MovieID::Rating::Timestamp"
        )
    df = df.rename(dict(zip(df.columns, ["user", "item", "rating", "timestamp"])))
    ds = _interactions(df, f, first, "ml-1m-ts", file_sha256(f))
    _ml1m_features(ds, d)
    return ds


def _load_mlsmall(d: Path) -> Dataset:
    f = d / "ratings.csv"
    df, first = read_table(f, sep=",", header=True)
    df = df.rename({"userId": "user", "movieId": "item"})
    ds = _interactions(df, f, first, "ml-latest-small", file_sha256(f))
    movies, _ = read_table(d / "movies.csv", sep=",", header=True)
    iid = movies["movieId"].cast(pl.Int64).to_numpy()
    titles = movies["title"].to_numpy().astype(str)
    glists = [
        [] if s in ("", "(no genres listed)") else s.split("|")
        for s in movies["genres"].fill_null("").to_numpy().astype(str)
    ]
    iv = ds.item_vocab
    ds.item_features = {
        "title": _text_feature("title", iv, iid, titles),
        "genres": _multi_feature("genres", iv, iid, glists),
        "year": _num_feature("year", iv, iid, _years(titles)),
    }
    return ds


BUILTIN_DATASETS: dict[str, _Source] = {
    "ml-100k": _Source(
        name="ml-100k",
        url="https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        zip_dir="ml-100k",
        required=("u.data", "u.item", "u.user", "u.genre"),
        checks={
            "u.data": (
                "sha256",
                "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
            ),
            "u.item": (
                "sha256",
                "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
            ),
            "u.user": (
                "sha256",
                "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
            ),
        },
        loader=_load_ml100k,
    ),
    "ml-1m": _Source(
        name="ml-1m",
        url="https://files.grouplens.org/datasets/movielens/ml-1m.zip",
        zip_dir="ml-1m",
        required=("ratings.dat", "movies.dat", "users.dat"),
        checks={
            "ratings.dat": ("gitblob", "77a7c4b150f588c23bb9e1f068aa996c0b413695"),
            "movies.dat": (
                "sha256",
                "0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9",
            ),
            "users.dat": (
                "sha256",
                "1dc3a95300cb19f7c10e027daf29b8cdf1d908dab65b5edfb45950aa389a10a3",
            ),
        },
        loader=_load_ml1m,
    ),
    "ml-1m-ts": _Source(
        name="ml-1m-ts",
        url="",  # a subset of the official ratings.dat shipped in the shared data folder only
        zip_dir="ml-1m",
        required=(ML1M_TS_FILE, "movies.dat", "users.dat"),
        checks={},
        loader=_load_ml1m_ts,
        folder="ml-1m",
        load_checks=(
            (ML1M_TS_FILE, "2fedcf5405373a49df4041e3d3fe1e8db9eacf2c77c209ae1f686ea06b7a16d9"),
        ),
    ),
    "ml-latest-small": _Source(
        name="ml-latest-small",
        url="https://files.grouplens.org/datasets/movielens/ml-latest-small.zip",
        zip_dir="ml-latest-small",
        required=("ratings.csv", "movies.csv"),
        checks={
            "ratings.csv": (
                "sha256",
                "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
            ),
            "movies.csv": (
                "sha256",
                "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
            ),
        },
        loader=_load_mlsmall,
    ),
}
