"""Output: the output folder as a trust boundary. Its layout, the store with its index and atomic results,
recovery after a crash, retention and the storage policy, EXIF, the status file and the static gallery.

May import: optics and the top-level basics.
"""
