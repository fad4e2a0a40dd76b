"""Training on several processes through PyTorch's own stack: torchrun starts the processes, c10d joins them,
DistributedDataParallel or FSDP2 keeps their models in step. Nothing here launches or manages processes."""
