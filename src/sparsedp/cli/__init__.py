"""The ``sparsedp`` command line."""
