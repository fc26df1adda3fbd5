"""Probes (``sparsedp probe``): stored best trials re-trained with the gradient noise scale and
smoothness measured along the way: :mod:`.run`."""
