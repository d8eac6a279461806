"""`leakwarden demo`: the scripted leak story, its assets and a local webhook receiver."""
