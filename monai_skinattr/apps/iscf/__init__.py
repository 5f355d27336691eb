"""The efficient-attention transformer U-Net with Inter-scale Context Fusion: its ablation study, as the
``bundles/iscf`` configs use it."""

from .ablation import VARIANTS, ablation_table, run_ablation

__all__ = ["VARIANTS", "ablation_table", "run_ablation"]
