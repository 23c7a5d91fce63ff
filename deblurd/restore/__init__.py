"""Restore: model packs (manifest, checksums, the one TFLite runtime seam), the dense blur map, the router that
sends regions to the matching generator, tiling with blending, and the stills cascade.

May import: optics and the top-level basics.
"""
