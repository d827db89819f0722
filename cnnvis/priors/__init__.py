"""Deep generator network priors: the generators (:mod:`generators`), the prior's bounds and
starting latents (:mod:`dgn`), and training a generator for any model (:mod:`train`)."""
