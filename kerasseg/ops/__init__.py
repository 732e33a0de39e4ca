"""Pure tensor (and NumPy) functions with no Keras layers or models: the bottom of the package."""
