"""Primitive families: each module defines primitives and registers their rules."""
