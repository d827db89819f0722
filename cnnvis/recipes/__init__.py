"""The researcher's API on top of the pipeline: icnn's reconstruct_image / invert_image,
cnnpref's generate_image (:mod:`recon`), the infinite zoom (:mod:`zoom`), quality metrics."""
