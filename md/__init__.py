"""reaxgrad.md: placeholder package; filled by later issues."""
