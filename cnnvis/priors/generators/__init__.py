"""Image generators for the deep generator network prior (:mod:`cnnvis.priors.dgn`).

``base`` (the interface), ``upconv`` (the fully convolutional generator that
``cnnvis train-generator`` trains for any model), ``deepsim`` (Dosovitskiy & Brox's
release_deepsim_v0 architectures) and ``files`` (generator files: save, load, latent bounds).
"""
