"""What an experiment will cost before it runs (``sparsedp plan``): :mod:`.estimate`."""
