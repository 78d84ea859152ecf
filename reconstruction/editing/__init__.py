"""Editing results: curve edits, cage (lattice / polycube) deformation and crops, as data.

Pure numpy: the window and ``recon edit`` apply the same operations through this package.
See :mod:`reconstruction.editing.ops` for the operations.
"""

from reconstruction.editing.cage import Cage, fit_cage, fit_lattice, fit_polycube
from reconstruction.editing.document import load_result, write_result
from reconstruction.editing.ops import (
    OPS,
    EditDocument,
    EditError,
    EditOp,
    Mesh,
    apply_all,
    parse_op,
    parse_ops,
)

__all__ = ["OPS", "Cage", "EditDocument", "EditError", "EditOp", "Mesh", "apply_all",
           "fit_cage", "fit_lattice", "fit_polycube", "load_result", "parse_op", "parse_ops",
           "write_result"]
