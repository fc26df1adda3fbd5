"""How an experiment runs: the runner, the backends it hands trials to, and its safeguards.

- :mod:`.runner`: every missing trial of every study, each stored the moment it ends;
- :mod:`.tasks` and :mod:`.records`: what goes to a backend and what comes back;
- :mod:`.backends`: where trials run (in-process, local processes, Ray);
- :mod:`.ordering`: which trials run first;
- :mod:`.preflight` and :mod:`.part_checks`: checks before the first trial;
- :mod:`.failures`: when failures stop a run; :mod:`.runlock`: one run per results directory;
- :mod:`.provenance`: the machine and code a trial ran on.
"""
