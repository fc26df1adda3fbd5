"""Seed repeats (``sparsedp repeat``): each study's best metaparameters trained again with new
seeds, stored apart from the search: :mod:`.run`."""
