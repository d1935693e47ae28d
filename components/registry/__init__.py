"""The MLflow model registry: versions, aliases and the lineage recorded with them."""
