"""Image priors and robustness: penalties on the whole canvas (TV, p-norms, blur), icnn's pixel
operations between steps, and the random transforms applied to every batch of tiles."""
