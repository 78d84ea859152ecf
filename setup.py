"""Builds the optional fused CPU hash-grid kernel (plain C, no torch headers).

Everything else is declared in pyproject.toml. When no C compiler is available the build
of the extension is skipped and HashGrid falls back to its pure-PyTorch implementation.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "reconstruction.encoding._hashgrid_cpu",
            sources=["reconstruction/encoding/_hashgrid_cpu.c"],
            extra_compile_args=["-O3", "-std=c99", "-fno-math-errno", "-march=native"],
            optional=True,
        )
    ]
)
