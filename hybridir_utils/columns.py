"""The column names of a training-pairs table, defined once.

The loaders write them (``data.training_pairs``), the sampler reads them by default (``HybridBatchSampler``,
``HybridBatches``, the fillers) and the trainer fingerprints the pairs by them. The domain pools, the splits and
the evaluation still spell some of these names out (``"group"``, ``"article"``): moving them here is the next
step; the values here are the ones every table holds. The light install imports this module (standard library only).
"""

QUERY = "query"  # the question text (the anchor)
PASSAGE = "passage"  # its answer sentence (the positive)
QUERY_LANG = "query_lang"
PASSAGE_LANG = "passage_lang"
GROUP = "group"  # the parallel question group: the same question in every language
ARTICLE = "article"  # the language-independent article key (``data.article_key``)
DOMAIN = "domain"  # the article's domain label (``domains``)

PAIR_COLUMNS = (QUERY, PASSAGE, QUERY_LANG, PASSAGE_LANG, GROUP, ARTICLE)  # what ``training_pairs`` returns
