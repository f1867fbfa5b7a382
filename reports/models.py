"""The reports capability keeps no tables of its own: it reads those of the others."""
