"""The one vocabulary of system names: building and parsing round-trip, variants, topics and controls."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hybridir_utils import naming
from hybridir_utils.naming import TrainingSpec


@pytest.mark.parametrize(
    "spec, system",
    [
        (TrainingSpec("hybrid"), "hybrid/general"),
        (TrainingSpec("x-y", seed=3), "x-y/general"),
        (TrainingSpec("hybrid", "news", "in-domain", 2), "hybrid/news-in-domain"),
        (TrainingSpec("hybrid", "science", "size-random"), "hybrid/science-size-random"),
        (TrainingSpec("alpha0.25"), "alpha0.25/general"),
    ],
)
def test_a_system_name_parses_back_to_its_run(spec, system):
    assert spec.system == system
    assert TrainingSpec.from_system(system) == TrainingSpec(spec.sampling, spec.domain, spec.mode)
    assert spec.label == f"{system}/s{spec.seed}"
    assert TrainingSpec.from_system(naming.as_trained(system)) == TrainingSpec.from_system(system)  # either variant


def test_the_as_trained_variant_is_marked_once_and_stripped_back():
    trained = naming.as_trained("hybrid/general")
    assert trained == "hybrid/general@trained" and naming.as_trained(trained) == trained
    assert naming.is_as_trained(trained) and not naming.is_as_trained("hybrid/general")
    assert naming.shipped(trained) == "hybrid/general" and naming.shipped("hybrid/general") == "hybrid/general"
    assert naming.run_label(trained, 4) == "hybrid/general@trained/s4"


def test_trained_systems_are_told_from_frozen_models():
    assert naming.is_trained("hybrid/general") and naming.is_trained("hybrid/news-in-domain@trained")
    assert not naming.is_trained("multilingual-e5-small") and not naming.is_trained(naming.base_label("a/LaBSE"))
    assert naming.base_label("sentence-transformers/LaBSE") == "LaBSE"
    assert naming.is_general("x-x-mono/general@trained") and not naming.is_general("hybrid/news-in-domain")


def test_topic_of_names_the_pool_topic():
    assert naming.topic_of("hybrid/news-in-domain") == "news"
    assert naming.topic_of("hybrid/news-size-culture@trained") == "culture"
    assert naming.topic_of("hybrid/news-size-random") is None and naming.topic_of("hybrid/general") is None
    assert naming.topic_of("multilingual-e5-small") is None


def test_a_topical_pool_is_compared_with_the_random_control_of_its_own_variant():
    assert naming.random_control_of("hybrid/news-in-domain") == "hybrid/news-size-random"
    assert naming.random_control_of("hybrid/news-size-geography@trained") == "hybrid/news-size-random@trained"
    assert naming.random_control_of("hybrid/news-size-random") is None
    assert naming.random_control_of("hybrid/general") is None
    assert naming.in_domain("science") == "hybrid/science-in-domain"
    assert naming.control("science", "culture") == "hybrid/science-size-culture"
    assert naming.target_domains(["hybrid/news-in-domain", "hybrid/science-in-domain@trained", "e5"]) == [
        "news", "science"]  # fmt: skip


@pytest.mark.parametrize(
    "spec, parsed",
    [
        ("news:in-domain", ("news", "in-domain")),
        ("science:size-random", ("science", "size-random")),
        ("news:weighted", ("news", "weighted")),
        ("news:general", None),
        ("news:size-", None),
        ("news", None),
        (":in-domain", None),
    ],
)
def test_domain_runs_of_a_profile_split_by_the_grammar(spec, parsed):
    assert naming.split_domain_run(spec) == parsed


def test_the_vocabulary_imports_only_the_standard_library():
    code = (
        "import sys, hybridir_utils.naming; print(sorted(m for m in ('numpy', 'pandas', 'torch') if m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_is_control_names_the_structure_matched_controls_only():
    assert naming.is_control("hybrid/news-size-random") and naming.is_control("hybrid/science-size-culture@trained")
    assert not naming.is_control("hybrid/news-in-domain") and not naming.is_control("hybrid/general")
    assert not naming.is_control("multilingual-e5-small")
