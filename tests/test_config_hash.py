from dataclasses import dataclass, field

from sparsedp.config import canonical_dict, config_hash
from sparsedp.pruning import PruneSettings
from sparsedp.training import TrialConfig


@dataclass(frozen=True)
class _Old:
    a: int
    b: float = 0.5


@dataclass(frozen=True)
class _New:
    a: int
    b: float = 0.5
    c: str = "new option"
    nested: PruneSettings = field(default_factory=PruneSettings)


def test_adding_a_defaulted_option_keeps_the_hash():
    assert config_hash(_Old(3)) == config_hash(_New(3))
    assert config_hash(_Old(3, 0.7)) == config_hash(_New(3, 0.7))


def test_changing_a_value_changes_the_hash():
    assert config_hash(_New(3)) != config_hash(_New(3, c="other"))
    assert config_hash(_New(3)) != config_hash(_New(3, nested=PruneSettings(prune_biases=True)))


def test_canonical_dict_omits_defaults():
    config = TrialConfig("mnist-simplecnn-sgd", 0.5, 64, 0.1)
    assert canonical_dict(config) == {
        "batch_size": 64, "lr": 0.1, "sparsity": 0.5, "workload": "mnist-simplecnn-sgd"
    }
