"""Numpy-only building blocks shared by the training pipelines and the edge runtime."""
