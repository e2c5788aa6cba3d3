"""Reports comparing scratchnn with Keras, built from MLflow runs (`python -m compare.report`)."""
