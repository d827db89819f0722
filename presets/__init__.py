"""The bundled presets: TOML files only (see cnnvis/io/presets.py). This file exists so that the
folder installs as the package ``cnnvis.presets``; it holds no code."""
