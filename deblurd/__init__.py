"""deblurd: an on-device deblurring appliance (capture -> classify -> restore -> store)."""

__version__ = "0.1.0"
