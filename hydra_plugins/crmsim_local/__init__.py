"""crmsim's Hydra launcher and basic sweeper for sweeps on this machine.

- ``hydra/launcher=crmsim_local`` (``launcher=local``, the default): jobs run in a pool of
  worker processes, one per core, started once per sweep; each job's config is composed in the
  sweep's process once per choice of config groups (``crmsim.compose.JobComposer``) instead of
  from scratch in every job.
- ``hydra/sweeper=crmsim_basic`` (what a sweep's plan picks when no other sweeper is
  chosen): Hydra's basic sweeper, checking each batch with the same composer rather than
  composing every job a second time.
"""
