"""Fused Triton GRU kernels (installed as `musejax_kernels`); never imports musejax."""
