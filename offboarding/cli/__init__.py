"""The ops front end: typed operations on offboardings, their rendering, the argument parser."""
