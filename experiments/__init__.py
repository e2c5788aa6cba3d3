"""Hydra entry points: a paired scratchnn/Keras run logged to MLflow (`python -m experiments.train`)."""
