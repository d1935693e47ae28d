"""A ticket's way through the stages: admission, resolved inputs, the stages, batches, the inbox and the sweep."""
