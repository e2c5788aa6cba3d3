"""Reports comparing scratchnn with every other framework of an experiment, built from MLflow runs:
seed-paired statistics and equivalence verdicts (`python -m compare.report`, docs/statistics.md)."""

import experiments  # noqa: E402, F401  (before mlflow or pandas: one line naming the extra if they are missing)
