"""What to maximize: a score per tile from captured activations, composable with + - and *.
:mod:`base` (Capture, Objective, Sum, OnItem), :mod:`activation` (dream, channel, neuron, guide),
:mod:`inversion` (icnn's feature matching, cnnpref's masked units), :mod:`losses` (distances),
:mod:`direction` (directions, caricatures), :mod:`penalties` (on the image), :mod:`batch` (across
the N images); :mod:`spec` declares the ``-O`` kinds in the registry of :mod:`kinds`."""
