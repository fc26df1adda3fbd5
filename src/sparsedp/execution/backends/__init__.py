"""Where trials run: the backend contract and its implementations.

- :mod:`.contract`: the :class:`~.contract.Backend` protocol every backend follows;
- :mod:`.local`: in this process, and local worker processes;
- :mod:`.ray_cluster`: Ray actors on a cluster (optional dependency);
- :mod:`.worker` and :mod:`.trial_pool`: what runs inside a worker (data, saliency cache,
  interleaved trials, batched groups), shared by every backend;
- :mod:`.factory`: the backend an experiment's ``[engine]`` options ask for.
"""
