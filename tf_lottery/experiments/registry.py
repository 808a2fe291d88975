"""The experiment registry (kept apart so experiment modules can import it)."""

from tf_lottery.registry import Registry

EXPERIMENTS: Registry = Registry("experiment")
