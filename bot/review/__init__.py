"""Review pages for incident responders: `leakwarden review -c CONFIG` (see app.py)."""
