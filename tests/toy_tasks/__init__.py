"""Two throw-away tasks plugged into the trunk the way a real task is (``MODALBRIDGE_PLUGINS=toy_tasks.plugin``):
a regression task monitored with ``min`` on a plain LightningDataModule, and a retrieval task with two
evaluation loaders (seen / unseen classes), manual optimisation and a seeded data module. The engine tests
(``tests/core/test_engine_tasks.py``) fit, test, kill-and-resume and DDP-train them."""
