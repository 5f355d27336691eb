"""The efficient-attention transformer U-Net with Inter-scale Context Fusion: its ablation study as a plan on the
library's stage runner, as the ``bundles/iscf`` configs use it."""

from .ablation import VARIANTS, ablation_plan, ablation_table

__all__ = ["VARIANTS", "ablation_plan", "ablation_table"]
