"""crmsim's Hydra sweepers for Optuna (>= 3, ask/tell), found by Hydra's plugin discovery.

- ``hydra/sweeper=crmsim_optuna``: one Optuna study (``hparams_search=<name>``), each trial a
  job run by the configured launcher. Modelled on Hydra's own hydra-optuna-sweeper (MIT,
  Facebook, Inc. and its affiliates), which pins optuna < 3.
- ``hydra/sweeper=crmsim_tuned``: ``experiment=compare_tuned``: every framework tuned with the
  same number of trials on training seeds and judged on held-out seeds (``crmsim.tune``).
"""
