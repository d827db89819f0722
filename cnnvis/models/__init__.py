"""Networks and their preprocessing (:mod:`registry`), activations captured by dotted layer name
(:mod:`capture`), and Caffe files read without Caffe (:mod:`caffe`)."""
