"""finetune-gui: point-and-click transfer learning and fine-tuning."""

__version__ = "0.1.0"
