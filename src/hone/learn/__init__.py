"""hone.learn: lasting improvement from stored trajectories.

`data` builds datasets in TRL's formats from the store, `train` runs SFT, DPO and GRPO
through TRL, `loop` is the closed loop behind `hone loop`, and `micro` is the embedded
micro model.

`train`, `loop` and `micro` need the `train` extra (`pip install 'hone[train]'`: torch,
transformers, TRL); `data` imports without it.
"""
