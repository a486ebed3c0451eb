"""The embedded demo coast: a synthetic, physically grounded coast in real file formats.

``floodkd demo --out data/demo`` writes two regions (a data-rich source and a data-sparse
target) so that a first run works before a user has any data. Everything is deterministic
from one seed; every file says it is synthetic.
"""

from floodkd.demo.generate import generate_demo

__all__ = ["generate_demo"]
