"""Several trials of one study trained in lockstep, as one model over stacked parameters.

The trials of a study share the workload, the batch size and the batch order; they differ in
their metaparameters, their initialisation (seed) and so their mask. :func:`run_trials_batched`
builds and prunes each trial's model exactly as :func:`~sparsedp.training.trainer.run_trial`
does, stacks the parameters along a leading trial dimension
(``torch.func.stack_module_state``) and trains them together with
``torch.func.functional_call`` on a :class:`StackedModel`: every step reads each trial's batch
(trials that joined later are at earlier steps), and one forward/backward gives each trial the
gradient of its own mean loss. The update is the TF rule of
:class:`~sparsedp.training.optimizers.TFOptimizer` applied to the stacked tensors with
per-trial learning rates and momenta. A trial that finishes leaves the group (its rows are
dropped from every stacked tensor) and a waiting trial of the study takes its slot
(:class:`BatchedTrials`), so the group stays full until the study runs out of trials.

Modules, lowest first:

- :mod:`.stacked_model`: :class:`StackedModel`, the K models' functional forward (and why
  not ``torch.vmap``);
- :mod:`.stacked_optimizer`: :class:`StackedTFOptimizer`, the per-trial update;
- :mod:`.stacked_evaluator`: the validation checks of many models at once;
- :mod:`.study`: :func:`check_same_study`, which trials may share a group;
- :mod:`.group`: :class:`BatchedTrials`, the rolling group and its lockstep driver;
- :mod:`.run_trials`: :func:`run_trials_batched`, a whole study in one call.
"""

from __future__ import annotations

from sparsedp.training.batched.group import EXAMPLES_IN_FLIGHT as EXAMPLES_IN_FLIGHT
from sparsedp.training.batched.group import BatchedProgressFn, BatchedTrials
from sparsedp.training.batched.group import SaliencySource as SaliencySource
from sparsedp.training.batched.run_trials import run_trials_batched
from sparsedp.training.batched.stacked_model import Params as Params
from sparsedp.training.batched.stacked_model import StackedModel
from sparsedp.training.batched.stacked_optimizer import StackedTFOptimizer
from sparsedp.training.batched.study import check_same_study

__all__ = [
    "BatchedProgressFn",
    "BatchedTrials",
    "StackedModel",
    "StackedTFOptimizer",
    "check_same_study",
    "run_trials_batched",
]
