"""reaxgrad.optimize: placeholder package; filled by later issues."""
