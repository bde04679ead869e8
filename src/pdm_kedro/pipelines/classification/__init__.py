"""Classification family: will the machine fail within the horizon?"""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
