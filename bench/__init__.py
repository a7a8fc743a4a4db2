"""The performance suite behind ``make bench``: each stage measured beside its baseline."""
