"""The site: its data model (pages.py), text and escaping (prose.py), rendering (site.py) and
atomic publishing (publish.py)."""
