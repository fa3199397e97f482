"""Per-user chronological sequences, and the one-sequence-per-line file format.

Order within a user: by timestamp, ties broken by the order of the rows in the dataset (for a
file: the line order), so two ratings made in the same second keep the order in which the file
lists them. Without timestamps the row order alone is used.

A sequence table is left-padded: row ``u`` holds the last ``max_len`` items of user ``u``
(oldest first, most recent in the last column) as item index + 1, with 0 as padding, so an
embedding table with a padding row 0 can read it directly. Longer histories are truncated to
their most recent ``max_len`` items.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zenrec._errors import DataError
from zenrec.data.dataset import Dataset
from zenrec.data.readers import file_sha256

__all__ = ["chronological_order", "pad_left", "read_sequences", "user_sequences"]


def chronological_order(ds: Dataset) -> np.ndarray:
    """Row indices of ``ds`` grouped by user, each user's rows oldest first.

    Ties in time (and data without timestamps) keep the dataset's row order.
    """
    rows = np.arange(len(ds))
    if ds.timestamps is None:
        return np.lexsort((rows, ds.users))
    return np.lexsort((rows, ds.timestamps, ds.users))


def pad_left(seqs: list[np.ndarray], max_len: int) -> np.ndarray:
    """Stack 1-D item-index arrays into a (len(seqs), max_len) table of index + 1, 0-padded on
    the left, keeping each array's last ``max_len`` entries."""
    out = np.zeros((len(seqs), max_len), dtype=np.int64)
    for r, s in enumerate(seqs):
        s = np.asarray(s, dtype=np.int64)[-max_len:]
        if s.size:
            out[r, max_len - s.size :] = s + 1
    return out


def user_sequences(ds: Dataset, max_len: int, *, n_users: int | None = None) -> np.ndarray:
    """The last ``max_len`` items of every user, chronological, left-padded.

    Args:
        ds: Interactions (timestamps optional; see the module docstring for tie order).
        max_len: Columns of the table (>= 1).
        n_users: Rows of the table (default ``ds.n_users``); users without rows are all padding.

    Returns:
        int64 array (n_users, max_len): item index + 1, 0 = padding, most recent last.

    Example:
        >>> ds = Dataset.from_raw(["a", "a", "a", "b"], [1, 2, 3, 1], timestamps=[3, 1, 2, 5])
        >>> user_sequences(ds, 2).tolist()
        [[3, 1], [0, 1]]
    """
    if max_len < 1:
        raise DataError(f"user_sequences: 'max_len' must be >= 1; got {max_len}")
    n = ds.n_users if n_users is None else n_users
    order = chronological_order(ds)
    users = ds.users[order]
    items = ds.items[order]
    counts = np.bincount(users, minlength=n)
    ends = np.cumsum(counts)  # rows of user u are [ends[u] - counts[u], ends[u])
    out = np.zeros((n, max_len), dtype=np.int64)
    # position of each row counted from its user's end: 1 = most recent
    from_end = np.repeat(ends, counts) - np.arange(users.size)
    keep = from_end <= max_len
    out[users[keep], max_len - from_end[keep]] = items[keep] + 1
    return out


def read_sequences(path: str | Path, *, name: str | None = None, sep: str | None = None) -> Dataset:
    """Read a one-sequence-per-line file (``user_id item_1 item_2 ... item_n``).

    This is the format of the public SASRec / S3-Rec data files: each line is one user followed
    by that user's items in chronological order, separated by whitespace (or ``sep``). The
    Dataset's row order is the file order, and its ``timestamps`` are the row positions
    (0, 1, 2, ...), so temporal splits and sequences follow the line order exactly.

    A user may appear on several lines (their items are appended in file order). Lines with a
    user but no items are allowed and add no interactions; blank lines are skipped.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "seq.txt"
        >>> _ = p.write_text("1 10 11 12\\n2 11 13\\n")
        >>> ds = read_sequences(p)
        >>> (ds.n_users, ds.n_items, len(ds))
        (2, 4, 5)
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; pass a one-sequence-per-line file")
    import gzip

    raw = path.read_bytes()
    if path.suffix.lower() == ".gz":
        raw = gzip.decompress(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc}); sequence files are plain text") from None
    users: list[str] = []
    items: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split(sep) if sep else line.split()
        fields = [f for f in (x.strip() for x in fields) if f]
        if not fields:
            continue
        if "," in fields[0] and sep is None:
            raise DataError(
                f"{path} line {lineno}: found ',' in '{fields[0]}'; the sequence format "
                "is 'user item1 item2 ...' separated by spaces (pass sep=',' for commas)"
            )
        users.extend([fields[0]] * (len(fields) - 1))
        items.extend(fields[1:])
    if not items:
        raise DataError(f"{path}: no interactions; expected lines 'user_id item_1 item_2 ...'")
    u = _as_ids(users)
    i = _as_ids(items)
    return Dataset.from_raw(
        u,
        i,
        None,
        np.arange(len(items), dtype=np.int64),
        name=name or path.name,
        source_sha256=file_sha256(path),
    )


def _as_ids(values: list[str]) -> np.ndarray:
    """Integer ids when every value is a plain integer, else strings (as the table reader does)."""
    arr = np.asarray(values)
    try:
        ints = arr.astype(np.int64)
    except ValueError:
        return arr.astype(str)
    if np.array_equal(ints.astype(str), arr.astype(str)):  # no leading zeros or '+' signs
        return ints
    return arr.astype(str)
