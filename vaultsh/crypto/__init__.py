"""Cryptographic primitives for the gocryptfs format; the only package that imports crypto libraries."""
