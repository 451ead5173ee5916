"""One module per workload of issue #7; each exposes ``run(models, settings) -> list[Row]``."""
