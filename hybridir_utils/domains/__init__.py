"""Domains: the taxonomy, zero-shot article labels and their audit, and the domain training pools drawn per seed
with their controls (same size and article structure, random or another topic)."""

from typing import TYPE_CHECKING

from hybridir_utils import lazy_face

if TYPE_CHECKING:  # what the names are, for readers and type checkers; imported on first use
    from hybridir_utils.domains.labelling import (
        DomainClassifier,
        attach_domains,
        audit,
        check_domain_support,
        domain_distribution,
        label_articles,
    )
    from hybridir_utils.domains.pools import language_support, matched_pool_summary, parse_domain_run
    from hybridir_utils.domains.taxonomy import DOMAIN_NAMES, DOMAINS

__all__ = [
    "DOMAINS",
    "DOMAIN_NAMES",
    "DomainClassifier",
    "attach_domains",
    "audit",
    "check_domain_support",
    "domain_distribution",
    "label_articles",
    "language_support",
    "matched_pool_summary",
    "parse_domain_run",
]
__getattr__, __dir__ = lazy_face(__name__, __file__)
