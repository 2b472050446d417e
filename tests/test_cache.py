"""The one LRU cache and the one content digest."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from tam.cache import LRU, content_digest


def test_lru_keeps_the_most_recently_used_entries():
    lru = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # "a" is now the most recent: "b" goes first
    lru.put("c", 3)
    assert "b" not in lru and lru.get("a") == 1 and lru.get("c") == 3 and len(lru) == 2
    made = []
    assert lru.get_or("d", lambda: made.append(1) or 4) == 4
    assert lru.get_or("d", lambda: made.append(1) or 5) == 4 and made == [1]
    assert lru.get("missing", "default") == "default"
    with pytest.raises(ValueError):
        LRU(0)


def test_content_digest_reads_contents_not_identity():
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert content_digest(a) == content_digest(a.copy()) == content_digest(np.asfortranarray(a))
    assert content_digest(a) != content_digest(a.reshape(4, 3))  # same bytes, another shape
    assert content_digest(a) != content_digest(a.astype(np.int8))
    b = a.copy()
    b[2, 3] += 1
    assert content_digest(a) != content_digest(b)
    assert content_digest(1, a) != content_digest(2, a)
    # a project's folder name keeps the digest it always had
    assert content_digest("/videos/clip.mp4") == hashlib.sha1(b"/videos/clip.mp4").hexdigest()
