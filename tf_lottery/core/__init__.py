"""Layer 1, what every other package stands on: the registry idiom, declared options, atomic
file writes, the log, crash points for tests, natural name order. Imports nothing of tf_lottery."""
