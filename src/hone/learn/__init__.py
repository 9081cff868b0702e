"""hone.learn: lasting improvement from stored trajectories (the micro model so far).

Needs the `train` extra (`pip install 'hone[train]'`): torch, transformers, TRL.
"""
