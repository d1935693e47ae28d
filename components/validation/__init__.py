"""The ticket's images: per-image facts and the Great Expectations suite over them."""
