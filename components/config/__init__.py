"""Run and stack configs (pydantic schemas) and the per-step placement they give together."""
