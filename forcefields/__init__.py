"""reaxgrad.forcefields: placeholder package; filled by later issues."""
