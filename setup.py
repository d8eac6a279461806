"""Builds the text engine's native core (detectors/_native.pyx); the rest is in pyproject.toml."""

import hashlib
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

SOURCE = "detectors/_native.pyx"
# Compiled in, so that an import can tell a build that is older than its source (native.py).
DIGEST = hashlib.sha256((Path(__file__).parent / SOURCE).read_bytes()).hexdigest()[:16]

setup(
    ext_modules=cythonize(
        [Extension("detectors._native", [SOURCE], define_macros=[("NATIVE_SOURCE_DIGEST", f'"{DIGEST}"')])],
        compiler_directives={"language_level": 3},
    )
)
