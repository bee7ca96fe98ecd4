"""The config schema without torch: every method's and task's ``Params`` by implementation name, and the checks
a config must pass when it resolves (``pcfrl_bench.resolution``), so ``config``, ``list`` and ``results`` start
without importing torch.

``methods``: augmentation, calibration and method parameters and the methods' config checks; ``tasks``: task
parameters and which tasks give labelled training data; ``models``: backbone names and the model keys only some
backbones take. The torch implementations (``methods``, ``tasks``, ``models.backbones``) take their ``Params``
and names from here; ``tests/test_schema.py`` checks that the two agree name by name.
"""
