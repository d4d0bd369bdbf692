"""reaxgrad.datasets: placeholder package; filled by later issues."""
