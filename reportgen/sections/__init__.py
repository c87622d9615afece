"""The post's sections, one package each with the same roles: compute.py, draw.py, present.py,
stages.py (see base.py)."""
