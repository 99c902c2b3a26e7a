"""The domain taxonomy: names, the abstain label, and the descriptions that define each domain for the classifier."""

from __future__ import annotations

import re

from hybridir_utils.domains import taxonomy
from hybridir_utils.domains.taxonomy import CLASS_NAMES, DESCRIPTIONS, DOMAIN_NAMES, DOMAINS


def test_other_is_a_label_but_never_a_class():
    assert DOMAIN_NAMES == tuple(DOMAINS) and DOMAIN_NAMES[-1] == "other"
    assert CLASS_NAMES == DOMAIN_NAMES[:-1]


def test_every_class_has_its_own_multilingual_descriptions():
    """The classifier builds one centroid per class from these: a class without any would have no prototype."""
    assert tuple(DESCRIPTIONS) == CLASS_NAMES
    texts = [t for d in CLASS_NAMES for t in DESCRIPTIONS[d]]
    assert len(texts) == len(set(texts))  # no phrasing counts twice (or for two domains)
    for d in CLASS_NAMES:
        assert len(DESCRIPTIONS[d]) >= 8, d
        assert any(t.isascii() for t in DESCRIPTIONS[d]) and any(not t.isascii() for t in DESCRIPTIONS[d]), d


def test_docstring_table_lists_exactly_the_domains():
    """The prose taxonomy and the code name the same domains, in the same order."""
    rows = re.findall(r"^\| (\w+) \|", taxonomy.__doc__, flags=re.MULTILINE)
    assert tuple(r for r in rows if r != "domain") == DOMAIN_NAMES
