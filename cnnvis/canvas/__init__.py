"""The canvas's geometry, shared by every stage: size plans and float resampling
(:mod:`cnnvis.canvas.sizes`), and the tiles a canvas is cut into (:mod:`cnnvis.canvas.tiling`)."""
