from inpaint.base import INPAINTERS, Inpainter

__all__ = ["INPAINTERS", "Inpainter"]
