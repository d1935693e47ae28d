"""The domain: the takedown ticket, the concept kinds' prompt templates, prompt terms, input errors, content hashes."""
