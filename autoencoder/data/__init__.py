"""Sentences as ids: the vocabulary, encoded splits and length-bucketed batches."""
