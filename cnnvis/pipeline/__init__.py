"""The render loop: size plan -> for each size, for each step: tiles -> model -> objective ->
canvas gradient -> one optimizer step (:mod:`loop`, :mod:`gradient`, :mod:`steppers`), with the
memory pre-flight (:mod:`memory`), progress reports (:mod:`progress`) and device choice."""
