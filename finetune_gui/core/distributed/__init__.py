"""Training on several GPUs or machines with PyTorch's own stack: torchrun launches, DDP or FSDP2 trains.

`launch.py` builds torchrun command lines (and a SLURM batch script); there is no launcher of our own.
"""
